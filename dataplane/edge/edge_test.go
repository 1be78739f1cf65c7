package edge

import (
	"bytes"
	"errors"
	"testing"
)

func TestCheckHeaders(t *testing.T) {
	cases := []struct {
		name, raw  string
		err        error
		underscore bool
	}{
		{"plain", "Host: x\r\nAccept: */*\r\n\r\n", nil, false},
		{"value with tab and spaces", "Host: x\r\nX-A: \ta b\t \r\n\r\n", nil, false},
		{"same content-length twice", "Host: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", nil, false},
		{"chunked any case", "Host: x\r\nTransfer-Encoding: Chunked\r\n\r\n", nil, false},
		{"underscore name", "Host: x\r\nX_Forwarded_For: 1.2.3.4\r\n\r\n", nil, true},
		{"bare LF", "Host: x\nX-A: b\r\n\r\n", ErrBareLineEnding, false},
		{"bare CR", "Host: x\rX-A: b\r\n\r\n", ErrBareLineEnding, false},
		{"unterminated", "Host: x", ErrBareLineEnding, false},
		{"obs-fold", "Host: x\r\nX-A: a\r\n b\r\n\r\n", ErrObsFold, false},
		{"space in name", "Host: x\r\nX A: b\r\n\r\n", ErrHeaderName, false},
		{"space before colon", "Host: x\r\nX-A : b\r\n\r\n", ErrHeaderName, false},
		{"no colon", "Host: x\r\nX-A\r\n\r\n", ErrHeaderName, false},
		{"empty name", "Host: x\r\n: b\r\n\r\n", ErrHeaderName, false},
		{"NUL in value", "Host: x\r\nX-A: a\x00b\r\n\r\n", ErrHeaderValue, false},
		{"DEL in value", "Host: x\r\nX-A: a\x7fb\r\n\r\n", ErrHeaderValue, false},
		{"differing content-length", "Host: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", ErrContentLength, false},
		{"signed content-length", "Host: x\r\nContent-Length: +3\r\n\r\n", ErrContentLength, false},
		{"list content-length", "Host: x\r\nContent-Length: 3, 3\r\n\r\n", ErrContentLength, false},
		{"empty content-length", "Host: x\r\nContent-Length: \r\n\r\n", ErrContentLength, false},
		{"length and chunked", "Host: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", ErrLengthAndChunked, false},
		{"chunked then length", "Host: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", ErrLengthAndChunked, false},
		{"gzip, chunked", "Host: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", ErrTransferEncoding, false},
		{"chunked twice", "Host: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", ErrTransferEncoding, false},
		{"xchunked", "Host: x\r\nTransfer-Encoding: xchunked\r\n\r\n", ErrTransferEncoding, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, err := CheckHeaders([]byte(c.raw))
			if !errors.Is(err, c.err) {
				t.Fatalf("error %v, want %v", err, c.err)
			}
			if err == nil && h.UnderscoreNames != c.underscore {
				t.Errorf("UnderscoreNames = %v", h.UnderscoreNames)
			}
		})
	}
}

func TestCheckHeadersDoesNotAllocate(t *testing.T) {
	raw := []byte("Host: x\r\nContent-Length: 12\r\nX-Request-Id: abc\r\nAccept: */*\r\n\r\n")
	if n := testing.AllocsPerRun(100, func() { CheckHeaders(raw) }); n != 0 {
		t.Errorf("%v allocations", n)
	}
}

// FuzzCheckHeaders: never panics, and whatever it accepts has only CRLF line
// endings and no folded line.
func FuzzCheckHeaders(f *testing.F) {
	for _, s := range []string{"Host: x\r\n\r\n", "A: b\r\n c\r\n\r\n", "Content-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", "X\rY\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if _, err := CheckHeaders(raw); err != nil {
			return
		}
		// Only the head is checked: what follows its empty line is body.
		if bytes.HasPrefix(raw, []byte("\r\n")) {
			raw = raw[:2]
		} else if i := bytes.Index(raw, []byte("\r\n\r\n")); i >= 0 {
			raw = raw[:i+4]
		}
		for i, c := range raw {
			if c == '\n' && (i == 0 || raw[i-1] != '\r') {
				t.Fatalf("accepted a bare LF in %q", raw)
			}
			if c == '\r' && (i+1 >= len(raw) || raw[i+1] != '\n') {
				t.Fatalf("accepted a bare CR in %q", raw)
			}
			if c == '\n' && i+1 < len(raw) && (raw[i+1] == ' ' || raw[i+1] == '\t') {
				t.Fatalf("accepted a folded line in %q", raw)
			}
		}
	})
}

func BenchmarkCheckHeaders(b *testing.B) {
	raw := []byte("Host: api.example.com\r\nUser-Agent: wrk\r\nAccept: */*\r\nContent-Length: 12\r\nX-Request-Id: 4b1d0c1e-3f0a-4a7e-9c55-0a3f1d2b6e7f\r\n\r\n")
	b.ReportAllocs()
	for b.Loop() {
		CheckHeaders(raw)
	}
}
