package engine

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/config"
	_ "github.com/tollgate/tollgate/dataplane/policy/sizelimit" // request-size-limit
)

// answerWithin is how long a refused head may take to be answered: far
// below the read timeout the engine would otherwise wait for.
const answerWithin = 2 * time.Second

// rawExchange writes the parts of raw to a new connection (pausing between
// them so they arrive apart) and reads every answer until the gateway
// closes the connection. It fails when that takes longer than answerWithin.
func rawExchange(t *testing.T, addr string, parts ...string) (statuses []int, bodies []string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i, p := range parts {
		if i > 0 {
			time.Sleep(20 * time.Millisecond)
		}
		io.WriteString(c, p)
	}
	c.SetReadDeadline(time.Now().Add(answerWithin))
	rd := bufio.NewReader(c)
	for {
		resp, err := http.ReadResponse(rd, nil)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("%q: no answer or no close within %s (got %v)", parts, answerWithin, statuses)
			}
			return statuses, bodies
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("%q: reading body: %v", parts, err)
		}
		statuses = append(statuses, resp.StatusCode)
		bodies = append(bodies, string(b))
	}
}

// TestBareLineEndingsAreRefusedAtOnce: a head with a line ending in LF
// without CR, or a CR without LF, anywhere (request line, a field line, the
// final empty line, before the request line) is answered 400 at once and
// the connection closed; it never reaches the upstream. Each shape is also
// sent in two parts, and after a good request on the same connection.
func TestBareLineEndingsAreRefusedAtOnce(t *testing.T) {
	var hits atomic.Int32
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.Copy(io.Discard, r.Body)
	}))
	defer be.Close()
	cfg := oneRoute(config.Route{Paths: []string{"/"}}, be.URL)
	cfg.Server.ReadHeaderTimeout = config.Duration(30 * time.Second)
	gw := startGateway(t, cfg)
	const good = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
	shapes := []string{
		"GET / HTTP/1.1\nHost: x\r\n\r\n",                                         // request line
		"GET / HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n",                               // field line
		"GET / HTTP/1.1\r\nHost: x\n\r\n",                                         // last field line
		"GET / HTTP/1.1\r\nHost: x\r\n\n",                                         // final empty line
		"GET / HTTP/1.1\r\nHost: x\n\n",                                           // both
		"GET / HTTP/1.1\nHost: x\n\n",                                             // every line
		"\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",                                     // empty line before the request
		"\r\n\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",                                 // after a good empty line
		"GET /a\nb HTTP/1.1\r\nHost: x\r\n\r\n",                                   // inside the request line
		"GET / HTTP/1.1\rHost: x\r\n\r\n",                                         // lone CR: request line
		"GET / HTTP/1.1\r\nHost: x\rX-A: b\r\n\r\n",                               // lone CR: field line
		"GET / HTTP/1.1\r\nHost: x\r\r\n\r\n",                                     // CR CR LF
		"GET / HTTP/1.1\r\nHost: x\r\n\r\r\n",                                     // lone CR: final line
		"GET / HTTP/1.1\r\nHost: x\r\n\rX-A: b\r\n\r\n",                           // lone CR, then a field
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\rab",                 // lone CR, then a body
		"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n",                          // lone CR inside a value
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\n\r\nabc",                // with a body
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\nabc",                // with a body, final line
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\n\r\n0\r\n\r\n", // chunked
	}
	for _, raw := range shapes {
		bad := badLineEnding(raw)
		for _, parts := range [][]string{
			{raw},
			{raw[:len(raw)/2], raw[len(raw)/2:]},
			{raw[:bad], raw[bad:]}, // the bad byte first in what is read
			{good + raw},
		} {
			statuses, bodies := rawExchange(t, gw.addr, parts...)
			want := []int{400}
			if strings.HasPrefix(parts[0], good) {
				want = []int{200, 400}
			}
			if fmt.Sprint(statuses) != fmt.Sprint(want) {
				t.Errorf("%q: answers %v, want %v", parts, statuses, want)
				continue
			}
			var ge gatewayError
			if err := json.Unmarshal([]byte(bodies[len(bodies)-1]), &ge); err != nil || ge.Error.Code != "bad_request" {
				t.Errorf("%q: 400 body %q", parts, bodies[len(bodies)-1])
			}
		}
	}
	if n := hits.Load(); n != int32(len(shapes)) {
		t.Errorf("backend reached %d times, want %d (the good requests)", n, len(shapes))
	}
}

// badLineEnding returns where a bad line ending in raw shows: the bare LF,
// or the byte after a lone CR.
func badLineEnding(raw string) int {
	for i := range len(raw) {
		if raw[i] == '\n' && (i == 0 || raw[i-1] != '\r') {
			return i
		}
		if raw[i] == '\r' && i+1 < len(raw) && raw[i+1] != '\n' {
			return i + 1
		}
	}
	return -1
}

// TestHeadChecksLeaveBodiesAlone: bare LFs and CRs inside bodies, whether
// framed by Content-Length or chunked (with extensions and trailers), are
// the client's data: pipelined requests carrying them are all served, with
// their bodies intact, however the bytes arrive.
func TestHeadChecksLeaveBodiesAlone(t *testing.T) {
	var mu sync.Mutex
	var got []string
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, string(b))
		mu.Unlock()
	}))
	defer be.Close()
	gw := startGateway(t, oneRoute(config.Route{Paths: []string{"/"}}, be.URL))
	raw := "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\na\nb\rc\n\n" +
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n\n\r\n\n\r\n2;ext=1\r\n\r\r\r\n0\r\nX-T: 1\r\n\r\n" +
		"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n\n\n" +
		"\r\n" + // an empty line between requests is allowed
		"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
	want := []string{"a\nb\rc\n\n", "\n\r\n\n\r\r", "\n\n", ""}
	for _, parts := range [][]string{
		{raw},
		{raw[:60], raw[60:61], raw[61:130], raw[130:131], raw[131:]},
	} {
		got = nil
		statuses, _ := rawExchange(t, gw.addr, parts...)
		if fmt.Sprint(statuses) != "[200 200 200 200]" {
			t.Errorf("answers %v", statuses)
		}
		mu.Lock()
		if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
			t.Errorf("upstream bodies %q, want %q", got, want)
		}
		mu.Unlock()
	}
}

