// Package app wires the gateway together for `tollgate run`: it loads the
// configuration, brings the file's entities into the store, serves the
// configuration the control plane assembles (file and admin API together),
// starts the proxy and admin listeners, reloads on SIGHUP or file changes,
// and drains on shutdown.
package app

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/controlplane"
	"github.com/tollgate/tollgate/controlplane/admin"
	"github.com/tollgate/tollgate/controlplane/store"
	"github.com/tollgate/tollgate/controlplane/store/memory"
	"github.com/tollgate/tollgate/controlplane/store/sqlstore"
	"github.com/tollgate/tollgate/dataplane/engine"
	"github.com/tollgate/tollgate/dataplane/listener"
	"github.com/tollgate/tollgate/dataplane/proxy"
	"github.com/tollgate/tollgate/dataplane/upstream"
	"github.com/tollgate/tollgate/observe/accesslog"
	"github.com/tollgate/tollgate/observe/metrics"
	"github.com/valyala/fasthttp"
)

// Options configure an App.
type Options struct {
	// ConfigPath is the file to load and watch; empty with Config set means
	// a built-in configuration that is never reloaded.
	ConfigPath string
	Config     *config.Config
	Logger     *slog.Logger
}

// App is a running gateway: data plane and admin endpoints in one process.
type App struct {
	opts      Options
	log       *slog.Logger
	metrics   *metrics.Metrics
	registry  *upstream.Registry
	transport *proxy.Transport
	engine    *engine.Engine

	store store.Store
	ctrl  *controlplane.Controller
	api   *admin.API

	mu         sync.Mutex     // serialises reloads and applies
	cfg        *config.Config // the file (or built-in) configuration
	digest     [32]byte
	appliedGen uint64 // the controller generation the engine serves
	applied    bool
	accessDest string
	access     *accesslog.Logger

	proxy    *listener.Server
	tlsProxy *listener.Server
	h3Proxy  *listener.HTTP3Server
	certs    *listener.Certificates
	admin    *http.Server
	adminLn  net.Listener

	serveErr  chan error
	stopWatch context.CancelFunc
}

// New loads the configuration and builds the gateway without starting it.
func New(opts Options) (*App, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	a := &App{opts: opts, log: opts.Logger, metrics: metrics.New(), serveErr: make(chan error, 4)}
	cfg, digest, err := a.load()
	if err != nil {
		return nil, err
	}
	a.registry = upstream.NewRegistry(upstream.RegistryOptions{
		Logger: a.log,
		OnHealthChange: func(service, target string, healthy bool) {
			a.metrics.SetUpstreamHealth(service, target, healthy)
			if !healthy {
				a.log.Warn("upstream target unhealthy", "service", service, "target", target)
			}
		},
		OnTargetRemoved: a.metrics.RemoveUpstream,
	})
	a.transport = proxy.NewTransport()
	a.engine = engine.New(engine.Options{
		Metrics:   a.metrics,
		Logger:    a.log,
		Registry:  a.registry,
		Transport: a.transport,
	})
	fail := func(err error) (*App, error) {
		a.engine.Close()
		a.registry.Close()
		if a.store != nil {
			a.store.Close()
		}
		return nil, err
	}
	ctx := context.Background()
	if a.store, err = openStore(ctx, cfg.Store, a.baseDir()); err != nil {
		return fail(err)
	}
	if a.ctrl, err = controlplane.New(ctx, a.store, cfg); err != nil {
		return fail(fmt.Errorf("store %s: %w", cfg.Store, err))
	}
	a.ctrl.SetCheck(a.engine.Check)
	if _, err := a.ctrl.ApplyFile(ctx, cfg); err != nil {
		return fail(err)
	}
	a.cfg, a.digest = cfg, digest
	if err := a.applyCurrent(); err != nil {
		return fail(err)
	}
	a.api = admin.New(admin.Options{Controller: a.ctrl, Logger: a.log})
	a.api.SetTokens(cfg.Admin.Tokens, cfg.Server.AdminListen)
	if cfg.Server.TLS != nil {
		if a.certs, err = listener.LoadCertificates(cfg.Server.TLS, a.baseDir()); err != nil {
			return fail(err)
		}
	}
	return a, nil
}

// openStore opens the store a URL names; a relative SQLite file starts from
// the configuration's directory.
func openStore(ctx context.Context, url, baseDir string) (store.Store, error) {
	switch {
	case url == "memory://":
		return memory.New(), nil
	case strings.HasPrefix(url, "sqlite://"):
		path := strings.TrimPrefix(url, "sqlite://")
		if !filepath.IsAbs(path) && baseDir != "" {
			path = filepath.Join(baseDir, path)
		}
		return sqlstore.OpenSQLite(ctx, path)
	}
	return sqlstore.Open(ctx, url)
}

// baseDir is where relative file names in the configuration start from.
func (a *App) baseDir() string {
	if a.opts.ConfigPath == "" {
		return ""
	}
	return filepath.Dir(a.opts.ConfigPath)
}

