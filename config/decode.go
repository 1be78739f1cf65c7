package config

import (
	"encoding"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/goccy/go-yaml/ast"
)

// The loader decodes the YAML syntax tree itself instead of handing it to a
// generic decoder: that is what lets it report every unknown key and every
// type error in one pass, each at its own line and column, expand ${ENV} in
// string scalars only, and keep a position for every path so that semantic
// errors can be located too.

// pos is a 1-based line and column; the zero value means "unknown".
type pos struct{ line, col int }

// maxNodes bounds the work done on one file, so that aliases that refer to
// each other many times cannot make a small file expensive to load.
const maxNodes = 1 << 20

type decoder struct {
	file      string
	lookup    func(string) (string, bool)
	anchors   map[string]ast.Node
	active    map[string]bool // aliases being expanded, to refuse cycles
	positions map[string]pos  // path -> position of its key or list item
	dropped   []string        // paths whose value was refused
	errs      Errors
	budget    int
	exhausted bool
}

func newDecoder(file string, lookup func(string) (string, bool)) *decoder {
	return &decoder{
		file:      file,
		lookup:    lookup,
		anchors:   map[string]ast.Node{},
		active:    map[string]bool{},
		positions: map[string]pos{},
		budget:    maxNodes,
	}
}

func (d *decoder) errorAt(p pos, path, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: p.line, Col: p.col, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// refuse reports a value that could not be decoded and remembers its path so
// that validation does not report the resulting zero value a second time.
func (d *decoder) refuse(p pos, path, format string, args ...any) {
	d.errorAt(p, path, format, args...)
	d.dropped = append(d.dropped, path)
}

func tokenPos(n ast.Node) pos {
	if n == nil {
		return pos{}
	}
	tk := n.GetToken()
	if tk == nil || tk.Position == nil {
		return pos{}
	}
	return pos{tk.Position.Line, tk.Position.Column}
}

// nodePos is where a node starts as a reader sees it: a block mapping starts
// at its first key.
func nodePos(n ast.Node) pos {
	switch m := n.(type) {
	case *ast.MappingNode:
		if len(m.Values) > 0 {
			return tokenPos(m.Values[0].Key)
		}
	case *ast.MappingValueNode:
		return tokenPos(m.Key)
	case *ast.AnchorNode:
		if m.Value != nil {
			return nodePos(m.Value)
		}
	case *ast.TagNode:
		if m.Value != nil {
			return nodePos(m.Value)
		}
	}
	return tokenPos(n)
}

// collectAnchors records every anchor of the document before decoding, so
// that an alias resolves even when its anchor sits under a refused key.
func (d *decoder) collectAnchors(root ast.Node) {
	ast.Walk(visitorFunc(func(n ast.Node) {
		if a, ok := n.(*ast.AnchorNode); ok && a.Name != nil {
			d.anchors[a.Name.GetToken().Value] = a.Value
		}
	}), root)
}

type visitorFunc func(ast.Node)

func (f visitorFunc) Visit(n ast.Node) ast.Visitor {
	if n == nil {
		return nil
	}
	f(n)
	return f
}

// unwrap strips anchors and tags and follows aliases. The returned release
// function must be called once the node has been decoded.
func (d *decoder) unwrap(n ast.Node, path string, at pos) (ast.Node, func(), bool) {
	var entered []string
	release := func() {
		for _, name := range entered {
			delete(d.active, name)
		}
	}
	for {
		switch v := n.(type) {
		case *ast.AnchorNode:
			n = v.Value
		case *ast.TagNode:
			n = v.Value
		case *ast.AliasNode:
			name := ""
			if v.Value != nil {
				name = v.Value.GetToken().Value
			}
			target, ok := d.anchors[name]
			if !ok {
				d.refuse(tokenPos(v), path, "unknown alias *%s", name)
				release()
				return nil, nil, false
			}
			if d.active[name] {
				d.refuse(tokenPos(v), path, "alias *%s refers to itself", name)
				release()
				return nil, nil, false
			}
			d.active[name] = true
			entered = append(entered, name)
			n = target
		default:
			return n, release, true
		}
	}
}

// spend counts one decoded node against the file's budget.
func (d *decoder) spend(path string, at pos) bool {
	d.budget--
	if d.budget >= 0 {
		return true
	}
	if !d.exhausted {
		d.exhausted = true
		d.errorAt(at, path, "file too complex: more than %d values after expanding aliases", maxNodes)
	}
	return false
}

func isNull(n ast.Node) bool {
	if n == nil {
		return true
	}
	_, ok := n.(*ast.NullNode)
	return ok
}

// entry is one key of a mapping after merge keys are applied.
type entry struct {
	key    string
	keyPos pos
	value  ast.Node
}

// entries lists a mapping's keys in file order, reporting duplicates and
// keys that are not scalars, and applying YAML merge keys ("<<: *base")
// without letting them override explicit keys.
func (d *decoder) entries(n ast.Node, path string) []entry {
	var values []*ast.MappingValueNode
	switch m := n.(type) {
	case *ast.MappingNode:
		values = m.Values
	case *ast.MappingValueNode:
		values = []*ast.MappingValueNode{m}
	}
	var out, merged []entry
	seen := map[string]pos{}
	for _, mv := range values {
		if mv == nil || mv.Key == nil {
			continue
		}
		kp := tokenPos(mv.Key)
		if mv.Key.IsMergeKey() {
			merged = append(merged, d.mergeEntries(mv.Value, path, kp)...)
			continue
		}
		key, ok := keyText(mv.Key)
		if !ok {
			d.errorAt(kp, path, "mapping keys must be plain strings")
			continue
		}
		if first, dup := seen[key]; dup {
			d.errorAt(kp, joinKey(path, key), "duplicate key %q (first at line %d)", key, first.line)
			continue
		}
		seen[key] = kp
		out = append(out, entry{key: key, keyPos: kp, value: mv.Value})
	}
	for _, e := range merged {
		if _, dup := seen[e.key]; !dup {
			seen[e.key] = e.keyPos
			out = append(out, e)
		}
	}
	return out
}

func (d *decoder) mergeEntries(v ast.Node, path string, at pos) []entry {
	if !d.spend(path, at) {
		return nil
	}
	n, release, ok := d.unwrap(v, path, at)
	if !ok {
		return nil
	}
	defer release()
	switch m := n.(type) {
	case *ast.MappingNode, *ast.MappingValueNode:
		return d.entries(m, path)
	case *ast.SequenceNode:
		var out []entry
		for _, item := range m.Values {
			out = append(out, d.mergeEntries(item, path, nodePos(item))...)
		}
		return out
	}
	d.refuse(at, path, "merge key \"<<\" needs a mapping or a list of mappings")
	return nil
}

func keyText(k ast.Node) (string, bool) {
	for {
		switch v := k.(type) {
		case *ast.MappingKeyNode:
			k = v.Value
		case *ast.AnchorNode:
			k = v.Value
		case *ast.TagNode:
			k = v.Value
		case *ast.StringNode:
			return v.Value, true
		case *ast.NullNode:
			return "", false
		case ast.ScalarNode:
			return v.GetToken().Value, true
		default:
			return "", false
		}
	}
}

func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func joinIndex(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// describe names a node's kind for type errors.
func describe(n ast.Node) string {
	switch v := n.(type) {
	case *ast.MappingNode, *ast.MappingValueNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	case *ast.StringNode:
		return fmt.Sprintf("string %q", v.Value)
	case *ast.LiteralNode:
		return "a block string"
	case *ast.IntegerNode:
		return "integer " + v.GetToken().Value
	case *ast.FloatNode, *ast.InfinityNode, *ast.NanNode:
		return "number " + v.GetToken().Value
	case *ast.BoolNode:
		return "boolean " + v.GetToken().Value
	case *ast.NullNode:
		return "null"
	}
	return n.Type().YAMLName()
}

// scalar returns the text of a scalar node; env expansion applies to string
// scalars only. fromEnv says whether a variable was expanded, which lets a
// number or boolean field take its value from the environment.
func (d *decoder) scalar(n ast.Node, path string) (text string, isString, fromEnv, ok bool) {
	var raw string
	switch v := n.(type) {
	case *ast.StringNode:
		raw = v.Value
	case *ast.LiteralNode:
		if v.Value != nil {
			raw = v.Value.Value
		}
	case ast.ScalarNode:
		return v.GetToken().Value, false, false, true
	default:
		return "", false, false, false
	}
	out, err := expandEnv(raw, d.lookup)
	if err != nil {
		d.refuse(tokenPos(n), path, "%v", err)
		return "", true, false, false
	}
	return out, true, out != raw || strings.Contains(raw, "${"), true
}

var (
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	policiesType        = reflect.TypeFor[Policies]()
)

// decode fills v from n. at is where errors about the value are reported:
// the position of its key, or of the list item.
func (d *decoder) decode(n ast.Node, v reflect.Value, path string, at pos) {
	if !d.spend(path, at) {
		return
	}
	n, release, ok := d.unwrap(n, path, at)
	if !ok {
		return
	}
	defer release()
	if isNull(n) {
		return // absent and null both mean "not set"
	}
	if v.Kind() != reflect.Pointer && reflect.PointerTo(v.Type()).Implements(textUnmarshalerType) {
		d.decodeText(n, v, path, at)
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		d.decode(n, p.Elem(), path, at)
		v.Set(p)
	case reflect.Struct:
		d.decodeStruct(n, v, path, at)
	case reflect.Map:
		d.decodeMap(n, v, path, at)
	case reflect.Slice:
		d.decodeSlice(n, v, path, at)
	case reflect.Interface:
		if g, ok := d.generic(n, path, at); ok && g != nil {
			v.Set(reflect.ValueOf(g))
		}
	case reflect.String:
		text, _, _, ok := d.scalar(n, path)
		if !ok {
			if _, scalar := n.(ast.ScalarNode); !scalar {
				d.refuse(at, path, "expected a string, got %s", describe(n))
			}
			return
		}
		v.SetString(text)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		d.decodeInt(n, v, path, at)
	case reflect.Float32, reflect.Float64:
		d.decodeFloat(n, v, path, at)
	case reflect.Bool:
		d.decodeBool(n, v, path, at)
	default:
		d.refuse(at, path, "unsupported field type %s", v.Type())
	}
}

func (d *decoder) decodeText(n ast.Node, v reflect.Value, path string, at pos) {
	text, _, _, ok := d.scalar(n, path)
	if !ok {
		if _, scalar := n.(ast.ScalarNode); !scalar {
			d.refuse(at, path, "expected a scalar, got %s", describe(n))
		}
		return
	}
	if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(text)); err != nil {
		d.refuse(at, path, "%v", err)
	}
}

func (d *decoder) decodeInt(n ast.Node, v reflect.Value, path string, at pos) {
	var i int64
	switch x := n.(type) {
	case *ast.IntegerNode:
		switch num := x.Value.(type) {
		case int64:
			i = num
		case uint64:
			if num > math.MaxInt64 {
				d.refuse(at, path, "integer %d is too large", num)
				return
			}
			i = int64(num)
		}
	default:
		text, isString, fromEnv, ok := d.scalar(n, path)
		if !ok && isString {
			return // the expansion error is already reported
		}
		parsed, err := strconv.ParseInt(strings.TrimSpace(text), 10, 64)
		if !ok || !isString || !fromEnv || err != nil {
			d.refuse(at, path, "expected an integer, got %s", describeText(n, text, fromEnv))
			return
		}
		i = parsed
	}
	if v.OverflowInt(i) {
		d.refuse(at, path, "integer %d is out of range", i)
		return
	}
	v.SetInt(i)
}

func (d *decoder) decodeFloat(n ast.Node, v reflect.Value, path string, at pos) {
	switch x := n.(type) {
	case *ast.IntegerNode, *ast.FloatNode:
		// The token's text, not the parser's value, so that an out-of-range
		// literal such as 1e999 is refused instead of becoming infinity.
		f, err := strconv.ParseFloat(strings.ReplaceAll(x.GetToken().Value, "_", ""), 64)
		if err != nil {
			d.refuse(at, path, "expected a finite number, got %s", describe(n))
			return
		}
		v.SetFloat(f)
	case *ast.InfinityNode, *ast.NanNode:
		d.refuse(at, path, "expected a finite number, got %s", describe(n))
	default:
		text, isString, fromEnv, ok := d.scalar(n, path)
		if !ok && isString {
			return
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(text), 64)
		if !ok || !isString || !fromEnv || err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			d.refuse(at, path, "expected a number, got %s", describeText(n, text, fromEnv))
			return
		}
		v.SetFloat(f)
	}
}

