package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/tollgate/tollgate/dataplane/upstream"
	"github.com/valyala/fasthttp"
)

// IsWebSocketUpgrade reports whether a request asks to switch to WebSocket:
// "Upgrade: websocket" and "upgrade" among the Connection tokens.
func IsWebSocketUpgrade(h *fasthttp.RequestHeader) bool {
	if !hasToken(h.Peek("Upgrade"), "websocket") {
		return false
	}
	return hasToken(h.Peek("Connection"), "upgrade")
}

func hasToken(list []byte, token string) bool {
	for len(list) > 0 {
		var t []byte
		t, list = nextToken(list)
		if bytes.EqualFold(t, []byte(token)) {
			return true
		}
	}
	return false
}

// ForwardUpgrade passes a WebSocket handshake to a target over a connection
// of its own. When the target switches protocols, the gateway answers 101
// and then copies bytes both ways until either side closes; fin is told when
// the tunnel ends. Any other answer is passed on as a normal response.
func ForwardUpgrade(ctx *fasthttp.RequestCtx, r *Request, res *Result, fin Finisher) {
	up := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(up)
	prepareRequest(ctx, r, up)
	up.Header.Set("Connection", "Upgrade")
	up.Header.Set("Upgrade", "websocket")

	var conn net.Conn
	for attempt := 1; ; attempt++ {
		t := res.pick(ctx, r, fin)
		if t == nil {
			return
		}
		if !r.PreserveHost {
			up.Header.SetHost(t.Host)
		}
		r.Pool.Start(t) // every Done below must follow a Start
		c, err := r.Dial(t)
		if err == nil {
			conn = c
			break
		}
		r.Pool.Done(t, upstream.Outcome{Err: upstream.ConnectFailed})
		res.Err = err
		if attempt >= r.Pool.Attempts() {
			var msg string
			res.Status, res.Code, msg = failureStatus(&errDial{err: err})
			answerError(ctx, r, res, fin, msg)
			return
		}
	}
	t := res.Target
	start := time.Now()
	conn.SetDeadline(start.Add(r.ResponseTimeout))
	br := bufio.NewReader(conn)
	var resp *http.Response
	_, err := conn.Write(up.Header.Header())
	if err == nil {
		resp, err = http.ReadResponse(br, nil)
	}
	res.Upstream = time.Since(start)
	if err != nil {
		conn.Close()
		failure := upstream.Reset
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			failure = upstream.Timeout
		}
		r.Pool.Done(t, upstream.Outcome{Err: failure, Duration: res.Upstream})
		res.Err = err
		var msg string
		res.Status, res.Code, msg = failureStatus(err)
		if failure == upstream.Timeout {
			res.Status, res.Code, msg = fasthttp.StatusGatewayTimeout, CodeUpstreamTimeout, "the upstream service did not answer in time"
		}
		answerError(ctx, r, res, fin, msg)
		return
	}
	r.Pool.Done(t, upstream.Outcome{Status: resp.StatusCode, Duration: res.Upstream})
	res.Status = resp.StatusCode
	if resp.StatusCode != http.StatusSwitchingProtocols {
		// Refused upgrade: an ordinary answer, passed on whole (such
		// answers are short) on a connection that is then closed.
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		conn.Close()
		ctx.Response.SetStatusCode(resp.StatusCode)
		for k, vs := range resp.Header {
			if !isHopByHop([]byte(k)) {
				for _, v := range vs {
					ctx.Response.Header.Add(k, v)
				}
			}
		}
		ctx.Response.SetBody(body)
		fin.Finish(int64(len(body)), nil)
		return
	}
	conn.SetDeadline(time.Time{})
	var head bytes.Buffer
	head.WriteString("HTTP/1.1 101 Switching Protocols\r\n")
	resp.Header.Del("X-Request-Id")
	resp.Header.Write(&head)
	head.WriteString("X-Request-Id: ")
	head.Write(r.RequestID)
	head.WriteString("\r\n\r\n")
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(client net.Conn) {
		var sent int64
		if _, err := client.Write(head.Bytes()); err == nil {
			sent = tunnel(client, conn, br)
		}
		conn.Close()
		fin.Finish(sent, nil)
	})
}

// tunnel copies bytes both ways until one side is done, and returns how many
// went to the client. upstreamReader holds what was read past the 101 head.
func tunnel(client, upstreamConn net.Conn, upstreamReader *bufio.Reader) int64 {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		io.Copy(upstreamConn, client)
		closeWrite(upstreamConn)
	}()
	sent, _ := io.Copy(client, upstreamReader)
	closeWrite(client)
	// The client side may still be sending; closing the upstream ends it.
	upstreamConn.Close()
	client.Close()
	wg.Wait()
	return sent
}

func closeWrite(c net.Conn) {
	switch cw := c.(type) {
	case interface{ CloseWrite() error }:
		cw.CloseWrite()
	}
}

// dialer returns the function that opens a connection of its own to a
// target, for tunnels: TCP, and TLS offering only HTTP/1.1 for an https
// target, verified as the service says.
func (t *Transport) dialer(connect time.Duration, vt *verification) func(*upstream.Target) (net.Conn, error) {
	return func(tg *upstream.Target) (net.Conn, error) {
		d := &net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}
		ctx := context.Background()
		if connect > 0 { // the TLS handshake counts as connecting too
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, connect)
			defer cancel()
		}
		conn, err := t.dialTCP(ctx, tg.Addr, d)
		if err != nil || tg.Scheme != "https" {
			return conn, err
		}
		cfg := t.tlsConfig(tg.Addr, vt)
		cfg.NextProtos = []string{"http/1.1"}
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, err
		}
		return tc, nil
	}
}
