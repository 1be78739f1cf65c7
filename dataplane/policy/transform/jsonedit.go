package transform

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/dataplane/policy"
	"github.com/tollgate/tollgate/internal/jsonx"
)

// pointer is a JSON Pointer (RFC 6901), split into its unescaped tokens.
type pointer struct {
	text   string
	tokens []string
}

func parsePointer(s string) (pointer, error) {
	if s == "" {
		return pointer{}, fmt.Errorf(`"" is the whole document; name a member such as "/id"`)
	}
	if s[0] != '/' {
		return pointer{}, fmt.Errorf("%q is not a JSON pointer: it must start with '/' (\"/user/id\")", s)
	}
	p := pointer{text: s}
	for _, tok := range strings.Split(s[1:], "/") {
		for i := 0; i < len(tok); i++ {
			if tok[i] == '~' && (i+1 == len(tok) || tok[i+1] != '0' && tok[i+1] != '1') {
				return pointer{}, fmt.Errorf("%q: '~' must be followed by 0 ('~') or 1 ('/')", s)
			}
		}
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		p.tokens = append(p.tokens, tok)
	}
	return p, nil
}

// arrayIndex reads a token as an index of an array of n items; "-" (the end)
// only when end is allowed. RFC 6901 allows no sign and no leading zero.
func arrayIndex(tok string, n int, end bool) (int, bool) {
	if tok == "-" {
		return n, end
	}
	if tok == "" || len(tok) > 1 && tok[0] == '0' {
		return 0, false
	}
	i := 0
	for j := 0; j < len(tok); j++ {
		c := tok[j]
		if c < '0' || c > '9' || i > math.MaxInt32/10 {
			return 0, false
		}
		i = i*10 + int(c-'0')
	}
	return i, true
}

// jsonValue is a value to add, compiled: JSON text with the strings that
// hold templates left as holes, filled (and escaped) per request.
type jsonValue struct {
	segs []jsonSegment
}

type jsonSegment struct {
	text string    // JSON text, when str is nil
	str  *template // a string template, rendered and escaped
}

// compileJSONValue compiles a value from the settings (YAML scalars,
// mappings and lists); every string in it is a template.
func compileJSONValue(v any) (jsonValue, error) {
	var out jsonValue
	var lit []byte
	var walk func(v any) error
	walk = func(v any) error {
		switch x := v.(type) {
		case string:
			t, err := compileTemplate(x)
			if err != nil {
				return err
			}
			if t.literal() {
				var s []byte
				s = t.render(s, nil)
				lit = jsonx.AppendString(lit, string(s))
				return nil
			}
			if len(lit) > 0 {
				out.segs = append(out.segs, jsonSegment{text: string(lit)})
				lit = lit[:0]
			}
			out.segs = append(out.segs, jsonSegment{str: &t})
		case map[string]any:
			lit = append(lit, '{')
			for i, k := range slices.Sorted(maps.Keys(x)) {
				if i > 0 {
					lit = append(lit, ',')
				}
				lit = append(jsonx.AppendString(lit, k), ':')
				if err := walk(x[k]); err != nil {
					return err
				}
			}
			lit = append(lit, '}')
		case []any:
			lit = append(lit, '[')
			for i, item := range x {
				if i > 0 {
					lit = append(lit, ',')
				}
				if err := walk(item); err != nil {
					return err
				}
			}
			lit = append(lit, ']')
		case float64:
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return fmt.Errorf("%v is not a JSON number", x)
			}
			b, _ := json.Marshal(x)
			lit = append(lit, b...)
		case nil:
			lit = append(lit, "null"...)
		case bool:
			lit = strconv.AppendBool(lit, x)
		case int, int64, uint64:
			b, _ := json.Marshal(x)
			lit = append(lit, b...)
		default:
			return fmt.Errorf("a %T cannot be written as JSON", v)
		}
		return nil
	}
	if err := walk(v); err != nil {
		return jsonValue{}, err
	}
	if len(lit) > 0 {
		out.segs = append(out.segs, jsonSegment{text: string(lit)})
	}
	return out, nil
}

// render appends the value's JSON text for the request x; tmp is scratch
// for the templates.
func (v *jsonValue) render(dst []byte, x *policy.Exchange, tmp []byte) ([]byte, []byte) {
	for i := range v.segs {
		s := &v.segs[i]
		if s.str == nil {
			dst = append(dst, s.text...)
			continue
		}
		tmp = s.str.render(tmp[:0], x)
		dst = jsonx.AppendString(dst, b2s(tmp))
	}
	return dst, tmp
}

// jsonEdits are a transform's json settings, compiled, applied in the
// order remove, rename, add.
type jsonEdits struct {
	remove  []pointer
	rename  []jsonRename // by from
	add     []jsonAdd    // by pointer: a member is added before members inside it
	maxBody int
}

type jsonRename struct{ from, to pointer }

type jsonAdd struct {
	at    pointer
	value jsonValue
}