func (d *decoder) decodeBool(n ast.Node, v reflect.Value, path string, at pos) {
	if b, ok := n.(*ast.BoolNode); ok {
		v.SetBool(b.Value)
		return
	}
	text, isString, fromEnv, ok := d.scalar(n, path)
	if !ok && isString {
		return
	}
	switch strings.TrimSpace(text) {
	case "true":
		if ok && fromEnv {
			v.SetBool(true)
			return
		}
	case "false":
		if ok && fromEnv {
			v.SetBool(false)
			return
		}
	}
	d.refuse(at, path, "expected true or false, got %s", describeText(n, text, fromEnv))
}

// describeText shows the value after expansion when it came from the
// environment, since that is what the user needs to fix.
func describeText(n ast.Node, text string, fromEnv bool) string {
	if fromEnv {
		return fmt.Sprintf("%q (from the environment)", text)
	}
	return describe(n)
}

type structInfo struct {
	fields map[string]int // yaml key -> field index
	keys   []string       // sorted, for suggestions
}

var structInfos sync.Map // reflect.Type -> *structInfo

func infoFor(t reflect.Type) *structInfo {
	if si, ok := structInfos.Load(t); ok {
		return si.(*structInfo)
	}
	si := &structInfo{fields: map[string]int{}}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		si.fields[name] = i
		si.keys = append(si.keys, name)
	}
	sort.Strings(si.keys)
	structInfos.Store(t, si)
	return si
}

