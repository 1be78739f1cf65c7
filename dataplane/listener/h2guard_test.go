package listener

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/config"
	"github.com/valyala/fasthttp"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// startH2 serves handler on a clear listener that takes HTTP/1.1 and h2c.
func startH2(t *testing.T, handler fasthttp.RequestHandler) (*Server, string) {
	t.Helper()
	s := New(&config.Server{}, handler)
	s.EnableHTTP2()
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		<-served
	})
	return s, s.Addr().String()
}

// echoToken answers 200 with the request's X-Token.
func echoToken(ctx *fasthttp.RequestCtx) {
	ctx.WriteString("token=" + string(ctx.Request.Header.Peek("X-Token")))
}

// h2Client is a raw HTTP/2 client connection whose header blocks use
// HPACK's dynamic table, so a block the server skipped or decoded wrongly
// breaks the requests after it.
type h2Client struct {
	t    *testing.T
	c    net.Conn
	fr   *http2.Framer
	enc  *hpack.Encoder
	buf  bytes.Buffer
	next uint32
}

func dialH2(t *testing.T, addr string) *h2Client {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, http2.ClientPreface)
	h := &h2Client{t: t, c: c, fr: http2.NewFramer(c, c), next: 1}
	h.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	h.enc = hpack.NewEncoder(&h.buf)
	h.fr.WriteSettings()
	return h
}

// block encodes a GET request with extra fields ("name: value").
func (h *h2Client) block(extra ...string) []byte {
	h.buf.Reset()
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "x"}, {":path", "/"}} {
		h.enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	for _, f := range extra {
		name, value, _ := strings.Cut(f, ": ")
		h.enc.WriteField(hpack.HeaderField{Name: name, Value: value})
	}
	return bytes.Clone(h.buf.Bytes())
}

// get sends a request and returns its answer: "200 body", or "RST code".
func (h *h2Client) get(extra ...string) string {
	h.t.Helper()
	id := h.next
	h.next += 2
	h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: h.block(extra...), EndStream: true, EndHeaders: true})
	return h.answer(id)
}

func (h *h2Client) answer(id uint32) string {
	h.t.Helper()
	var status, body string
	for {
		f, err := h.fr.ReadFrame()
		if err != nil {
			h.t.Fatalf("stream %d: %v", id, err)
		}
		switch f := f.(type) {
		case *http2.GoAwayFrame:
			h.t.Fatalf("stream %d: GOAWAY %v %q", id, f.ErrCode, f.DebugData())
		case *http2.RSTStreamFrame:
			if f.StreamID == id {
				return "RST " + f.ErrCode.String()
			}
		case *http2.MetaHeadersFrame:
			if f.StreamID == id {
				status = f.PseudoValue("status")
				if f.StreamEnded() {
					return status + " " + body
				}
			}
		case *http2.DataFrame:
			if f.StreamID == id {
				body += string(f.Data())
				if f.StreamEnded() {
					return status + " " + body
				}
			}
		}
	}
}

// A request with a connection-specific field is reset with PROTOCOL_ERROR
// (RFC 9113 section 8.2.2) instead of being answered, and the connection
// goes on: the server's HPACK table still matches the client's.
func TestHTTP2ConnectionSpecificFieldsResetTheStream(t *testing.T) {
	_, addr := startH2(t, echoToken)
	h := dialH2(t, addr)
	steps := []struct {
		fields []string
		want   string
	}{
		{[]string{"x-token: a"}, "200 token=a"},
		{[]string{"connection: keep-alive", "x-token: b"}, "RST PROTOCOL_ERROR"},
		{[]string{"x-token: b"}, "200 token=b"}, // "x-token: b" is indexed now
		{[]string{"te: trailers", "x-token: b"}, "200 token=b"},
		{[]string{"te: trailers, deflate"}, "RST PROTOCOL_ERROR"},
		{[]string{"te: trailers", "te: trailers"}, "RST PROTOCOL_ERROR"},
		{[]string{"keep-alive: 5"}, "RST PROTOCOL_ERROR"},
		{[]string{"proxy-connection: close"}, "RST PROTOCOL_ERROR"},
		{[]string{"transfer-encoding: chunked"}, "RST PROTOCOL_ERROR"},
		{[]string{"upgrade: h2c", "x-token: c"}, "RST PROTOCOL_ERROR"},
		{[]string{"x-token: c"}, "200 token=c"},
	}
	for _, s := range steps {
		if got := h.get(s.fields...); got != s.want {
			t.Errorf("%q: %s, want %s", s.fields, got, s.want)
		}
	}

	// A block over HEADERS (padded, with a priority) and CONTINUATION
	// frames, the bad field in the last one.
	block := h.block("x-token: d", "connection: close")
	id := h.next
	h.next += 2
	h.fr.WriteHeaders(http2.HeadersFrameParam{
		StreamID: id, BlockFragment: block[:3], EndStream: true, PadLength: 7,
		Priority: http2.PriorityParam{StreamDep: 0, Weight: 10},
	})
	h.fr.WriteContinuation(id, false, block[3:len(block)-2])
	h.fr.WriteContinuation(id, true, block[len(block)-2:])
	if got := h.answer(id); got != "RST PROTOCOL_ERROR" {
		t.Errorf("bad field in a CONTINUATION: %s", got)
	}
	if got := h.get("x-token: d"); got != "200 token=d" {
		t.Errorf("after it: %s", got)
	}
}

