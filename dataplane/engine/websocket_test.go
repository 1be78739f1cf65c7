package engine

import (
	"github.com/tollgate/tollgate/internal/testutil"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/config"
	"golang.org/x/net/websocket"
)

func wsBackend(t *testing.T) *httptest.Server {
	mux := http.NewServeMux()
	mux.Handle("/ws", websocket.Handler(func(c *websocket.Conn) {
		// Echo each message with what the upstream saw of the handshake.
		for {
			var msg string
			if err := websocket.Message.Receive(c, &msg); err != nil {
				return
			}
			req := c.Request()
			websocket.Message.Send(c, msg+" path="+req.URL.Path+" xff="+req.Header.Get("X-Forwarded-For"))
		}
	}))
	mux.HandleFunc("/plain", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "plain") })
	be := httptest.NewServer(mux)
	t.Cleanup(be.Close)
	return be
}

func TestWebSocketPassesThrough(t *testing.T) {
	be := wsBackend(t)
	gw := startGateway(t, oneRoute(config.Route{Paths: []string{"/"}}, be.URL))
	ws, err := websocket.Dial("ws://"+gw.addr+"/ws", "", "http://origin.test/")
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	for _, msg := range []string{"hello", "again", strings.Repeat("x", 100000)} {
		if err := websocket.Message.Send(ws, msg); err != nil {
			t.Fatal(err)
		}
		var got string
		if err := websocket.Message.Receive(ws, &got); err != nil {
			t.Fatal(err)
		}
		if want := msg + " path=/ws xff=127.0.0.1"; got != want {
			t.Fatalf("echo: got %.60q..., want %.60q...", got, want)
		}
	}
	// The same route still serves plain requests.
	resp, err := http.Get(gw.url + "/plain")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "plain" {
		t.Errorf("plain request: %q", b)
	}
}

func TestWebSocketRefusedWhereNotAllowed(t *testing.T) {
	be := wsBackend(t)
	off := false
	gw := startGateway(t, oneRoute(config.Route{Paths: []string{"/"}, WebSocket: &off}, be.URL))
	if _, err := websocket.Dial("ws://"+gw.addr+"/ws", "", "http://origin.test/"); err == nil {
		t.Fatal("WebSocket handshake succeeded on a route with websocket: false")
	}
	req, _ := http.NewRequest("GET", gw.url+"/ws", nil)
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Connection", "Upgrade")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if ge := decodeError(t, resp); resp.StatusCode != 403 || ge.Error.Code != "upgrade_refused" {
		t.Errorf("%d %+v", resp.StatusCode, ge)
	}
}

func TestWebSocketRefusedByUpstream(t *testing.T) {
	be := wsBackend(t)
	gw := startGateway(t, oneRoute(config.Route{Paths: []string{"/"}}, be.URL))
	// /plain does not speak WebSocket: its ordinary answer is passed on.
	req, _ := http.NewRequest("GET", gw.url+"/plain", nil)
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Connection", "Upgrade")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "plain" {
		t.Errorf("%d %q", resp.StatusCode, b)
	}
}

// A handshake to a target that refuses the connection is a 502, and leaves
// the target's in-flight count as it found it (least_requests relies on it).
func TestWebSocketToRefusedTarget(t *testing.T) {
	gw := startGateway(t, oneRoute(config.Route{Paths: []string{"/"}}, "http://"+testutil.ClosedPort(t)))
	req, _ := http.NewRequest("GET", gw.url+"/ws", nil)
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Connection", "Upgrade")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if ge := decodeError(t, resp); resp.StatusCode != 502 || ge.Error.Code != "upstream_unavailable" {
		t.Errorf("%d %+v", resp.StatusCode, ge)
	}
	target := gw.current.Load().services["svc"].pool.Targets()[0]
	if n := target.InFlight(); n != 0 {
		t.Errorf("in-flight count %d after the failed handshake, want 0", n)
	}
}
