package aggregate

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/config"
)

func TestParseTemplateRefusesWhatCannotBeSent(t *testing.T) {
	for _, tc := range []struct{ path, want string }{
		{"users", `must start with "/"`},
		{"/a/{id", "not closed"},
		{"/a/{x{y}}", `contains "{"`},
		{"/a/}", `"}" without "{"`},
		{"/a/{}", "placeholder {}"},
		{"/a/{1x}", "placeholder {1x}"},
		{"/a/{p.}", "each field after the key"},
		{"/a/{p..x}", "each field after the key"},
		{"/a/{_errors.x}", "not a call key"},
		{"/a b", "must be percent-encoded"},
		{"/a\x00", "must be percent-encoded"},
		{"/caf\xc3\xa9", "non-ASCII"},
		{"/a%2", `"%" must start an escape`},
		{"/a%zz", `"%" must start an escape`},
		{"/a#frag", "fragment"},
	} {
		if _, err := ParseTemplate(tc.path); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseTemplate(%q) = %v, want an error containing %q", tc.path, err, tc.want)
		}
	}
}

// values is a fixed set of placeholder values.
type values struct {
	consumer *string
	params   map[string]string
	fields   map[int]any
}

func (v values) Consumer() (string, bool) {
	if v.consumer == nil {
		return "", false
	}
	return *v.consumer, true
}

func (v values) Param(name string) (string, bool) {
	s, ok := v.params[name]
	return s, ok
}

func (v values) Field(call int, path []string) (string, bool) { return Lookup(v.fields[call], path) }

func mustPlan(t *testing.T, specs ...Spec) *Plan {
	t.Helper()
	p, err := Compile(specs, func(name string) bool { return name == "id" || name == "empty" })
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestExpandEncodesValuesForWhereTheyStand(t *testing.T) {
	alice := "alice smith/admin"
	p := mustPlan(t,
		Spec{Key: "profile", Path: "/users/{consumer}"},
		Spec{Key: "orders", Path: "/orders/{id}/{profile.address.city}.json?user={profile.id}&tag={profile.tags.1}&note={profile.note}&ok={profile.vip}"},
	)
	profile, _ := Decode([]byte(`{"id": 1e3, "vip": true, "note": "a&b=c d+e", "address": {"city": "São Paulo"}, "tags": ["x", "y?z"]}`))
	v := values{consumer: &alice, params: map[string]string{"id": "7"}, fields: map[int]any{0: profile}}

	got, err := p.Template(0).Expand(nil, v)
	if err != nil || string(got) != "/users/alice%20smith%2Fadmin" {
		t.Errorf("profile path = %q, %v", got, err)
	}
	got, err = p.Template(1).Expand([]byte("kept:"), v)
	want := "kept:/orders/7/S%C3%A3o%20Paulo.json?user=1e3&tag=y%3Fz&note=a%26b%3Dc%20d%2Be&ok=true"
	if err != nil || string(got) != want {
		t.Errorf("orders path =\n%q, %v\nwant\n%q", got, err, want)
	}
	if !p.Template(1).HasQuery() || p.Template(0).HasQuery() {
		t.Error("HasQuery is wrong")
	}
}

func TestExpandRefusesValuesThatWouldChangeTheResource(t *testing.T) {
	p := mustPlan(t,
		Spec{Key: "a", Path: "/files/{id}"},
		Spec{Key: "b", Path: "/search?q={id}"},
		Spec{Key: "c", Path: "/users/{consumer}"},
		Spec{Key: "d", Path: "/x/{a.child.name}"},
	)
	for _, id := range []string{"", ".", ".."} {
		_, err := p.Template(0).Expand(nil, values{params: map[string]string{"id": id}})
		var ee *ExpandError
		if !errors.As(err, &ee) || ee.Source != Param || ee.Placeholder != "{id}" {
			t.Errorf("path value %q: %v, want an ExpandError for {id}", id, err)
		}
		// In a query the same value is harmless.
		if got, err := p.Template(1).Expand(nil, values{params: map[string]string{"id": id}}); err != nil || string(got) != "/search?q="+id {
			t.Errorf("query value %q: %q %v", id, got, err)
		}
	}
	_, err := p.Template(2).Expand(nil, values{})
	var ee *ExpandError
	if !errors.As(err, &ee) || ee.Source != Consumer {
		t.Errorf("no consumer: %v", err)
	}
	for _, answer := range []string{`{}`, `{"child": {"name": null}}`, `{"child": {"name": {"x": 1}}}`, `{"child": [1]}`, `null`} {
		v, _ := Decode([]byte(answer))
		_, err := p.Template(3).Expand(nil, values{fields: map[int]any{0: v}})
		if !errors.As(err, &ee) || ee.Source != Field || ee.Key != "a" || ee.Placeholder != "{a.child.name}" {
			t.Errorf("answer %s: %v, want an ExpandError naming a", answer, err)
		}
	}
}

func TestCompileRefusesBadPlans(t *testing.T) {
	for _, tc := range []struct {
		name  string
		specs []Spec
		call  int
		field string
		want  string
	}{
		{"duplicate key", []Spec{{"a", "/a"}, {"a", "/b"}}, 1, "key", "duplicate key"},
		{"reserved key", []Spec{{"_errors", "/a"}}, 0, "key", "not a valid key"},
		{"bad key", []Spec{{"a.b", "/a"}}, 0, "key", "not a valid key"},
		{"bad template", []Spec{{"a", "/a/{"}}, 0, "path", "not closed"},
		{"unknown key", []Spec{{"a", "/a/{b.id}"}}, 0, "path", `no call has the key "b"`},
		{"own key", []Spec{{"a", "/a/{a.id}"}}, 0, "path", "its own call"},
		{"unknown param", []Spec{{"a", "/a/{nope}"}}, 0, "path", "neither {consumer} nor a path parameter"},
		{"cycle", []Spec{{"a", "/a/{c.x}"}, {"b", "/b/{a.x}"}, {"c", "/c/{b.x}"}}, 0, "path", "cycle"},
	} {
		_, err := Compile(tc.specs, func(name string) bool { return name == "id" })
		var se *SpecError
		if !errors.As(err, &se) || se.Call != tc.call || se.Field != tc.field || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want aggregate[%d].%s containing %q", tc.name, err, tc.call, tc.field, tc.want)
		}
	}
}