// A SETTINGS frame that repeats a parameter is processed in order (RFC
// 9113 section 6.5.3): the last value holds; an invalid value is still
// refused.
func TestHTTP2RepeatedSettings(t *testing.T) {
	_, addr := startH2(t, echoToken)
	h := dialH2(t, addr)
	h.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 100}, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1})
	id := h.next
	h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: h.block("x-token: e"), EndStream: true, EndHeaders: true})
	for {
		f, err := h.fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if ga, ok := f.(*http2.GoAwayFrame); ok {
			t.Fatalf("GOAWAY %v", ga.ErrCode)
		}
		if d, ok := f.(*http2.DataFrame); ok && d.StreamID == id {
			if string(d.Data()) != "t" {
				t.Errorf("first DATA %q, want one byte (window 1)", d.Data())
			}
			break
		}
	}

	for _, vals := range [][2]uint32{{0, 2}, {2, 0}} {
		h := dialH2(t, addr)
		h.fr.WriteSettings(http2.Setting{ID: http2.SettingEnablePush, Val: vals[0]}, http2.Setting{ID: http2.SettingEnablePush, Val: vals[1]})
		for {
			f, err := h.fr.ReadFrame()
			if err != nil {
				t.Fatalf("ENABLE_PUSH %v: %v, want GOAWAY", vals, err)
			}
			if ga, ok := f.(*http2.GoAwayFrame); ok {
				if ga.ErrCode != http2.ErrCodeProtocol {
					t.Errorf("ENABLE_PUSH %v: GOAWAY %v, want PROTOCOL_ERROR", vals, ga.ErrCode)
				}
				break
			}
		}
	}
}

// exchange writes raw to a new connection and returns all it reads back.
func exchange(t *testing.T, addr string, raw ...string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	for _, r := range raw {
		io.WriteString(c, r)
	}
	var out bytes.Buffer
	rd := bufio.NewReader(c)
	if resp, err := http.ReadResponse(rd, nil); err == nil {
		body, _ := io.ReadAll(resp.Body)
		fmt.Fprintf(&out, "%d %s", resp.StatusCode, body)
		return out.String()
	}
	io.Copy(&out, rd)
	return out.String()
}

// On the clear port, bytes that are neither the HTTP/2 preface nor an
// HTTP/1 request line end the connection without an answer.
func TestMuxClosesWhatIsNeitherProtocol(t *testing.T) {
	_, addr := startH2(t, echoToken)
	for _, raw := range []string{
		"INVALID CONNECTION PREFACE\r\n\r\n",
		"PRI * HTTP/1.1\r\n\r\n",
		"GET /\r\n\r\n",
		"HELLO\r\n",
	} {
		if got := exchange(t, addr, raw); got != "" {
			t.Errorf("%q: answered %q", raw, got)
		}
	}
	for _, c := range []struct {
		raw  []string
		want string
	}{
		{[]string{"GET / HTTP/1.1\r\nHost: a\r\nX-Token: f\r\n\r\n"}, "200 token=f"},
		// Empty lines before a request are allowed.
		{[]string{"\r\nGET / HTTP/1.1\r\nHost: a\r\nX-Token: g\r\n\r\n"}, "200 token=g"},
		{[]string{"GE", "T / HT", "TP/1.1\r\nHost: a\r\nX-Token: h\r\n\r\n"}, "200 token=h"},
		// A first line longer than what is read to tell the protocol.
		{[]string{"GET /" + strings.Repeat("a", 5000) + " HTTP/1.1\r\nHost: a\r\nX-Token: i\r\n\r\n"}, "200 token=i"},
	} {
		if got := exchange(t, addr, c.raw...); got != c.want {
			t.Errorf("%q: %q, want %q", c.raw, got, c.want)
		}
	}
}

// Shutdown sends GOAWAY to HTTP/2 connections, lets the streams in flight
// finish, and returns once they have.
func TestHTTP2ShutdownDrains(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	s, addr := startH2(t, func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) == "/slow" {
			close(entered)
			<-release
		}
		ctx.WriteString("done")
	})
	h := dialH2(t, addr)
	h.buf.Reset()
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "x"}, {":path", "/slow"}} {
		h.enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: h.buf.Bytes(), EndStream: true, EndHeaders: true})
	<-entered
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shut <- s.Shutdown(ctx)
	}()
	for {
		f, err := h.fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if ga, ok := f.(*http2.GoAwayFrame); ok {
			if ga.ErrCode != http2.ErrCodeNo {
				t.Errorf("GOAWAY %v, want NO_ERROR", ga.ErrCode)
			}
			break
		}
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) with a stream in flight", err)
	default:
	}
	close(release)
	if got := h.answer(1); got != "200 done" {
		t.Errorf("stream in flight: %s", got)
	}
	if err := <-shut; err != nil {
		t.Errorf("shutdown: %v", err)
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Error("still accepting after shutdown")
	}
}
