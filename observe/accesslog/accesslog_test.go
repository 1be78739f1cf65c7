package accesslog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"github.com/tollgate/tollgate/internal/testutil"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// line is the decoded form of one access log line.
type line struct {
	Time       string   `json:"time"`
	RequestID  *string  `json:"request_id"`
	Route      *string  `json:"route"`
	Service    *string  `json:"service"`
	Consumer   *string  `json:"consumer"`
	Method     *string  `json:"method"`
	Path       *string  `json:"path"`
	Status     *int     `json:"status"`
	Bytes      *int64   `json:"bytes"`
	UpstreamMS *float64 `json:"upstream_ms"`
	TotalMS    *float64 `json:"total_ms"`
	ClientIP   *string  `json:"client_ip"`
	Upstream   *string  `json:"upstream"`
}

func decodeLines(t *testing.T, data []byte) []line {
	t.Helper()
	var out []line
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		var l line
		if err := dec.Decode(&l); err != nil {
			t.Fatalf("line %q is not valid JSON: %v", sc.Text(), err)
		}
		out = append(out, l)
	}
	return out
}

// checkLine asserts that l is the encoding of e.
func checkLine(t *testing.T, l line, e *Entry) {
	t.Helper()
	ts, err := time.Parse(time.RFC3339Nano, l.Time)
	if err != nil {
		t.Errorf("time %q: %v", l.Time, err)
	} else if !ts.Equal(e.Time) || ts.Location() != time.UTC {
		t.Errorf("time = %v, want %v in UTC", ts, e.Time)
	}
	strs := []struct {
		name      string
		got       *string
		want      string
		omitEmpty bool
	}{
		{"request_id", l.RequestID, e.RequestID, false},
		{"route", l.Route, e.Route, false},
		{"service", l.Service, e.Service, false},
		{"consumer", l.Consumer, e.Consumer, false},
		{"method", l.Method, e.Method, false},
		{"path", l.Path, e.Path, false},
		{"client_ip", l.ClientIP, e.ClientIP, false},
		{"upstream", l.Upstream, e.UpstreamTarget, true},
	}
	for _, s := range strs {
		switch {
		case s.got == nil && !(s.omitEmpty && s.want == ""):
			t.Errorf("%s missing", s.name)
		case s.got != nil && s.omitEmpty && s.want == "":
			t.Errorf("%s = %q, want it left out", s.name, *s.got)
		case s.got != nil && *s.got != decoded(s.want):
			t.Errorf("%s = %q, want %q", s.name, *s.got, s.want)
		}
	}
	if l.Status == nil || *l.Status != e.Status {
		t.Errorf("status = %v, want %d", l.Status, e.Status)
	}
	if l.Bytes == nil || *l.Bytes != e.Bytes {
		t.Errorf("bytes = %v, want %d", l.Bytes, e.Bytes)
	}
	ms := []struct {
		name string
		got  *float64
		want time.Duration
	}{
		{"upstream_ms", l.UpstreamMS, e.UpstreamDuration},
		{"total_ms", l.TotalMS, e.TotalDuration},
	}
	for _, m := range ms {
		// Three decimals of milliseconds, truncated: within a microsecond.
		want := float64(m.want) / float64(time.Millisecond)
		if m.got == nil {
			t.Errorf("%s missing", m.name)
		} else if math.Abs(*m.got-want) > 0.001+1e-12*math.Abs(want) {
			t.Errorf("%s = %v, want %v", m.name, *m.got, want)
		}
	}
}

// decoded is what a JSON decoder gives back for s: each byte of invalid
// UTF-8 becomes U+FFFD.
func decoded(s string) string { return string([]rune(s)) }

var sample = Entry{
	Time:             time.Date(2026, 11, 25, 17, 48, 3, 123456789, time.FixedZone("CET", 3600)),
	RequestID:        "0af7651916cd43dd8448eb211c80319c",
	Route:            "users-api",
	Service:          "users",
	Consumer:         "alice",
	Method:           "GET",
	Path:             "/users/42?expand=orders",
	Status:           200,
	Bytes:            1234,
	UpstreamDuration: 12345678 * time.Nanosecond,
	TotalDuration:    13 * time.Millisecond,
	ClientIP:         "127.0.0.1",
	UpstreamTarget:   "127.0.0.1:9001",
}

func withEntry(f func(e *Entry)) Entry {
	e := sample
	f(&e)
	return e
}

