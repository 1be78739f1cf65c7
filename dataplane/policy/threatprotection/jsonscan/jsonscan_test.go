package jsonscan_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tollgate/tollgate/dataplane/policy/threatprotection/jsonscan"
)

func TestValidity(t *testing.T) {
	for _, doc := range []string{
		`{}`, `[]`, ` {"a": [1, 2.5, -3e+7, true, false, null, "x"]} `, `"lone"`, `0`, `-0.5E-2`,
		`{"nested": {"deeper": [[[{}]]]}}`, `"esc \" \\ \/ \b \f \n \r \t \u00e9 \ud83d\ude00"`,
		`[1,[2,[3]]]`, "\t\r\n[\n]\n", `{"":""}`, `"\ud800"`, "\"\xff\"",
		`1`, `[`, `]`, `{`, `{"a"}`, `{"a":}`, `{"a":1,}`, `[1,]`, `[,1]`, `01`, `1.`, `.5`, `-`, `1e`,
		`tru`, `nul`, `falsey`, `"unterminated`, "\"ctl\x01\"", `"\x"`, `"\u12g4"`, `{"a":1}x`, ``, ` `,
		`{"a" 1}`, `{1:2}`, `[1 2]`, `+1`, `[-]`, `1.5e+`, `"\u00`, `"\`, "[\"a\",\n]",
	} {
		p, _ := jsonscan.Scan([]byte(doc), jsonscan.Limits{})
		if got, want := p == jsonscan.OK, json.Valid([]byte(doc)); got != want {
			t.Errorf("Scan(%q) = %v, json.Valid = %v", doc, p, want)
		}
	}
}

func TestLimits(t *testing.T) {
	deep := strings.Repeat("[", 5) + strings.Repeat("]", 5)
	cases := []struct {
		doc  string
		lim  jsonscan.Limits
		want jsonscan.Problem
	}{
		{deep, jsonscan.Limits{Depth: 5}, jsonscan.OK},
		{deep, jsonscan.Limits{Depth: 4}, jsonscan.TooDeep},
		{`{"a":{"b":{}}}`, jsonscan.Limits{Depth: 3}, jsonscan.OK},
		{`{"a":{"b":{"c":1}}}`, jsonscan.Limits{Depth: 2}, jsonscan.TooDeep},
		{`"scalar"`, jsonscan.Limits{Depth: 1}, jsonscan.OK},
		{`{"a":1,"b":2,"c":3}`, jsonscan.Limits{Keys: 3}, jsonscan.OK},
		{`{"a":1,"b":2,"c":3}`, jsonscan.Limits{Keys: 2}, jsonscan.TooManyKeys},
		// Keys count per object, not per document.
		{`{"a":{"x":1,"y":2},"b":{"x":1,"y":2}}`, jsonscan.Limits{Keys: 2}, jsonscan.OK},
		{`[1,2,3]`, jsonscan.Limits{ArrayItems: 3}, jsonscan.OK},
		{`[1,2,3]`, jsonscan.Limits{ArrayItems: 2}, jsonscan.TooManyItems},
		{`[[1,2],[3,4],[5]]`, jsonscan.Limits{ArrayItems: 3}, jsonscan.OK},
		{`[]`, jsonscan.Limits{ArrayItems: 1}, jsonscan.OK},
		{`"abcd"`, jsonscan.Limits{StringLength: 4}, jsonscan.OK},
		{`"abcde"`, jsonscan.Limits{StringLength: 4}, jsonscan.StringTooLong},
		{`{"abcde":1}`, jsonscan.Limits{StringLength: 4}, jsonscan.StringTooLong},
		// Escapes count as what they stand for: é is two bytes, 😀 four.
		{`"\u00e9\u00e9"`, jsonscan.Limits{StringLength: 4}, jsonscan.OK},
		{`"\ud83d\ude00"`, jsonscan.Limits{StringLength: 4}, jsonscan.OK},
		{`"\ud83d\ude00x"`, jsonscan.Limits{StringLength: 4}, jsonscan.StringTooLong},
		{`"\n\t\"\\"`, jsonscan.Limits{StringLength: 4}, jsonscan.OK},
		// A shape problem is found before what follows it is read.
		{`[[[[[` + "\x00", jsonscan.Limits{Depth: 2}, jsonscan.TooDeep},
		{`[[[[[` + "\x00", jsonscan.Limits{Depth: 9}, jsonscan.Invalid},
	}
	for _, c := range cases {
		if got, _ := jsonscan.Scan([]byte(c.doc), c.lim); got != c.want {
			t.Errorf("Scan(%q, %+v) = %v, want %v", c.doc, c.lim, got, c.want)
		}
	}
}

// TestPlainRunsAtEveryAlignment moves a special byte through every position
// of a long string, so the eight-byte scan meets it at each offset.
func TestPlainRunsAtEveryAlignment(t *testing.T) {
	for pos := range 40 {
		for _, special := range []string{`\"`, `\\`, `\n`, "\x1f", "\u00e9", `"`} {
			doc := []byte(`"` + strings.Repeat("a", pos) + special + strings.Repeat("b", 40-pos) + `"`)
			p, _ := jsonscan.Scan(doc, jsonscan.Limits{})
			if got, want := p == jsonscan.OK, json.Valid(doc); got != want {
				t.Fatalf("Scan(%q) = %v, json.Valid = %v", doc, p, want)
			}
		}
	}
}

// shape measures a valid document with encoding/json: the reference the
// scanner's limits are checked against.
type shape struct{ depth, keys, items, strlen int }

func measure(doc []byte) (shape, error) {
	var s shape
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	type open struct {
		object bool
		n      int
	}
	var stack []open
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return s, nil
		}
		if err != nil {
			return s, err
		}
		isKey := len(stack) > 0 && stack[len(stack)-1].object && stack[len(stack)-1].n%2 == 0
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			continue
		}
		if len(stack) > 0 {
			top := &stack[len(stack)-1]
			top.n++
			if top.object && isKey {
				s.keys = max(s.keys, (top.n+1)/2)
			} else if !top.object {
				s.items = max(s.items, top.n)
			}
		}
		switch v := tok.(type) {
		case json.Delim:
			stack = append(stack, open{object: v == '{'})
			s.depth = max(s.depth, len(stack))
		case string:
			s.strlen = max(s.strlen, len(v))
		}
	}
}

func FuzzJSONScan(f *testing.F) {
	for _, seed := range []string{
		`{"a":[1,2,{"b":"c"}],"d":null}`, `[[[[]]]]`, `"\ud83d\ude00\u00e9"`, `-1.5e10`, `{"a":1,}`,
		`[1,2,3,4,5,6,7,8,9]`, `{"k1":1,"k2":2,"k3":{"k4":"xxxxxxxxxxxxxxxxxxxx"}}`, "\"\xff\xfe\"", `"\ud800\u0041"`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		p, _ := jsonscan.Scan(doc, jsonscan.Limits{})
		valid := json.Valid(doc)
		if (p == jsonscan.OK) != valid {
			// encoding/json refuses nesting beyond 10000 levels; Scan leaves
			// that to Limits.
			if tooDeep, _ := jsonscan.Scan(doc, jsonscan.Limits{Depth: 10000}); !(tooDeep == jsonscan.TooDeep && !valid) {
				t.Fatalf("Scan(%q) = %v, json.Valid = %v", doc, p, valid)
			}
		}
		// Limits never turn a broken document into an accepted one.
		for _, lim := range []jsonscan.Limits{{Depth: 1}, {Keys: 1}, {ArrayItems: 1}, {StringLength: 1}, {Depth: 3, Keys: 2, ArrayItems: 2, StringLength: 3}} {
			if q, _ := jsonscan.Scan(doc, lim); q == jsonscan.OK && p != jsonscan.OK {
				t.Fatalf("Scan(%q, %+v) = OK, without limits %v", doc, lim, p)
			}
		}
		if p != jsonscan.OK || !utf8.Valid(doc) {
			return // decoded lengths of invalid UTF-8 are not Scan's business
		}
		s, err := measure(doc)
		if err != nil {
			t.Fatalf("valid %q does not decode: %v", doc, err)
		}
		exact := jsonscan.Limits{Depth: max(s.depth, 1), Keys: max(s.keys, 1), ArrayItems: max(s.items, 1), StringLength: max(s.strlen, 1)}
		if q, _ := jsonscan.Scan(doc, exact); q != jsonscan.OK {
			t.Fatalf("Scan(%q) at its own shape %+v = %v", doc, s, q)
		}
		for _, c := range []struct {
			v    int
			lim  jsonscan.Limits
			want jsonscan.Problem
		}{
			{s.depth, jsonscan.Limits{Depth: s.depth - 1}, jsonscan.TooDeep},
			{s.keys, jsonscan.Limits{Keys: s.keys - 1}, jsonscan.TooManyKeys},
			{s.items, jsonscan.Limits{ArrayItems: s.items - 1}, jsonscan.TooManyItems},
			{s.strlen, jsonscan.Limits{StringLength: s.strlen - 1}, jsonscan.StringTooLong},
		} {
			if c.v < 2 {
				continue // a zero limit means none
			}
			if q, _ := jsonscan.Scan(doc, c.lim); q != c.want {
				t.Fatalf("Scan(%q, %+v) = %v, want %v (shape %+v)", doc, c.lim, q, c.want, s)
			}
		}
	})
}

// document4K is a typical API payload of about 4 KiB: objects in an array,
// short strings, numbers, a nested object and some escapes.
func document4K() []byte {
	var b strings.Builder
	b.WriteString(`{"orders":[`)
	for i := 0; b.Len() < 4000; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":%d,"customer":"customer-%04d","note":"line\none \"quoted\"","total":%d.%02d,`+
			`"paid":%t,"items":[{"sku":"SKU-%d","qty":%d}],"address":{"city":"Zürich","zip":"80%02d"}}`,
			i, i, i*37, i%100, i%2 == 0, i*7, i%5+1, i%100)
	}
	b.WriteString(`],"next":null}`)
	return []byte(b.String())
}

var limits = jsonscan.Limits{Depth: 32, Keys: 1000, ArrayItems: 10000, StringLength: 65536}

func BenchmarkJSONScan(b *testing.B) {
	doc := document4K()
	if p, _ := jsonscan.Scan(doc, limits); p != jsonscan.OK {
		b.Fatalf("benchmark document: %v", p)
	}
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		jsonscan.Scan(doc, limits)
	}
}

// The alternatives, for comparison: encoding/json's validity check (no
// shape) and its token stream (what a scanner built on it would pay).
func BenchmarkJSONValid(b *testing.B) {
	doc := document4K()
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		json.Valid(doc)
	}
}

func BenchmarkJSONDecoderToken(b *testing.B) {
	doc := document4K()
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		dec := json.NewDecoder(bytes.NewReader(doc))
		for {
			if _, err := dec.Token(); err != nil {
				break
			}
		}
	}
}
