// Package redistest gives rate limit tests the real Redis they run
// against, and a TCP proxy in front of it that a test can cut and restore
// to play an outage.
package redistest

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Server is the test Redis.
type Server struct {
	// Addr is its host:port.
	Addr string
	// URL is a redis:// URL of it, with the database of
	// TOLLGATE_TEST_REDIS when that names one.
	URL  string
	db   string // the URL's path, "/0" style, or ""
	user *url.Userinfo
}

// Start returns the Redis at $TOLLGATE_TEST_REDIS (host:port or a redis://
// URL) or 127.0.0.1:6379. When nothing answers there, the test is skipped,
// or fails when CI=true.
func Start(t testing.TB) *Server {
	t.Helper()
	env := os.Getenv("TOLLGATE_TEST_REDIS")
	if env == "" {
		env = "127.0.0.1:6379"
	}
	s := &Server{Addr: env}
	if strings.Contains(env, "://") {
		u, err := url.Parse(env)
		if err != nil {
			t.Fatalf("TOLLGATE_TEST_REDIS=%q: %v", env, err)
		}
		s.Addr, s.db, s.user = u.Host, u.Path, u.User
		if u.Scheme != "redis" {
			fail(t, "TOLLGATE_TEST_REDIS=%q: these tests need a redis:// server (no TLS)", env)
		}
	}
	s.URL = s.url(s.Addr)
	if err := ping(s.Addr, s.user); err != nil {
		fail(t, "no Redis at %s (set TOLLGATE_TEST_REDIS to run this test): %v", s.Addr, err)
	}
	return s
}

// fail skips the test, or fails it when CI=true: CI must run everything.
func fail(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// url is a redis:// URL of the server at addr (itself or a proxy).
func (s *Server) url(addr string) string {
	u := url.URL{Scheme: "redis", User: s.user, Host: addr, Path: s.db}
	return u.String()
}

func ping(addr string, user *url.Userinfo) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second)) //nolint:errcheck // a failure shows in the read
	r := bufio.NewReader(c)
	if pw, ok := user.Password(); ok {
		auth := []string{"AUTH", user.Username(), pw}
		if auth[1] == "" {
			auth = []string{"AUTH", pw} // requirepass, no ACL user
		}
		if _, err := c.Write(command(auth...)); err != nil {
			return err
		}
		if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "+OK") {
			return &unexpected{"AUTH: " + line}
		}
	}
	if _, err := c.Write(command("PING")); err != nil {
		return err
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return &unexpected{line}
	}
	return nil
}

// command encodes a Redis command in RESP.
func command(args ...string) []byte {
	b := []byte("*" + strconv.Itoa(len(args)) + "\r\n")
	for _, a := range args {
		b = append(b, "$"+strconv.Itoa(len(a))+"\r\n"+a+"\r\n"...)
	}
	return b
}

type unexpected struct{ line string }

func (u *unexpected) Error() string { return "unexpected answer to PING: " + strings.TrimSpace(u.line) }

// Prefix returns a key prefix no other test run uses.
func Prefix() string {
	var b [6]byte
	rand.Read(b[:]) //nolint:errcheck // crypto/rand.Read does not fail
	return "tollgate-test:" + hex.EncodeToString(b[:]) + ":"
}

// Proxy forwards TCP connections to the Redis server until cut.
type Proxy struct {
	// URL is a redis:// URL that reaches Redis through the proxy.
	URL string

	target string
	ln     net.Listener

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// Proxy starts a proxy to s, closed when the test ends.
func (s *Server) Proxy(t testing.TB) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{URL: s.url(ln.Addr().String()), target: s.Addr, ln: ln, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.Cut()
		p.wg.Wait()
	})
	return p
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.mu.Unlock()
		up, err := net.DialTimeout("tcp", p.target, time.Second)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[up] = struct{}{}, struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

func (p *Proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	io.Copy(dst, src) //nolint:errcheck // ends when either side closes
	dst.Close()
	src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

// Cut closes every forwarded connection and refuses new ones (they are
// accepted and closed at once), as a Redis that went away.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		c.Close()
	}
}

// Restore forwards connections again.
func (p *Proxy) Restore() {
	p.mu.Lock()
	p.cut = false
	p.mu.Unlock()
}