// load reads the configuration file (or takes the built-in one).
func (a *App) load() (*config.Config, [32]byte, error) {
	if a.opts.ConfigPath == "" {
		return a.opts.Config, [32]byte{}, nil
	}
	data, err := os.ReadFile(a.opts.ConfigPath)
	if err != nil {
		return nil, [32]byte{}, err
	}
	cfg, err := config.Parse(a.opts.ConfigPath, data)
	if err != nil {
		return nil, [32]byte{}, err
	}
	// The digest covers the environment too: ${VAR} values may have changed.
	return cfg, sha256.Sum256(append(data, []byte(fmt.Sprint(os.Environ()))...)), nil
}

// applyCurrent makes the engine serve the controller's configuration, when
// it changed since the engine last took it.
func (a *App) applyCurrent() error {
	cfg, version, gen := a.ctrl.Snapshot()
	if a.applied && gen == a.appliedGen {
		return nil
	}
	cfg.ApplyDefaults()
	if err := a.engine.Apply(cfg, version); err != nil {
		return err
	}
	first := !a.applied
	a.appliedGen, a.applied = gen, true
	if dest := cfg.Logging.AccessLog; dest != a.accessDest || first {
		al, err := accesslog.New(dest)
		if err != nil {
			a.log.Error("access log", "dest", dest, "err", err)
		} else {
			if old := a.engine.SetAccessLog(al); old != nil {
				old.Close()
			}
			a.accessDest, a.access = dest, al
		}
	}
	return nil
}

// Reload re-reads the configuration file. An invalid file is refused and
// the running configuration stays; an unchanged file is skipped.
func (a *App) Reload() error {
	if a.opts.ConfigPath == "" {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	cfg, digest, err := a.load()
	if err == nil && digest == a.digest {
		return nil
	}
	if err == nil {
		if warn := listenersChanged(a.cfg, cfg); warn != "" {
			a.log.Warn("listener settings changed; they take effect at the next restart", "changed", warn)
		}
		_, err = a.ctrl.ApplyFile(context.Background(), cfg)
		if err == nil {
			a.cfg, a.digest = cfg, digest
			a.api.SetTokens(cfg.Admin.Tokens, cfg.Server.AdminListen)
			err = a.applyCurrent()
		}
		if err == nil && a.certs != nil && cfg.Server.TLS != nil {
			if cerr := a.certs.Reload(cfg.Server.TLS, a.baseDir()); cerr != nil {
				a.log.Error("TLS certificates refused; the previous ones stay", "err", cerr.Error())
			}
		}
	}
	a.metrics.ConfigReload(err == nil)
	if err != nil {
		a.log.Error("configuration refused; the running configuration stays", "file", a.opts.ConfigPath, "err", err.Error())
		return err
	}
	a.log.Info("configuration reloaded", "file", a.opts.ConfigPath, "version", a.engine.Version())
	return nil
}

// ReopenLogs reopens the access log file, for log rotation by rename.
func (a *App) ReopenLogs() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.access == nil {
		return nil
	}
	return a.access.Reopen()
}

func listenersChanged(old, cur *config.Config) string {
	switch {
	case old.Server.ProxyListen != cur.Server.ProxyListen:
		return "server.proxy_listen"
	case old.Server.AdminListen != cur.Server.AdminListen:
		return "server.admin_listen"
	case old.Server.Limits != cur.Server.Limits:
		return "server.limits"
	}
	return ""
}

// Version returns the configuration version being served.
func (a *App) Version() int64 { return a.engine.Version() }

// Start binds the listeners and serves in the background.
func (a *App) Start() error {
	cfg := a.cfg
	http2 := cfg.Server.HTTP2 == nil || *cfg.Server.HTTP2
	a.proxy = listener.New(&cfg.Server, a.engine.ServeHTTP)
	if http2 {
		a.proxy.EnableHTTP2()
	}
	if err := a.proxy.Listen(cfg.Server.ProxyListen); err != nil {
		return fmt.Errorf("proxy listener %s: %w", cfg.Server.ProxyListen, err)
	}
	ln, err := net.Listen("tcp", cfg.Server.AdminListen)
	if err != nil {
		a.proxy.Shutdown(context.Background())
		return fmt.Errorf("admin listener %s: %w", cfg.Server.AdminListen, err)
	}
	a.adminLn = ln
	if a.certs != nil {
		if err := a.listenTLS(cfg, http2); err != nil {
			a.proxy.Shutdown(context.Background())
			ln.Close()
			return err
		}
	}
	a.admin = &http.Server{Handler: a.adminHandler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { a.serveErr <- a.proxy.Serve() }()
	go func() {
		if err := a.admin.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			a.serveErr <- err
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	a.stopWatch = cancel
	if a.opts.ConfigPath != "" {
		if err := watchFile(ctx, a.opts.ConfigPath, a.log, func() { a.Reload() }); err != nil {
			a.log.Warn("not watching the configuration file; SIGHUP still reloads", "err", err)
		}
	}
	go a.follow(ctx)
	return nil
}

// follow serves every change the controller announces (admin API writes),
// and looks for versions other control planes wrote to a shared store.
func (a *App) follow(ctx context.Context) {
	changes, cancel := a.ctrl.Subscribe()
	defer cancel()
	poll := time.NewTicker(time.Second)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-poll.C:
			if err := a.ctrl.Refresh(ctx); err != nil && ctx.Err() == nil {
				a.log.Warn("reading the store", "err", err.Error())
			}
			continue
		case <-changes:
		}
		a.mu.Lock()
		err := a.applyCurrent()
		a.mu.Unlock()
		if err != nil {
			a.log.Error("configuration change not served", "err", err.Error())
		}
	}
}