func TestLinesDecodeToTheirEntries(t *testing.T) {
	tests := []struct {
		name  string
		entry Entry
	}{
		{"every field", sample},
		{"no upstream call", withEntry(func(e *Entry) {
			e.UpstreamTarget, e.UpstreamDuration, e.Service = "", 0, ""
			e.Status = 404
		})},
		{"anonymous consumer and empty strings", withEntry(func(e *Entry) {
			e.Consumer, e.RequestID, e.Route = "", "", ""
		})},
		{"quotes and backslashes", withEntry(func(e *Entry) {
			e.Path = `/a"b\c/"` + "\\"
			e.Consumer = `"quoted"`
		})},
		{"control characters", withEntry(func(e *Entry) {
			e.Path = "/x\x00\x01\t\n\r\x1f\x7f"
			e.RequestID = "id\x1b[31mred"
		})},
		{"invalid UTF-8", withEntry(func(e *Entry) {
			e.Path = "/caf\xe9/\xff\xfe/\xed\xa0\x80"
			e.Consumer = "\xc3"
		})},
		{"multibyte and line separators", withEntry(func(e *Entry) {
			e.Path = "/café/日本/😀/  /�"
		})},
		{"large numbers", withEntry(func(e *Entry) {
			e.Bytes = math.MaxInt64
			e.TotalDuration = 90 * time.Minute
			e.UpstreamDuration = time.Nanosecond
		})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := appendEntry(nil, &tt.entry)
			if !bytes.HasSuffix(b, []byte("}\n")) || bytes.Count(b, []byte("\n")) != 1 {
				t.Fatalf("not exactly one line: %q", b)
			}
			lines := decodeLines(t, b)
			if len(lines) != 1 {
				t.Fatalf("got %d lines", len(lines))
			}
			checkLine(t, lines[0], &tt.entry)
		})
	}
}

func TestZeroTimeMeansNow(t *testing.T) {
	before := time.Now()
	e := sample
	e.Time = time.Time{}
	l := decodeLines(t, appendEntry(nil, &e))[0]
	ts, err := time.Parse(time.RFC3339Nano, l.Time)
	if err != nil {
		t.Fatal(err)
	}
	if ts.Before(before.Truncate(time.Microsecond)) || ts.After(time.Now()) {
		t.Errorf("time = %v, want between %v and now", ts, before)
	}
}

