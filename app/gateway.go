package app

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/dataplane/engine"
	"github.com/tollgate/tollgate/dataplane/listener"
	"github.com/tollgate/tollgate/dataplane/proxy"
	"github.com/tollgate/tollgate/dataplane/upstream"
	"github.com/tollgate/tollgate/observe/accesslog"
	"github.com/tollgate/tollgate/observe/metrics"
	"github.com/valyala/fasthttp"
)

// gateway is the data plane at work: the engine and what it works with,
// and the proxy listeners. `tollgate run` and `tollgate dp` share it; they
// differ in where configurations come from.
type gateway struct {
	log       *slog.Logger
	metrics   *metrics.Metrics
	registry  *upstream.Registry
	transport *proxy.Transport
	engine    *engine.Engine
	certs     *listener.Certificates // nil without server.tls
	acme      *listener.ACME         // nil without server.tls.acme

	accessMu   sync.Mutex
	accessSet  bool
	accessDest string
	access     *accesslog.Logger

	proxy    *listener.Server
	tlsProxy *listener.Server
	h3Proxy  *listener.HTTP3Server
	serveErr chan error
}

func newGateway(log *slog.Logger) *gateway {
	g := &gateway{log: log, metrics: metrics.New(), serveErr: make(chan error, 4)}
	// Health probes of https targets verify as proxied requests do.
	g.transport = proxy.NewTransport()
	g.registry = upstream.NewRegistry(upstream.RegistryOptions{
		ClientTLS: g.transport.ClientTLS,
		Logger:    log,
		OnHealthChange: func(service, target string, healthy bool) {
			g.metrics.SetUpstreamHealth(service, target, healthy)
			if !healthy {
				log.Warn("upstream target unhealthy", "service", service, "target", target)
			}
		},
		OnTargetRemoved: g.metrics.RemoveUpstream,
	})
	g.engine = engine.New(engine.Options{
		Metrics:   g.metrics,
		Logger:    log,
		Registry:  g.registry,
		Transport: g.transport,
	})
	return g
}

// loadCertificates reads server.tls's certificates, when it is set.
func (g *gateway) loadCertificates(cfg *config.Config, baseDir string) error {
	if cfg.Server.TLS == nil {
		return nil
	}
	certs, err := listener.LoadCertificates(cfg.Server.TLS, baseDir)
	if err != nil {
		return err
	}
	g.certs = certs
	g.acme, err = listener.NewACME(cfg.Server.TLS.ACME, baseDir, g.log)
	return err
}

// serve makes the engine serve cfg (defaults applied), and follows a change
// of logging.access_log.
func (g *gateway) serve(cfg *config.Config, version int64) error {
	if err := g.engine.Apply(cfg, version); err != nil {
		return err
	}
	g.accessMu.Lock()
	defer g.accessMu.Unlock()
	if dest := cfg.Logging.AccessLog; dest != g.accessDest || !g.accessSet {
		al, err := accesslog.New(dest)
		if err != nil {
			g.log.Error("access log", "dest", dest, "err", err)
		} else {
			if old := g.engine.SetAccessLog(al); old != nil {
				old.Close()
			}
			g.accessDest, g.access, g.accessSet = dest, al, true
		}
	}
	return nil
}

// reopenAccessLog reopens the access log file, for log rotation by rename.
func (g *gateway) reopenAccessLog() error {
	g.accessMu.Lock()
	defer g.accessMu.Unlock()
	if g.access == nil {
		return nil
	}
	return g.access.Reopen()
}

// bindProxy binds the clear proxy listener (served by serveProxy).
func (g *gateway) bindProxy(cfg *config.Config) error {
	g.proxy = listener.New(&cfg.Server, g.engine.ServeHTTP)
	g.proxy.OnH2Cutoff = g.metrics.HTTP2Cutoff
	if http2Enabled(cfg) {
		g.proxy.EnableHTTP2()
	}
	if err := g.proxy.Listen(cfg.Server.ProxyListen); err != nil {
		return fmt.Errorf("proxy listener %s: %w", cfg.Server.ProxyListen, err)
	}
	return nil
}

func (g *gateway) serveProxy() { go func() { g.serveErr <- g.proxy.Serve() }() }

func http2Enabled(cfg *config.Config) bool { return cfg.Server.HTTP2 == nil || *cfg.Server.HTTP2 }