// listenTLS binds the TLS listener and, with server.tls.http3, the HTTP/3
// one, and serves them.
func (a *App) listenTLS(cfg *config.Config, http2 bool) error {
	tries := 1
	if cfg.Server.TLS.HTTP3 && strings.HasSuffix(cfg.Server.TLS.Listen, ":0") {
		tries = 3 // the port chosen for UDP may be taken for TCP: try another
	}
	var tlsProxy *listener.Server
	var h3 *listener.HTTP3Server
	var err error
	for ; tries > 0; tries-- {
		if tlsProxy, h3, err = a.bindTLS(cfg, http2); err == nil {
			break
		}
	}
	if err != nil {
		return err
	}
	a.tlsProxy = tlsProxy
	go func() { a.serveErr <- tlsProxy.Serve() }()
	if h3 != nil {
		a.h3Proxy = h3
		go func() { a.serveErr <- h3.Serve() }()
	}
	return nil
}

// bindTLS binds the TLS listener, after the HTTP/3 one when it is on: UDP
// first, so that with port 0 TCP takes the port chosen for UDP (Alt-Svc can
// announce a port, not a host).
func (a *App) bindTLS(cfg *config.Config, http2 bool) (tlsProxy *listener.Server, h3 *listener.HTTP3Server, err error) {
	addr, handler := cfg.Server.TLS.Listen, fasthttp.RequestHandler(a.engine.ServeHTTP)
	if cfg.Server.TLS.HTTP3 {
		h3 = listener.NewHTTP3(&cfg.Server, a.engine.ServeHTTP, a.certs.ServerConfig())
		if err := h3.Listen(addr); err != nil {
			return nil, nil, fmt.Errorf("proxy HTTP/3 listener %s (UDP): %w", addr, err)
		}
		host, _, _ := net.SplitHostPort(addr)
		port := h3.Addr().(*net.UDPAddr).Port
		addr = net.JoinHostPort(host, strconv.Itoa(port))
		handler = listener.AdvertiseHTTP3(handler, port)
	}
	tlsProxy = listener.New(&cfg.Server, handler)
	protos := []string{"http/1.1"}
	if http2 {
		tlsProxy.EnableHTTP2()
		protos = []string{"h2", "http/1.1"}
	}
	if err := tlsProxy.ListenTLS(addr, a.certs.ServerConfig(protos...)); err != nil {
		if h3 != nil {
			h3.Shutdown(context.Background())
		}
		return nil, nil, fmt.Errorf("proxy TLS listener %s: %w", addr, err)
	}
	return tlsProxy, h3, nil
}

// TLSAddr returns the bound TLS proxy address ("" without TLS).
func (a *App) TLSAddr() string {
	if a.tlsProxy == nil {
		return ""
	}
	return a.tlsProxy.Addr().String()
}

// ProxyAddr and AdminAddr return the bound addresses (useful with port 0).
func (a *App) ProxyAddr() string { return a.proxy.Addr().String() }
func (a *App) AdminAddr() string { return a.adminLn.Addr().String() }

// Errors reports a listener that stopped on its own.
func (a *App) Errors() <-chan error { return a.serveErr }

// Shutdown stops accepting connections, lets in-flight requests finish
// within the drain timeout, then releases everything.
func (a *App) Shutdown(ctx context.Context) error {
	if a.stopWatch != nil {
		a.stopWatch()
	}
	drain := a.cfg.Server.DrainTimeout.Or(30 * time.Second)
	ctx, cancel := context.WithTimeout(ctx, drain)
	defer cancel()
	var errs []error
	if a.proxy != nil {
		errs = append(errs, a.proxy.Shutdown(ctx))
	}
	if a.tlsProxy != nil {
		errs = append(errs, a.tlsProxy.Shutdown(ctx))
	}
	if a.h3Proxy != nil {
		errs = append(errs, a.h3Proxy.Shutdown(ctx))
	}
	if a.admin != nil {
		errs = append(errs, a.admin.Shutdown(ctx))
	}
	a.engine.Close()
	a.registry.Close()
	a.transport.CloseIdle()
	errs = append(errs, a.store.Close())
	if old := a.engine.SetAccessLog(nil); old != nil {
		errs = append(errs, old.Close())
	}
	return errors.Join(errs...)
}

func (a *App) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"status":"ok","config_version":%d}`+"\n", a.engine.Version())
	})
	mux.Handle("GET /metrics", a.metrics.Handler())
	mux.Handle("/api/", a.api.Handler())
	if a.cfg.Admin.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	}
	return mux
}