// TestBareLineEndingInTrailerIsRefused: the trailer section of a chunked
// body is checked as a head is; the upload fails and the connection is
// closed at once.
func TestBareLineEndingInTrailerIsRefused(t *testing.T) {
	var complete atomic.Int32
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err == nil {
			complete.Add(1)
		}
	}))
	defer be.Close()
	gw := startGateway(t, oneRoute(config.Route{Paths: []string{"/"}}, be.URL))
	statuses, _ := rawExchange(t, gw.addr, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if len(statuses) != 1 || statuses[0] < 400 {
		t.Errorf("answers %v, want one error", statuses)
	}
	if n := complete.Load(); n != 0 {
		t.Errorf("the upstream read %d complete bodies", n)
	}
}

// TestExpectContinueOversize: a client announcing a body above
// server.limits.max_body_bytes and waiting for 100 Continue gets 413 with
// the gateway's JSON error instead, sends nothing, and the connection is
// closed. Within the limit it gets 100 Continue.
func TestExpectContinueOversize(t *testing.T) {
	var hits atomic.Int32
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprint(w, n)
	}))
	defer be.Close()
	cfg := oneRoute(config.Route{Paths: []string{"/"}}, be.URL)
	cfg.Server.Limits.MaxBodyBytes = 1000
	gw := startGateway(t, cfg)

	statuses, bodies := rawExchange(t, gw.addr, "POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n")
	if fmt.Sprint(statuses) != "[413]" {
		t.Fatalf("answers %v, want [413] alone (no 100)", statuses)
	}
	var ge gatewayError
	if err := json.Unmarshal([]byte(bodies[0]), &ge); err != nil || ge.Error.Status != 413 || ge.Error.Code != "body_too_large" {
		t.Errorf("413 body %q", bodies[0])
	}

	// Go's client waits for the answer to its Expect and sends nothing.
	var sent atomic.Int64
	tr := &http.Transport{ExpectContinueTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest("POST", gw.url+"/", readCounter{strings.NewReader(strings.Repeat("a", 5000)), &sent})
	req.ContentLength = 5000
	req.Header.Set("Expect", "100-continue")
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 413 || resp.Header.Get("Content-Type") != "application/json" || !bytes.Contains(body, []byte(`"body_too_large"`)) {
		t.Errorf("net/http client: %d %q", resp.StatusCode, body)
	}
	if n := sent.Load(); n != 0 {
		t.Errorf("the client sent %d body bytes", n)
	}

	// Within the limit: 100 Continue, then the body is served.
	req, _ = http.NewRequest("POST", gw.url+"/", strings.NewReader(strings.Repeat("a", 500)))
	req.Header.Set("Expect", "100-continue")
	resp, err = (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "500" {
		t.Errorf("within the limit: %d %q", resp.StatusCode, body)
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("backend reached %d times, want 1", n)
	}
}

type readCounter struct {
	r io.Reader
	n *atomic.Int64
}

func (c readCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// TestEarlyAnswerReachesUploadingClient: when the gateway refuses an upload
// before reading its body and closes the connection, a client still
// sending gets the answer, not a connection reset: the gateway half-closes
// and reads what keeps coming for a while before closing (lingering close).
// A 4 MiB upload against a 4 KiB limit, refused by the declared length
// (server.limits.max_body_bytes, and a route's request-size-limit) and
// while streaming (a chunked body over the route's limit).
func TestEarlyAnswerReachesUploadingClient(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
	}))
	defer be.Close()
	cfg := oneRoute(config.Route{Paths: []string{"/"}}, be.URL)
	cfg.Routes = append(cfg.Routes, config.Route{Name: "limited", Service: "svc", Paths: []string{"/limited"},
		Policies: config.Policies{"request-size-limit": map[string]any{"max_bytes": 4096}}})
	global := cfg.Server
	global.Limits.MaxBodyBytes = 4096
	gwGlobal := startGateway(t, &config.Config{Server: global, Services: cfg.Services, Routes: cfg.Routes[:1]})
	gwRoute := startGateway(t, cfg)
	upload := bytes.Repeat([]byte("u"), 4<<20)
	for _, c := range []struct {
		name, url string
		chunked   bool
	}{
		{"max_body_bytes", gwGlobal.url + "/", false},
		{"request-size-limit", gwRoute.url + "/limited", false},
		{"request-size-limit, chunked", gwRoute.url + "/limited", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			for try := range 20 {
				var body io.Reader = bytes.NewReader(upload)
				if c.chunked {
					body = io.MultiReader(body) // no length known: sent chunked
				}
				resp, err := http.Post(c.url, "application/octet-stream", body)
				if err != nil {
					t.Fatalf("try %d: %v", try, err)
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 413 || err != nil || !bytes.Contains(b, []byte(`"body_too_large"`)) {
					t.Fatalf("try %d: %d %q %v", try, resp.StatusCode, b, err)
				}
			}
		})
	}
}
