package app

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/testutil"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2Conn opens a raw HTTP/2 connection with prior knowledge.
func h2Conn(t *testing.T, addr string) (net.Conn, *http2.Framer) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, http2.ClientPreface)
	fr := http2.NewFramer(c, c)
	fr.WriteSettings()
	return c, fr
}

func headersBlock(t *testing.T, path string) []byte {
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "x"}, {":path", path}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	return buf.Bytes()
}

// closedOrGoAway reads frames until a GOAWAY or the connection's end.
func closedOrGoAway(c net.Conn, fr *http2.Framer, within time.Duration) (string, bool) {
	c.SetReadDeadline(time.Now().Add(within))
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				return "still open", false
			}
			return "closed: " + err.Error(), true
		}
		if ga, ok := f.(*http2.GoAwayFrame); ok {
			if len(ga.DebugData()) > 0 {
				return fmt.Sprintf("GOAWAY %v (%s)", ga.ErrCode, ga.DebugData()), true
			}
			return "GOAWAY " + ga.ErrCode.String(), true
		}
	}
}

// flood writes frames with write(i) for i < n, or until the connection
// fails, without reading anything; it returns when done or after 10s.
func flood(t *testing.T, n int, write func(i int) error) {
	t.Helper()
	select {
	case i := <-floodAsync(n, write):
		t.Logf("%d of %d frames written", i, n)
	case <-time.After(10 * time.Second):
		t.Log("the writes stalled")
	}
}

// floodAsync writes as flood does, in the background; the channel gets
// the number of frames written.
func floodAsync(n int, write func(i int) error) <-chan int {
	done := make(chan int, 1)
	go func() {
		i := 0
		for ; i < n; i++ {
			if write(i) != nil {
				break
			}
		}
		done <- i
	}()
	return done
}

// cutOff requires the connection to end within 5 seconds with
// GOAWAY(ENHANCE_YOUR_CALM) naming the abuse.
func cutOff(t *testing.T, c net.Conn, fr *http2.Framer, abuse string) {
	t.Helper()
	want := "GOAWAY ENHANCE_YOUR_CALM (" + abuse + ")"
	if how, _ := closedOrGoAway(c, fr, 5*time.Second); how != want {
		t.Errorf("%s, want %s", how, want)
	}
}

// TestHTTP2Floods: a connection that abuses the protocol is cut off.
func TestHTTP2Floods(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(50 * time.Millisecond)
		}
		io.WriteString(w, "ok")
	}))
	defer be.Close()
	path := filepath.Join(t.TempDir(), "tollgate.yaml")
	writeConfig(t, path, gatewayConfig("off", be.URL, "/"))
	a := startApp(t, path)
	block := headersBlock(t, "/slow")

	t.Run("continuation flood", func(t *testing.T) {
		c, fr := h2Conn(t, a.ProxyAddr())
		defer c.Close()
		go func() {
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block, EndStream: true, EndHeaders: false})
			junk := bytes.Repeat([]byte{0}, 16000)
			for i := 0; i < 10000; i++ {
				if fr.WriteContinuation(1, false, junk) != nil {
					return
				}
			}
		}()
		if how, ok := closedOrGoAway(c, fr, 5*time.Second); !ok {
			t.Errorf("an endless CONTINUATION: %s", how)
		} else {
			t.Log(how)
		}
	})

	// Valid fields, one per frame: nothing for the server to refuse but
	// the number of frames.
	t.Run("continuation flood of valid fields", func(t *testing.T) {
		c, fr := h2Conn(t, a.ProxyAddr())
		defer c.Close()
		var field bytes.Buffer
		hpack.NewEncoder(&field).WriteField(hpack.HeaderField{Name: "x-a", Value: "b"})
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block, EndStream: true, EndHeaders: true})
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: block, EndStream: true, EndHeaders: false})
		flood(t, 10000, func(int) error { return fr.WriteContinuation(3, false, field.Bytes()) })
		cutOff(t, c, fr, "CONTINUATION flood")
	})

	t.Run("empty continuation flood", func(t *testing.T) {
		c, fr := h2Conn(t, a.ProxyAddr())
		defer c.Close()
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block, EndStream: true, EndHeaders: false})
		flood(t, 100000, func(int) error { return fr.WriteContinuation(1, false, nil) })
		cutOff(t, c, fr, "CONTINUATION flood")
	})

	t.Run("unknown frames flood", func(t *testing.T) {
		c, fr := h2Conn(t, a.ProxyAddr())
		defer c.Close()
		flood(t, 100000, func(int) error { return fr.WriteRawFrame(0xfe, 0, 0, nil) })
		cutOff(t, c, fr, "unknown frames flood")
	})

	// The client never reads the ACKs.
	t.Run("ping flood", func(t *testing.T) {
		c, fr := h2Conn(t, a.ProxyAddr())
		defer c.Close()
		flood(t, 20000, func(i int) error { return fr.WritePing(false, [8]byte{byte(i >> 8), byte(i)}) })
		cutOff(t, c, fr, "PING flood")
	})

	t.Run("settings flood", func(t *testing.T) {
		c, fr := h2Conn(t, a.ProxyAddr())
		defer c.Close()
		flood(t, 20000, func(int) error { return fr.WriteSettings(http2.Setting{ID: http2.SettingEnablePush, Val: 0}) })
		cutOff(t, c, fr, "SETTINGS flood")
	})

	t.Run("empty data flood", func(t *testing.T) {
		c, fr := h2Conn(t, a.ProxyAddr())
		defer c.Close()
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: headersBlock(t, "/post"), EndHeaders: true})
		flood(t, 100000, func(int) error { return fr.WriteData(1, false, nil) })
		cutOff(t, c, fr, "empty frames flood")
	})

	// Rapid reset (CVE-2023-44487): streams opened and cancelled at once,
	// to slow and to fast routes; the client reads what comes.
	for _, route := range []string{"/slow", "/fast"} {
		t.Run("rapid reset "+route, func(t *testing.T) {
			c, fr := h2Conn(t, a.ProxyAddr())
			defer c.Close()
			block := headersBlock(t, route)
			written := floodAsync(20000, func(i int) error {
				id := uint32(2*i + 1)
				if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndStream: true, EndHeaders: true}); err != nil {
					return err
				}
				return fr.WriteRSTStream(id, http2.ErrCodeCancel)
			})
			cutOff(t, c, fr, "rapid reset")
			c.Close()
			t.Logf("%d of 20000 streams opened and reset", <-written)
		})
	}
}