func compileJSON(s *JSONSettings, defaultMax int) (*jsonEdits, []config.FieldError) {
	var errs []config.FieldError
	fail := func(path string, err error) { errs = append(errs, config.FieldError{Path: path, Msg: err.Error()}) }
	j := &jsonEdits{maxBody: s.MaxBodyBytes}
	if j.maxBody == 0 {
		j.maxBody = defaultMax
	}
	for i, r := range s.Remove {
		p, err := parsePointer(r)
		if err != nil {
			fail(fmt.Sprintf("json.remove[%d]", i), err)
			continue
		}
		j.remove = append(j.remove, p)
	}
	for _, from := range slices.Sorted(maps.Keys(s.Rename)) {
		path := "json.rename." + from
		f, err := parsePointer(from)
		if err != nil {
			fail(path, err)
			continue
		}
		t, err := parsePointer(s.Rename[from])
		if err != nil {
			fail(path, err)
			continue
		}
		j.rename = append(j.rename, jsonRename{f, t})
	}
	for _, at := range slices.Sorted(maps.Keys(s.Add)) {
		path := "json.add." + at
		p, err := parsePointer(at)
		if err != nil {
			fail(path, err)
			continue
		}
		v, err := compileJSONValue(s.Add[at])
		if err != nil {
			fail(path, err)
			continue
		}
		j.add = append(j.add, jsonAdd{p, v})
	}
	switch {
	case s.MaxBodyBytes < 0:
		errs = append(errs, config.FieldError{Path: "json.max_body_bytes", Msg: "must not be negative (0 or absent: the default)"})
	case s.MaxBodyBytes > maxBodyBytesLimit:
		errs = append(errs, config.FieldError{Path: "json.max_body_bytes",
			Msg: fmt.Sprintf("must be at most %d (64 MiB): an edited body is held in memory", maxBodyBytesLimit)})
	}
	return j, errs
}

// edit applies the edits to the document d for the request x.
func (j *jsonEdits) edit(d *document, x *policy.Exchange, s *scratch) {
	for _, p := range j.remove {
		d.remove(p.tokens)
	}
	for _, r := range j.rename {
		if n := d.remove(r.from.tokens); n != none {
			d.add(r.to.tokens, n)
		}
	}
	for i := range j.add {
		a := &j.add[i]
		lo := len(d.arena)
		d.arena, s.tmp = a.value.render(d.arena, x, s.tmp)
		n, _ := d.parse(d.arena, true, lo)
		d.add(a.at.tokens, n)
	}
}

// container walks to the container that holds the last token of path.
// With create, members missing on the way are added: an empty array when
// the next token is "-" (append), else an empty object.
func (d *document) container(path []string, create bool) int32 {
	c := d.root
	for i, tok := range path[:len(path)-1] {
		switch d.nodes[c].kind {
		case kindObject:
			_, m := d.member(c, tok)
			if m == none {
				if !create {
					return none
				}
				k := kindObject
				if path[i+1] == "-" { // "/tags/-": a list to append to
					k = kindArray
				}
				m = d.newNode(k)
				d.setKey(m, tok)
				d.insertAfter(c, d.lastChild(c), m)
			}
			c = m
		case kindArray:
			i, ok := arrayIndex(tok, 0, false)
			if !ok {
				return none
			}
			_, it := d.item(c, i)
			if it == none {
				return none
			}
			c = it
		default:
			return none
		}
	}
	return c
}

// remove takes the value at path out of the document and returns it, or
// none when there is no such value.
func (d *document) remove(path []string) int32 {
	c := d.container(path, false)
	if c == none {
		return none
	}
	last := path[len(path)-1]
	switch d.nodes[c].kind {
	case kindObject:
		prev, m := d.member(c, last)
		if m != none {
			d.unlink(c, prev, m)
		}
		return m
	case kindArray:
		i, ok := arrayIndex(last, 0, false)
		if !ok {
			return none
		}
		prev, it := d.item(c, i)
		if it != none {
			d.unlink(c, prev, it)
		}
		return it
	}
	return none
}

// add puts the value n at path as JSON Patch's add does: a member is set
// (replacing one of the same name, where it stood), an array index inserts
// before that item, "-" appends. Members missing on the way are created
// (container); a path through a scalar or a missing item is left alone.
func (d *document) add(path []string, n int32) {
	c := d.container(path, true)
	if c == none {
		return
	}
	last := path[len(path)-1]
	switch d.nodes[c].kind {
	case kindObject:
		d.setKey(n, last)
		prev, m := d.member(c, last)
		if m != none {
			d.unlink(c, prev, m)
		} else {
			prev = d.lastChild(c)
		}
		d.insertAfter(c, prev, n)
	case kindArray:
		count := 0
		for it := d.nodes[c].first; it != none; it = d.nodes[it].next {
			count++
		}
		i, ok := arrayIndex(last, count, true)
		if !ok || i > count {
			return
		}
		prev, _ := d.item(c, i) // for i == count: the last item
		d.insertAfter(c, prev, n)
	}
}
