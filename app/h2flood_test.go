package app

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

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
			return "GOAWAY " + ga.ErrCode.String(), true
		}
	}
}

// TestHTTP2Floods: a connection that abuses the protocol is cut off.
func TestHTTP2Floods(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(50 * time.Millisecond)
		io.WriteString(w, "ok")
	}))
	defer be.Close()
	path := filepath.Join(t.TempDir(), "tollgate.yaml")
	writeConfig(t, path, gatewayConfig("off", be.URL, "/"))
	a := startApp(t, path)
	block := headersBlock(t, "/x")

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
}