func TestScheduleStartsCallsOnceTheirInputsAreKnown(t *testing.T) {
	// a and e depend on nothing; b and c read a; d reads b and c.
	p := mustPlan(t,
		Spec{"a", "/a"},
		Spec{"b", "/b/{a.x}"},
		Spec{"c", "/c/{a.x}/{a.y}"},
		Spec{"d", "/d/{b.x}/{c.x}"},
		Spec{"e", "/e"},
	)
	if !p.Referenced(0) || p.Referenced(4) || !slices.Equal(p.Deps(3), []int{1, 2}) || !slices.Equal(p.Deps(2), []int{0}) {
		t.Fatalf("plan: referenced %v %v, deps %v %v", p.Referenced(0), p.Referenced(4), p.Deps(3), p.Deps(2))
	}
	var s Schedule
	s.Reset(p)
	if got := s.Start(); !slices.Equal(got, []int{0, 4}) {
		t.Fatalf("Start = %v", got)
	}
	ready, skipped := s.Finish(0, true)
	if !slices.Equal(ready, []int{1, 2}) || len(skipped) != 0 {
		t.Fatalf("after a: ready %v skipped %v", ready, skipped)
	}
	if ready, _ := s.Finish(1, true); len(ready) != 0 {
		t.Fatalf("d started before c finished: %v", ready)
	}
	if ready, _ := s.Finish(2, true); !slices.Equal(ready, []int{3}) {
		t.Fatalf("after c: %v", ready)
	}

	// The same request again, where a fails: everything after it is skipped.
	s.Reset(p)
	s.Start()
	ready, skipped = s.Finish(0, false)
	slices.Sort(skipped)
	if len(ready) != 0 || !slices.Equal(skipped, []int{1, 2, 3}) {
		t.Fatalf("a failed: ready %v skipped %v", ready, skipped)
	}
	if s.State(0) != Failed || s.State(3) != Skipped || s.State(4) != Started {
		t.Fatalf("states %v %v %v", s.State(0), s.State(3), s.State(4))
	}

	// b fails after a succeeded: d is skipped once, c still runs.
	s.Reset(p)
	s.Start()
	s.Finish(0, true)
	if _, skipped := s.Finish(1, false); !slices.Equal(skipped, []int{3}) {
		t.Fatalf("b failed: skipped %v", skipped)
	}
	if ready, skipped := s.Finish(2, true); len(ready)+len(skipped) != 0 {
		t.Fatalf("c finished after d was skipped: ready %v skipped %v", ready, skipped)
	}
}

