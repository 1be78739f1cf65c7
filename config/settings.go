package config

import (
	"encoding"
	"fmt"
	"math"
	"reflect"
	"strconv"
)

// DecodeSettings decodes a policy's generic settings (the map[string]any the
// loader keeps, from YAML or JSON) into dst, a pointer to the policy's own
// settings struct, as strictly as the rest of the file: unknown keys (with a
// suggestion), wrong types and bad durations are reported, every one of them,
// with paths relative to the policy ("limit", "allow[1]").
//
// Fields are named by their yaml tags; an embedded struct tagged
// `yaml:",inline"` shares its keys with the outer one. Types implementing
// encoding.TextUnmarshaler (Duration) decode from strings.
func DecodeSettings(settings any, dst any) []FieldError {
	v := reflect.ValueOf(dst)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		panic("config.DecodeSettings: dst must be a non-nil pointer")
	}
	var errs []FieldError
	decodeGeneric(settings, v.Elem(), "", &errs)
	return errs
}

func decodeGeneric(in any, v reflect.Value, path string, errs *[]FieldError) {
	fail := func(format string, args ...any) {
		*errs = append(*errs, FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	if in == nil {
		return // an empty value leaves the default
	}
	if reflect.PointerTo(v.Type()).Implements(textUnmarshalerType) {
		s, ok := in.(string)
		if n, isInt := genericInt(in); isInt && n == 0 {
			s, ok = "0", true // a bare 0 is a zero duration, as in the rest of the file
		}
		if !ok {
			fail("expected a string, got %s", describeGeneric(in))
			return
		}
		if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)); err != nil {
			fail("%v", err)
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		nv := reflect.New(v.Type().Elem())
		decodeGeneric(in, nv.Elem(), path, errs)
		v.Set(nv)
	case reflect.Interface:
		v.Set(reflect.ValueOf(in))
	case reflect.String:
		switch s := in.(type) {
		case string:
			v.SetString(s)
		case int, int64, uint64, float64, bool:
			// YAML reads `version: 2` as a number; a string field takes it as written.
			v.SetString(fmt.Sprint(s))
		default:
			fail("expected a string, got %s", describeGeneric(in))
		}
	case reflect.Bool:
		b, ok := in.(bool)
		if !ok {
			fail("expected true or false, got %s", describeGeneric(in))
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := genericInt(in)
		if !ok || v.OverflowInt(n) {
			fail("expected an integer, got %s", describeGeneric(in))
			return
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := genericInt(in)
		if !ok || n < 0 || v.OverflowUint(uint64(n)) {
			fail("expected a non-negative integer, got %s", describeGeneric(in))
			return
		}
		v.SetUint(uint64(n))
	case reflect.Float32, reflect.Float64:
		switch f := in.(type) {
		case float64:
			v.SetFloat(f)
		case int:
			v.SetFloat(float64(f))
		case int64:
			v.SetFloat(float64(f))
		case uint64:
			v.SetFloat(float64(f))
		default:
			fail("expected a number, got %s", describeGeneric(in))
		}
	case reflect.Slice:
		items, ok := in.([]any)
		if !ok {
			fail("expected a list, got %s", describeGeneric(in))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(items), len(items))
		for i, item := range items {
			decodeGeneric(item, s.Index(i), path+"["+strconv.Itoa(i)+"]", errs)
		}
		v.Set(s)
	case reflect.Map:
		m, ok := in.(map[string]any)
		if !ok {
			fail("expected a mapping, got %s", describeGeneric(in))
			return
		}
		if v.Type().Key().Kind() != reflect.String {
			panic("config.DecodeSettings: map keys must be strings")
		}
		out := reflect.MakeMapWithSize(v.Type(), len(m))
		for _, k := range sortedKeys(m) {
			ev := reflect.New(v.Type().Elem()).Elem()
			decodeGeneric(m[k], ev, joinKey(path, k), errs)
			out.SetMapIndex(reflect.ValueOf(k).Convert(v.Type().Key()), ev)
		}
		v.Set(out)
	case reflect.Struct:
		m, ok := in.(map[string]any)
		if !ok {
			fail("expected a mapping, got %s", describeGeneric(in))
			return
		}
		fields := settingsFields(v.Type())
		keys := make([]string, 0, len(fields))
		for k := range fields {
			keys = append(keys, k)
		}
		for _, k := range sortedKeys(m) {
			p := joinKey(path, k)
			idx, ok := fields[k]
			if !ok {
				*errs = append(*errs, FieldError{Path: p, Msg: didYouMean(fmt.Sprintf("unknown field %q", k), k, keys)})
				continue
			}
			decodeGeneric(m[k], v.FieldByIndex(idx), p, errs)
		}
	default:
		panic("config.DecodeSettings: unsupported field type " + v.Type().String())
	}
}

// settingsFields maps each yaml key of t to its field index path, looking
// into inline embedded structs.
func settingsFields(t reflect.Type) map[string][]int {
	out := map[string][]int{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := cutTag(f.Tag.Get("yaml"))
		if name == "-" || !f.IsExported() && !f.Anonymous {
			continue
		}
		if opts == "inline" && f.Type.Kind() == reflect.Struct {
			for k, idx := range settingsFields(f.Type) {
				out[k] = append([]int{i}, idx...)
			}
			continue
		}
		if name == "" || !f.IsExported() {
			continue
		}
		out[name] = []int{i}
	}
	return out
}

func cutTag(tag string) (name, opts string, ok bool) {
	for i := range len(tag) {
		if tag[i] == ',' {
			return tag[:i], tag[i+1:], true
		}
	}
	return tag, "", false
}

func genericInt(in any) (int64, bool) {
	switch n := in.(type) {
	case int:
		return int64(n), true
	case int64:
		return n, true
	case uint64:
		if n > math.MaxInt64 {
			return 0, false
		}
		return int64(n), true
	case float64: // JSON numbers
		if n != math.Trunc(n) || math.Abs(n) > 1<<53 {
			return 0, false
		}
		return int64(n), true
	}
	return 0, false
}

func describeGeneric(in any) string {
	switch x := in.(type) {
	case string:
		return strconv.Quote(x)
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	case bool:
		return strconv.FormatBool(x)
	}
	return fmt.Sprint(in)
}