// TestHTTP2FloodOverTLS: the TLS listener's HTTP/2 connections are guarded
// alike.
func TestHTTP2FloodOverTLS(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer be.Close()
	a, ca := startTLSApp(t, be.URL)
	c, err := tls.Dial("tcp", a.TLSAddr(), &tls.Config{RootCAs: ca.Pool(), ServerName: "api.example.com", NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, http2.ClientPreface)
	fr := http2.NewFramer(c, c)
	fr.WriteSettings()
	flood(t, 20000, func(i int) error { return fr.WritePing(false, [8]byte{byte(i >> 8), byte(i)}) })
	cutOff(t, c, fr, "PING flood")
	// The cut-off is counted, by reason.
	testutil.Eventually(t, 5*time.Second, "tollgate_http2_cutoffs_total for the PING flood", func() bool {
		return strings.Contains(get(t, "http://"+a.AdminAddr()+"/metrics"), `tollgate_http2_cutoffs_total{reason="PING flood"} 1`)
	})
}

// TestHTTP2BusyClientIsNotCutOff: a client that sends many requests on one
// connection, cancels some, and pings while data flows, stays connected.
func TestHTTP2BusyClientIsNotCutOff(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	defer be.Close()
	path := filepath.Join(t.TempDir(), "tollgate.yaml")
	writeConfig(t, path, gatewayConfig("off", be.URL, "/"))
	a := startApp(t, path)
	c, fr := h2Conn(t, a.ProxyAddr())
	defer c.Close()
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	block := headersBlock(t, "/x")
	const requests = 1000
	answered := 0
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	for i := 0; i < requests; i++ {
		id := uint32(2*i + 1)
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndStream: true, EndHeaders: true})
		if i%10 == 0 {
			// One request in ten is cancelled before its answer.
			fr.WriteRSTStream(id, http2.ErrCodeCancel)
			fr.WritePing(false, [8]byte{1})
			continue
		}
		for ended := false; !ended; {
			f, err := fr.ReadFrame()
			if err != nil {
				t.Fatalf("request %d: %v (%d answered)", i, err, answered)
			}
			switch f := f.(type) {
			case *http2.GoAwayFrame:
				t.Fatalf("request %d: GOAWAY %v (%d answered)", i, f.ErrCode, answered)
			case *http2.MetaHeadersFrame:
				ended = f.StreamID == id && f.StreamEnded()
			case *http2.DataFrame:
				ended = f.StreamID == id && f.StreamEnded()
			}
		}
		answered++
	}
	if answered != requests-requests/10 {
		t.Errorf("%d answered, want %d", answered, requests-requests/10)
	}
}