func TestAppendAnswerMergesUnderKeys(t *testing.T) {
	out := AppendAnswer(nil, []string{"profile", "empty", "orders", `we"ird`}, []Result{
		{Body: []byte(" {\"id\": 1}\n")},
		{Body: nil},
		{Status: 503, Error: "circuit breaker open"},
		{Status: 200, Error: "answer is not JSON"},
	})
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	want := `{"profile":{"id": 1},"empty":null,"_errors":{"orders":{"status":503,"error":"circuit breaker open"},"we\"ird":{"status":200,"error":"answer is not JSON"}}}` + "\n"
	if string(out) != want {
		t.Errorf("answer\n%s\nwant\n%s", out, want)
	}
	if out := AppendAnswer(nil, []string{"a"}, []Result{{Body: []byte("[1]")}}); string(out) != "{\"a\":[1]}\n" {
		t.Errorf("no errors: %s", out)
	}
}

func TestDecodeAndLookup(t *testing.T) {
	for _, bad := range []string{"{", `{"a":1} {"b":2}`, "<html>", "nul"} {
		if _, err := Decode([]byte(bad)); err == nil {
			t.Errorf("Decode(%q) accepted it", bad)
		}
		if IsJSON([]byte(bad)) {
			t.Errorf("IsJSON(%q)", bad)
		}
	}
	if !IsJSON(nil) || !IsJSON([]byte(" \n")) || !IsJSON([]byte(`"s"`)) {
		t.Error("IsJSON refuses an empty body or a scalar")
	}
	v, err := Decode([]byte(`{"n": 12345678901234567890, "f": 1.50, "b": false, "s": "x", "a": [{"id": "first"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{"n": "12345678901234567890", "f": "1.50", "b": "false", "s": "x", "a.0.id": "first"} {
		if got, ok := Lookup(v, strings.Split(path, ".")); !ok || got != want {
			t.Errorf("Lookup(%s) = %q %v, want %q", path, got, ok, want)
		}
	}
	for _, path := range []string{"a", "a.1.id", "a.x", "a.-1.id", "missing", "s.x"} {
		if got, ok := Lookup(v, strings.Split(path, ".")); ok {
			t.Errorf("Lookup(%s) = %q, want no value", path, got)
		}
	}
}

// The configuration's validation parses call paths with its own code (the
// config package may not import the data plane); both must accept exactly
// the same paths.
func TestConfigValidationAgreesWithTheParser(t *testing.T) {
	for _, path := range []string{
		"/a", "/a/{consumer}", "/a/{id}?x={id}&y=1", "/a/{b.c.d}", "/a/{b.0}", "/a/{b.x-y}", "/a%20b", "/a?q=%7B",
		"a", "/a/{", "/a/}", "/a/{}", "/a/{1x}", "/a/{b.}", "/a/{b..c}", "/a/{_errors.x}", "/a/{-b.x}", "/a b",
		"/a%2", "/a%zz", "/a#x", "/a|b", "/a\\b", "/a/{x{y}}", "/a/{b.c{d}}",
	} {
		_, perr := ParseTemplate(path)
		yaml := "services: [{name: s, targets: [{url: \"http://127.0.0.1:1\"}]}]\n" +
			"routes:\n  - name: r\n    paths: [\"/r/{id}\"]\n    aggregate:\n" +
			"      - {key: b, service: s, path: \"/b\"}\n" +
			"      - {key: a, service: s, path: " + jsonString(path) + "}\n"
		_, cerr := config.Parse("t.yaml", []byte(yaml))
		if (perr == nil) != (cerr == nil) {
			t.Errorf("path %q: parser says %v, configuration says %v", path, perr, cerr)
		}
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