func TestFileDestination(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	if err := os.WriteFile(path, []byte(`{"earlier":"line"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := New(path)
	if err != nil {
		t.Fatal(err)
	}
	entries := []Entry{sample, withEntry(func(e *Entry) { e.Status = 502; e.Path = "/two" })}
	for i := range entries {
		l.Log(&entries[i])
	}
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	first, rest, _ := bytes.Cut(data, []byte("\n"))
	if string(first) != `{"earlier":"line"}` {
		t.Fatalf("existing content not kept: %q", first)
	}
	lines := decodeLines(t, rest)
	if len(lines) != len(entries) {
		t.Fatalf("got %d lines, want %d", len(lines), len(entries))
	}
	for i := range entries {
		checkLine(t, lines[i], &entries[i])
	}
	if l.Dropped() != 0 {
		t.Errorf("Dropped = %d", l.Dropped())
	}
}

func TestNewFileMode(t *testing.T) {
	umask := syscall.Umask(0)
	syscall.Umask(umask)
	path := filepath.Join(t.TempDir(), "new.log")
	l, err := New(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := os.FileMode(0o644) &^ os.FileMode(umask); st.Mode().Perm() != want {
		t.Errorf("mode = %v, want %v", st.Mode().Perm(), want)
	}
}

func TestNewRefusesUnopenableFile(t *testing.T) {
	_, err := New(filepath.Join(t.TempDir(), "missing-dir", "access.log"))
	if err == nil {
		t.Fatal("New accepted a file in a missing directory")
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestFlushesWithoutClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	l, err := New(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	e := sample
	l.Log(&e)
	// Nothing fills the 64 KiB buffer, so only the periodic flush can write it.
	waitFor(t, "the line to reach the file", func() bool {
		data, _ := os.ReadFile(path)
		return bytes.Contains(data, []byte(sample.RequestID))
	})
}

func TestReopenAfterRename(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	rotated := path + ".1"
	l, err := New(path)
	if err != nil {
		t.Fatal(err)
	}
	before := withEntry(func(e *Entry) { e.RequestID = "before-rotation" })
	after := withEntry(func(e *Entry) { e.RequestID = "after-rotation" })

	l.Log(&before)
	if err := os.Rename(path, rotated); err != nil {
		t.Fatal(err)
	}
	if err := l.Reopen(); err != nil {
		t.Fatalf("Reopen: %v", err)
	}
	l.Log(&after)
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	files := []struct {
		path string
		want Entry
	}{{rotated, before}, {path, after}}
	for _, f := range files {
		data, err := os.ReadFile(f.path)
		if err != nil {
			t.Fatal(err)
		}
		lines := decodeLines(t, data)
		if len(lines) != 1 {
			t.Fatalf("%s has %d lines, want 1: %q", filepath.Base(f.path), len(lines), data)
		}
		checkLine(t, lines[0], &f.want)
	}
	if err := l.Reopen(); err != ErrClosed {
		t.Errorf("Reopen after Close = %v, want ErrClosed", err)
	}
}

func TestReopenFailureKeepsOldFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "logs", "access.log")
	if err := os.Mkdir(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := New(path)
	if err != nil {
		t.Fatal(err)
	}
	// Moving the directory away makes the path unopenable.
	moved := filepath.Join(dir, "moved")
	if err := os.Rename(filepath.Dir(path), moved); err != nil {
		t.Fatal(err)
	}
	if err := l.Reopen(); err == nil {
		t.Fatal("Reopen succeeded on a missing directory")
	}
	e := sample
	l.Log(&e)
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	data, err := os.ReadFile(filepath.Join(moved, "access.log"))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(decodeLines(t, data)); n != 1 {
		t.Fatalf("old file has %d lines, want 1", n)
	}
}

func TestStandardStreams(t *testing.T) {
	streams := []struct {
		dest string
		swap func(*os.File) *os.File // installs f, returns the previous
	}{
		{"stdout", func(f *os.File) (old *os.File) { old, os.Stdout = os.Stdout, f; return old }},
		{"", func(f *os.File) (old *os.File) { old, os.Stdout = os.Stdout, f; return old }},
		{"stderr", func(f *os.File) (old *os.File) { old, os.Stderr = os.Stderr, f; return old }},
	}
	for _, s := range streams {
		t.Run("dest="+s.dest, func(t *testing.T) {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			old := s.swap(w)
			l, err := New(s.dest)
			s.swap(old)
			if err != nil {
				t.Fatal(err)
			}
			e := sample
			l.Log(&e)
			if err := l.Reopen(); err != nil {
				t.Errorf("Reopen on a stream: %v", err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			// The logger does not own the stream; close it here to end the read.
			w.Close()
			var buf bytes.Buffer
			if _, err := buf.ReadFrom(r); err != nil {
				t.Fatal(err)
			}
			lines := decodeLines(t, buf.Bytes())
			if len(lines) != 1 {
				t.Fatalf("got %d lines, want 1", len(lines))
			}
			checkLine(t, lines[0], &e)
		})
	}
}

func TestOffAndNilDiscard(t *testing.T) {
	off, err := New("off")
	if err != nil {
		t.Fatal(err)
	}
	for name, l := range map[string]*Logger{"off": off, "nil": nil, "zero": {}} {
		t.Run(name, func(t *testing.T) {
			e := sample
			allocs := testing.AllocsPerRun(100, func() { l.Log(&e) })
			if allocs != 0 {
				t.Errorf("Log allocates %v", allocs)
			}
			if err := l.Reopen(); err != nil {
				t.Errorf("Reopen: %v", err)
			}
			if err := l.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			if l.Dropped() != 0 {
				t.Errorf("Dropped = %d", l.Dropped())
			}
		})
	}
}

func TestDropsInsteadOfBlocking(t *testing.T) {
	// A pipe nobody reads: the writer blocks once the pipe's buffer is full.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	l := start(w, "", true, 4)
	e := sample
	e.Path = "/" + strings.Repeat("x", 1000)
	const bound = 1_000_000
	logged := 0
	for l.Dropped() == 0 && logged < bound {
		l.Log(&e) // returning at all shows Log does not block
		logged++
	}
	if l.Dropped() == 0 {
		t.Fatalf("no line dropped after %d lines to a stuck writer", logged)
	}
	// Unblock the writer: its write now fails, which Close reports.
	r.Close()
	done := make(chan error, 1)
	go func() { done <- l.Close() }()
	select {
	case err := <-done:
		if err == nil {
			t.Error("Close returned no error after writes to a closed pipe")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
	before := l.Dropped()
	l.Log(&e)
	if l.Dropped() != before+1 {
		t.Error("a line logged after Close was not counted as dropped")
	}
}

func TestLogDoesNotAllocate(t *testing.T) {
	if testutil.RaceEnabled {
		t.Skip("sync.Pool drops items on purpose under the race detector")
	}
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	l := start(devNull, "", true, queueLines)
	defer l.Close()
	e := sample
	// AllocsPerRun runs on one P, where the writer only runs once Log's caller
	// yields. Warm the pool the same way: queue more lines than will be
	// measured, then let the writer hand every buffer back.
	const runs = 1000
	prev := runtime.GOMAXPROCS(1)
	for range 2 * runs {
		l.Log(&e)
	}
	runtime.GOMAXPROCS(prev)
	waitFor(t, "the writer to drain the queue", func() bool { return len(l.lines) == 0 })
	allocs := testing.AllocsPerRun(runs, func() { l.Log(&e) })
	if allocs != 0 {
		t.Fatalf("Log allocates %v times per call", allocs)
	}
	if l.Dropped() != 0 {
		t.Fatalf("Dropped = %d, the measurement did not exercise the queue", l.Dropped())
	}
}

func BenchmarkLog(b *testing.B) {
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	l := start(devNull, "", true, queueLines)
	defer l.Close()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		e := sample
		for pb.Next() {
			l.Log(&e)
		}
	})
	b.ReportMetric(float64(l.Dropped())/float64(b.N), "dropped/op")
}

func BenchmarkAppendEntry(b *testing.B) {
	buf := make([]byte, 0, 1024)
	e := sample
	b.ReportAllocs()
	for b.Loop() {
		buf = appendEntry(buf[:0], &e)
	}
	b.SetBytes(int64(len(buf)))
}
