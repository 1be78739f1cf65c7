package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

type inlineBase struct {
	Anonymous string `yaml:"anonymous"`
}

type sampleSettings struct {
	inlineBase `yaml:",inline"`
	Limit      int               `yaml:"limit"`
	Window     Duration          `yaml:"window"`
	Per        string            `yaml:"per"`
	Ratio      float64           `yaml:"ratio"`
	On         *bool             `yaml:"on"`
	Allow      []string          `yaml:"allow"`
	Headers    map[string]string `yaml:"headers"`
	Nested     struct {
		Depth uint8 `yaml:"depth"`
	} `yaml:"nested"`
}

func TestDecodeSettingsFillsEveryKind(t *testing.T) {
	in := map[string]any{
		"anonymous": "guest", "limit": 100, "window": "1m", "per": "consumer", "ratio": 1,
		"on": true, "allow": []any{"a", "b"}, "headers": map[string]any{"X-A": "1", "X-B": 2},
		"nested": map[string]any{"depth": float64(3)}, // JSON numbers are float64
	}
	var s sampleSettings
	if errs := DecodeSettings(in, &s); len(errs) > 0 {
		t.Fatalf("errors: %v", errs)
	}
	if s.Anonymous != "guest" || s.Limit != 100 || s.Window.D() != time.Minute || s.Per != "consumer" ||
		s.Ratio != 1 || s.On == nil || !*s.On || s.Nested.Depth != 3 {
		t.Errorf("decoded %+v", s)
	}
	if !reflect.DeepEqual(s.Allow, []string{"a", "b"}) || !reflect.DeepEqual(s.Headers, map[string]string{"X-A": "1", "X-B": "2"}) {
		t.Errorf("allow %v headers %v", s.Allow, s.Headers)
	}
}

func TestDecodeSettingsReportsEveryProblem(t *testing.T) {
	in := map[string]any{
		"limt": 5, "window": "soon", "ratio": "high", "allow": []any{"a", 3, map[string]any{}},
		"nested": map[string]any{"depth": 300}, "on": "yes",
	}
	var s sampleSettings
	errs := DecodeSettings(in, &s)
	got := map[string]string{}
	for _, e := range errs {
		got[e.Path] = e.Msg
	}
	want := map[string]string{
		"limt":         `did you mean "limit"`,
		"window":       "invalid duration",
		"ratio":        "expected a number",
		"allow[2]":     "expected a string",
		"nested.depth": "expected a non-negative integer",
		"on":           "expected true or false",
	}
	for path, frag := range want {
		if !strings.Contains(got[path], frag) {
			t.Errorf("%s: got %q, want it to contain %q", path, got[path], frag)
		}
	}
	// A number where a string is expected is taken as written (YAML reads
	// `version: 2` as a number).
	var zero sampleSettings
	if errs := DecodeSettings(map[string]any{"window": 0}, &zero); len(errs) > 0 || zero.Window != 0 {
		t.Errorf("a bare 0 duration: %v", errs)
	}
	if s.Allow[1] != "3" {
		t.Errorf("allow[1] = %q, want \"3\"", s.Allow[1])
	}
	if len(errs) != len(want) {
		t.Errorf("%d errors, want %d: %v", len(errs), len(want), errs)
	}
}