func (d *decoder) decodeStruct(n ast.Node, v reflect.Value, path string, at pos) {
	switch n.(type) {
	case *ast.MappingNode, *ast.MappingValueNode:
	default:
		d.refuse(at, path, "expected a mapping, got %s", describe(n))
		return
	}
	si := infoFor(v.Type())
	for _, e := range d.entries(n, path) {
		p := joinKey(path, e.key)
		i, ok := si.fields[e.key]
		if !ok {
			d.errorAt(e.keyPos, p, "%s", didYouMean(fmt.Sprintf("unknown field %q", e.key), e.key, si.keys))
			continue
		}
		d.positions[p] = e.keyPos
		d.decode(e.value, v.Field(i), p, e.keyPos)
	}
}

func (d *decoder) decodeMap(n ast.Node, v reflect.Value, path string, at pos) {
	switch n.(type) {
	case *ast.MappingNode, *ast.MappingValueNode:
	default:
		d.refuse(at, path, "expected a mapping, got %s", describe(n))
		return
	}
	if v.Type().Key().Kind() != reflect.String {
		d.refuse(at, path, "unsupported map key type %s", v.Type().Key())
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	elem := v.Type().Elem()
	for _, e := range d.entries(n, path) {
		p := joinKey(path, e.key)
		d.positions[p] = e.keyPos
		ev := reflect.New(elem).Elem()
		if v.Type() == policiesType {
			// A policy's settings are a mapping, or null to switch an
			// inherited policy off: the key must stay, with a nil value.
			val, ok := d.generic(e.value, p, e.keyPos)
			if !ok {
				continue
			}
			if _, isMap := val.(map[string]any); val != nil && !isMap {
				d.refuse(e.keyPos, p, "policy settings must be a mapping or null")
				continue
			}
			if val != nil {
				ev.Set(reflect.ValueOf(val))
			}
		} else {
			d.decode(e.value, ev, p, e.keyPos)
		}
		v.SetMapIndex(reflect.ValueOf(e.key).Convert(v.Type().Key()), ev)
	}
}

func (d *decoder) decodeSlice(n ast.Node, v reflect.Value, path string, at pos) {
	seq, ok := n.(*ast.SequenceNode)
	if !ok {
		d.refuse(at, path, "expected a list, got %s", describe(n))
		return
	}
	out := reflect.MakeSlice(v.Type(), len(seq.Values), len(seq.Values))
	for i, item := range seq.Values {
		p := joinIndex(path, i)
		ip := nodePos(item)
		d.positions[p] = ip
		d.decode(item, out.Index(i), p, ip)
	}
	v.Set(out)
}

// generic decodes free-form YAML (policy settings) into map[string]any,
// []any, string, int, float64, bool or nil, keeping positions of its keys.
func (d *decoder) generic(n ast.Node, path string, at pos) (any, bool) {
	if !d.spend(path, at) {
		return nil, false
	}
	n, release, ok := d.unwrap(n, path, at)
	if !ok {
		return nil, false
	}
	defer release()
	switch x := n.(type) {
	case nil, *ast.NullNode:
		return nil, true
	case *ast.MappingNode, *ast.MappingValueNode:
		m := map[string]any{}
		for _, e := range d.entries(x, path) {
			p := joinKey(path, e.key)
			d.positions[p] = e.keyPos
			if val, ok := d.generic(e.value, p, e.keyPos); ok {
				m[e.key] = val
			}
		}
		return m, true
	case *ast.SequenceNode:
		s := make([]any, 0, len(x.Values))
		for i, item := range x.Values {
			p := joinIndex(path, i)
			ip := nodePos(item)
			d.positions[p] = ip
			val, _ := d.generic(item, p, ip)
			s = append(s, val)
		}
		return s, true
	case *ast.BoolNode:
		return x.Value, true
	case *ast.IntegerNode:
		switch i := x.Value.(type) {
		case int64:
			if int64(int(i)) == i {
				return int(i), true
			}
		case uint64:
			if i <= math.MaxInt {
				return int(i), true
			}
		}
		return x.Value, true
	case *ast.FloatNode:
		return x.Value, true
	case *ast.InfinityNode:
		return x.Value, true
	case *ast.NanNode:
		return math.NaN(), true
	}
	text, _, _, ok := d.scalar(n, path)
	if !ok {
		if _, scalar := n.(ast.ScalarNode); !scalar {
			d.refuse(at, path, "unsupported YAML value %s", describe(n))
		}
		return nil, false
	}
	return text, true
}
