package edge

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// scanAll scans raw in one piece, then byte by byte, and checks both agree.
func scanAll(t *testing.T, raw string) (*Stream, int, error) {
	t.Helper()
	var whole Stream
	n, err := whole.Scan([]byte(raw))
	var bytewise Stream
	m := 0
	var berr error
	for i := 0; i < len(raw) && berr == nil; i++ {
		k, e := bytewise.Scan([]byte{raw[i]})
		m += k
		berr = e
	}
	if n != m || !errors.Is(berr, err) || whole.Idle() != bytewise.Idle() || whole.Checking() != bytewise.Checking() {
		t.Fatalf("%q: whole (%d, %v, idle %v, checking %v), byte by byte (%d, %v, idle %v, checking %v)",
			raw, n, err, whole.Idle(), whole.Checking(), m, berr, bytewise.Idle(), bytewise.Checking())
	}
	return &whole, n, err
}

func TestStream(t *testing.T) {
	const get = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
	bad := func(raw string) (string, int) { return strings.ReplaceAll(raw, "|", ""), strings.IndexByte(raw, '|') }
	cases := []struct {
		name           string
		raw            string
		at             int // where the bad line ending is found; -1: none
		idle, checking bool
	}{
		{"request", get, -1, true, true},
		{"empty lines first", "\r\n\r\n" + get, -1, true, true},
		{"pipelined", get + get + get, -1, true, true},
		{"part of a head", get[:20], -1, false, true},
		{"part of a CRLF", get[:len(get)-1], -1, false, true},
		{"body with line endings", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\na\nb\rc" + get, -1, true, true},
		{"part of a body", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\na\n", -1, false, true},
		{"zero length", "POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n" + get, -1, true, true},
		{"length with OWS, any case, repeated", "POST / HTTP/1.1\r\ncontent-LENGTH: \t 2 \t\r\nContent-Length:2\r\n\r\n\n\n" + get, -1, true, true},
		{"other fields alike", "POST / HTTP/1.1\r\nContent-Lengths: 9\r\nX-Content-Length: 9\r\nTransfer-Encodings: x\r\n\r\n" + get, -1, true, true},
		{"long name", "GET / HTTP/1.1\r\nX-" + strings.Repeat("a", 100) + ": v\r\n\r\n", -1, true, true},
		{"chunked", "POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n4\r\n\n\r\r\n\r\nA;x=\"y\"\r\n0123456789\r\n0\r\n\r\n" + get, -1, true, true},
		{"chunked with trailer", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1 \r\nz\r\n00\r\nX-T: 1\r\nX-U: 2\r\n\r\n" + get, -1, true, true},
		{"part of a chunk", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc", -1, false, true},
		{"large chunk", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n", -1, false, true},

		// The framing CheckHeaders refuses is not followed.
		{"signed length", "POST / HTTP/1.1\r\nContent-Length: +3\r\n\r\nGET / HTTP/1.1\n", -1, false, false},
		{"empty length", "POST / HTTP/1.1\r\nContent-Length:\r\n\r\nGET / HTTP/1.1\n", -1, false, false},
		{"19 digits", "POST / HTTP/1.1\r\nContent-Length: 1000000000000000000\r\n\r\n", -1, false, false},
		{"length list", "POST / HTTP/1.1\r\nContent-Length: 3 3\r\n\r\n", -1, false, false},
		{"differing lengths", "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", -1, false, false},
		{"length and chunked", "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", -1, false, false},
		{"gzip, chunked", "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", -1, false, false},
		{"chunked twice", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", -1, false, false},
		{"bad chunk size", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", -1, false, false},
		{"chunk size too long", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n00000000000000001\r\n", -1, false, false},
		{"LF after chunk size", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n", -1, false, false},
		{"CR after chunk size", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\rabc\r\n", -1, false, false},
		{"no CRLF after chunk", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n", -1, false, false},
		{"CR alone after chunk", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\rX", -1, false, false},
	}
	for _, raw := range []string{
		"GET / HTTP/1.1|\nHost: x\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x|\nX-A: b\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\n|\n",
		"GET / HTTP/1.1\r\nHost: x|\n\n",
		"|\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"\r\n|\nGET / HTTP/1.1\r\n",
		"GET /a|\nb HTTP/1.1\r\n",
		"GET / HTTP/1.1\r|Host: x\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r|\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\n\r|\r\n",
		"\r|GET / HTTP/1.1\r\n",
		"GET / HTTP/1.1\r\nContent-Length: 1|\n\r\n",
		"GET / HTTP/1.1\r\nContent-Length: 1\r|X\r\n",
		get + "GET / HTTP/1.1\r\nHost: x|\n\n",
		"POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\n\r\n|\nGET / HTTP/1.1\r\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: 1|\n\r\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n|\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r|X",
	} {
		r, at := bad(raw)
		cases = append(cases, struct {
			name           string
			raw            string
			at             int
			idle, checking bool
		}{"bad: " + raw, r, at, false, true})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, n, err := scanAll(t, c.raw)
			if c.at >= 0 {
				if !errors.Is(err, ErrBareLineEnding) || n != c.at {
					t.Fatalf("Scan = %d, %v; want %d, %v", n, err, c.at, ErrBareLineEnding)
				}
				if k, err := s.Scan([]byte(get)); k != 0 || err == nil {
					t.Errorf("after the error: %d, %v", k, err)
				}
				return
			}
			if err != nil || n != len(c.raw) {
				t.Fatalf("Scan = %d, %v; want %d, nil", n, err, len(c.raw))
			}
			if s.Idle() != c.idle || s.Checking() != c.checking {
				t.Errorf("Idle %v, Checking %v; want %v, %v", s.Idle(), s.Checking(), c.idle, c.checking)
			}
		})
	}
}

func TestStreamDoesNotAllocate(t *testing.T) {
	raw := []byte("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nAccept: */*\r\n\r\nabc" +
		"POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
	var s Stream
	if n := testing.AllocsPerRun(100, func() { s.Scan(raw) }); n != 0 {
		t.Errorf("%v allocations", n)
	}
}

// FuzzStream: Scan agrees with itself however the bytes are cut; it stops
// exactly at a bad line ending; it accepts no head with one; and it stops
// following the requests only on a framing CheckHeaders refuses, and
// otherwise follows a Content-Length body to its end.
func FuzzStream(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET / HTTP/1.1\nHost: x\r\n\r\n",
		"\r\nPOST / HTTP/1.1\r\nContent-Length: 3\r\n\r\na\nbGET / HTTP/1.1\r\n\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;e\r\na\nb\r\n0\r\nT: 1\r\n\r\n",
		"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
		"POST / HTTP/1.1\r\nContent-length:  03 \r\ncontent-length: 3\r\n\r\nabc\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\r\n",
	} {
		f.Add([]byte(s), uint16(len(s)/2))
	}
	f.Fuzz(func(t *testing.T, raw []byte, cut uint16) {
		var whole Stream
		n, err := whole.Scan(raw)

		// Cut in two, and byte by byte.
		c := min(int(cut), len(raw))
		var two Stream
		m, err2 := two.Scan(raw[:c])
		if err2 == nil {
			k, e := two.Scan(raw[c:])
			m, err2 = m+k, e
		}
		var one Stream
		b := 0
		var err1 error
		for i := 0; i < len(raw) && err1 == nil; i++ {
			k, e := one.Scan(raw[i : i+1])
			b, err1 = b+k, e
		}
		if m != n || b != n || (err == nil) != (err2 == nil) || (err == nil) != (err1 == nil) ||
			whole.Idle() != two.Idle() || whole.Idle() != one.Idle() ||
			whole.Checking() != two.Checking() || whole.Checking() != one.Checking() {
			t.Fatalf("%q: whole %d %v, cut at %d: %d %v, byte by byte %d %v", raw, n, err, c, m, err2, b, err1)
		}

		if err != nil {
			if !errors.Is(err, ErrBareLineEnding) || n >= len(raw) {
				t.Fatalf("%q: %d, %v", raw, n, err)
			}
			if raw[n] != '\n' && (n == 0 || raw[n-1] != '\r') {
				t.Fatalf("%q: stopped at %d, no bad line ending there", raw, n)
			}
			raw = raw[:n]
		} else if n != len(raw) {
			t.Fatalf("%q: %d without an error", raw, n)
		}

		// The first head, past the empty lines before it, has CRLF line
		// endings only, or Scan stopped inside it.
		rest := raw
		for bytes.HasPrefix(rest, []byte("\r\n")) {
			rest = rest[2:]
		}
		end := bytes.Index(rest, []byte("\r\n\r\n"))
		if end < 0 {
			return
		}
		head := rest[:end+4]
		for i, ch := range head {
			if ch == '\n' && (i == 0 || head[i-1] != '\r') || ch == '\r' && head[i+1] != '\n' {
				t.Fatalf("%q: accepted a head with a bad line ending", raw)
			}
		}
		var s Stream
		s.Scan(raw[:len(raw)-len(rest)+len(head)])
		line := bytes.Index(head, []byte("\r\n"))
		fields := head[line+2:]
		_, herr := CheckHeaders(fields)
		if !s.Checking() {
			if herr == nil {
				t.Fatalf("%q: stopped following a head CheckHeaders accepts", head)
			}
			return
		}
		if herr != nil {
			return
		}
		// A Content-Length body is followed to its end.
		length, chunked := -1, false
		for _, l := range bytes.Split(fields, []byte("\r\n")) {
			name, value, ok := bytes.Cut(l, []byte(":"))
			if ok && equalFold(name, "content-length") {
				n, _ := parseLength(trimOWS(value))
				length = int(n)
			}
			if ok && equalFold(name, "transfer-encoding") {
				chunked = true
			}
		}
		bodyStart := len(raw) - len(rest) + len(head)
		if chunked || length < 0 || bodyStart+length > len(raw) {
			return
		}
		s.Scan(raw[bodyStart : bodyStart+length])
		if !s.Idle() {
			t.Fatalf("%q: not at a request's start after a %d-byte body", raw, length)
		}
	})
}

func BenchmarkStream(b *testing.B) {
	head := []byte("GET /api/v1/users/42?fields=name HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\n" +
		"Accept: application/json\r\nAccept-Encoding: gzip, deflate, br\r\nAccept-Language: en-US,en;q=0.9\r\n" +
		"Content-Length: 0\r\nCookie: session=4b1d0c1e3f0a4a7e9c550a3f1d2b6e7f; theme=dark\r\nX-Request-Id: 4b1d0c1e-3f0a-4a7e-9c55-0a3f1d2b6e7f\r\n\r\n")
	var s Stream
	b.SetBytes(int64(len(head)))
	b.ReportAllocs()
	for b.Loop() {
		s.Scan(head)
	}
}