// listenTLS binds the TLS listener and, with server.tls.http3, the HTTP/3
// one, and serves them.
func (g *gateway) listenTLS(cfg *config.Config, http2 bool) error {
	tries := 1
	if cfg.Server.TLS.HTTP3 && strings.HasSuffix(cfg.Server.TLS.Listen, ":0") {
		tries = 3 // the port chosen for UDP may be taken for TCP: try another
	}
	var tlsProxy *listener.Server
	var h3 *listener.HTTP3Server
	var err error
	for ; tries > 0; tries-- {
		if tlsProxy, h3, err = g.bindTLS(cfg, http2); err == nil {
			break
		}
	}
	if err != nil {
		return err
	}
	g.tlsProxy = tlsProxy
	if err := g.acme.Start(tlsProxy.Addr()); err != nil {
		return err
	}
	go func() { g.serveErr <- tlsProxy.Serve() }()
	if h3 != nil {
		g.h3Proxy = h3
		go func() { g.serveErr <- h3.Serve() }()
	}
	return nil
}

// bindTLS binds the TLS listener, after the HTTP/3 one when it is on: UDP
// first, so that with port 0 TCP takes the port chosen for UDP (Alt-Svc can
// announce a port, not a host).
func (g *gateway) bindTLS(cfg *config.Config, http2 bool) (tlsProxy *listener.Server, h3 *listener.HTTP3Server, err error) {
	addr, handler := cfg.Server.TLS.Listen, fasthttp.RequestHandler(g.engine.ServeHTTP)
	if cfg.Server.TLS.HTTP3 {
		h3 = listener.NewHTTP3(&cfg.Server, g.engine.ServeHTTP, g.acme.TLSConfig(g.certs.ServerConfig()))
		if err := h3.Listen(addr); err != nil {
			return nil, nil, fmt.Errorf("proxy HTTP/3 listener %s (UDP): %w", addr, err)
		}
		host, _, _ := net.SplitHostPort(addr)
		port := h3.Addr().(*net.UDPAddr).Port
		addr = net.JoinHostPort(host, strconv.Itoa(port))
		handler = listener.AdvertiseHTTP3(handler, port)
	}
	tlsProxy = listener.New(&cfg.Server, handler)
	tlsProxy.OnH2Cutoff = g.metrics.HTTP2Cutoff
	protos := []string{"http/1.1"}
	if http2 {
		tlsProxy.EnableHTTP2()
		protos = []string{"h2", "http/1.1"}
	}
	if err := tlsProxy.ListenTLS(addr, g.acme.TLSConfig(g.certs.ServerConfig(protos...))); err != nil {
		if h3 != nil {
			h3.Shutdown(context.Background())
		}
		return nil, nil, fmt.Errorf("proxy TLS listener %s: %w", addr, err)
	}
	return tlsProxy, h3, nil
}

// TLSAddr returns the bound TLS proxy address ("" without TLS).
func (g *gateway) TLSAddr() string {
	if g.tlsProxy == nil {
		return ""
	}
	return g.tlsProxy.Addr().String()
}

// ProxyAddr returns the bound clear proxy address (useful with port 0).
func (g *gateway) ProxyAddr() string { return g.proxy.Addr().String() }

// Version returns the configuration version being served.
func (g *gateway) Version() int64 { return g.engine.Version() }

// Errors reports a listener that stopped on its own.
func (g *gateway) Errors() <-chan error { return g.serveErr }

// shutdownListeners stops the proxy listeners, letting in-flight requests
// finish until ctx ends.
func (g *gateway) shutdownListeners(ctx context.Context) []error {
	var errs []error
	if g.proxy != nil {
		errs = append(errs, g.proxy.Shutdown(ctx))
	}
	if g.tlsProxy != nil {
		errs = append(errs, g.tlsProxy.Shutdown(ctx))
	}
	if g.h3Proxy != nil {
		errs = append(errs, g.h3Proxy.Shutdown(ctx))
	}
	g.acme.Stop()
	return errs
}

// release frees the engine and what it works with.
func (g *gateway) release() []error {
	g.engine.Close()
	g.registry.Close()
	g.transport.CloseIdle()
	if old := g.engine.SetAccessLog(nil); old != nil {
		return []error{old.Close()}
	}
	return nil
}
