package config

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
)

func TestMain(m *testing.M) {
	// Policy packages are not linked into this test binary: register
	// stand-ins with the names used by the fixtures.
	RegisterPolicy("key-auth", nil)
	RegisterPolicy("cors", nil)
	RegisterPolicy("rate-limit", checkRateLimitStandIn)
	RegisterPolicy("test-path-joining", func(any) []FieldError {
		return []FieldError{{Path: "", Msg: "whole"}, {Path: "[1]", Msg: "item"}, {Path: "a.b", Msg: "deep"}}
	})
	os.Exit(m.Run())
}

// checkRateLimitStandIn refuses a missing or non-positive limit, enough to
// see the loader place a policy's own errors.
func checkRateLimitStandIn(settings any) []FieldError {
	m, _ := settings.(map[string]any)
	if n, ok := m["limit"].(int); !ok || n < 1 {
		return []FieldError{{Path: "limit", Msg: "limit must be a positive integer"}}
	}
	return nil
}

// lines joins YAML lines so that a fixture's line numbers are its indexes+1.
func lines(ls ...string) string { return strings.Join(ls, "\n") + "\n" }

func envMap(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}
}

// problem is an expected error: its exact location and a fragment of its
// message.
type problem struct {
	at   string // "FILE:LINE:COL"
	frag string
}

// wantProblems asserts that err lists exactly the expected problems, in order.
func wantProblems(t *testing.T, err error, want []problem) {
	t.Helper()
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("error %v (%T) is not Errors", err, err)
	}
	got := make([]string, len(es))
	for i, e := range es {
		got[i] = e.Error()
	}
	if len(es) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%s", len(es), len(want), strings.Join(got, "\n"))
	}
	for i, w := range want {
		prefix := w.at + ": "
		if !strings.HasPrefix(got[i], prefix) || !strings.Contains(got[i], w.frag) {
			t.Errorf("problem %d = %q, want at %s containing %q\nall:\n%s", i, got[i], w.at, w.frag, strings.Join(got, "\n"))
		}
	}
}

func at(line, col int) string { return fmt.Sprintf("c.yaml:%d:%d", line, col) }
