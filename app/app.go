// Package app wires the gateway together. For `tollgate run` (App) it loads
// the configuration, brings the file's entities into the store, serves the
// configuration the control plane assembles (file and admin API together),
// starts the proxy and admin listeners, reloads on SIGHUP or file changes,
// and drains on shutdown. `tollgate cp` (ControlPlane) keeps the store, the
// admin API and the cluster listener without proxying; `tollgate dp`
// (DataPlane) proxies with the configuration a control plane streams to it
// (see controlplane/cluster). The proxy side is the same in App and
// DataPlane (gateway).
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
	"strings"
	"sync"
	"time"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/controlplane"
	"github.com/tollgate/tollgate/controlplane/admin"
	"github.com/tollgate/tollgate/controlplane/store"
	"github.com/tollgate/tollgate/controlplane/store/memory"
	"github.com/tollgate/tollgate/controlplane/store/sqlstore"
	"github.com/tollgate/tollgate/dataplane/policy/cache"
	"github.com/tollgate/tollgate/observe/metrics"
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
	*gateway
	opts Options
	log  *slog.Logger

	store store.Store
	ctrl  *controlplane.Controller
	api   *admin.API

	mu         sync.Mutex     // serialises reloads and applies
	cfg        *config.Config // the file (or built-in) configuration
	digest     [32]byte
	appliedGen uint64 // the controller generation the engine serves
	applied    bool

	admin   *http.Server
	adminLn net.Listener

	stopWatch context.CancelFunc
}

// New loads the configuration and builds the gateway without starting it.
func New(opts Options) (*App, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	a := &App{opts: opts, log: opts.Logger}
	cfg, digest, err := a.opts.load()
	if err != nil {
		return nil, err
	}
	a.gateway = newGateway(a.log)
	a.transport.BaseDir = a.baseDir()
	fail := func(err error) (*App, error) {
		a.release()
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
	a.api = admin.New(admin.Options{Controller: a.ctrl, Logger: a.log, Purge: cache.AdminPurge, Settle: a.settle})
	a.api.SetTokens(cfg.Admin.Tokens, cfg.Server.AdminListen)
	if err := a.loadCertificates(cfg, a.baseDir()); err != nil {
		return fail(err)
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
func (a *App) baseDir() string { return configDir(a.opts.ConfigPath) }

func configDir(path string) string {
	if path == "" {
		return ""
	}
	return filepath.Dir(path)
}

// load reads the configuration file (or takes the built-in one).
func (o Options) load() (*config.Config, [32]byte, error) {
	if o.ConfigPath == "" {
		return o.Config, [32]byte{}, nil
	}
	return loadFile(o.ConfigPath)
}

// name is how messages call the configuration.
func (o Options) name() string {
	if o.ConfigPath == "" {
		return "configuration"
	}
	return o.ConfigPath
}

// loadFile reads and checks a configuration file, returning it with a
// digest that tells whether a reload has anything new.
func loadFile(path string) (*config.Config, [32]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, [32]byte{}, err
	}
	cfg, err := config.Parse(path, data)
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
	if err := a.serve(cfg, version); err != nil {
		return err
	}
	a.appliedGen, a.applied = gen, true
	return nil
}

// Reload re-reads the configuration file and applies it (SIGHUP), even
// unchanged: files it names may have changed. An invalid file is refused
// and the running configuration stays.
func (a *App) Reload() error { return a.reload(true) }

// reloadIfChanged re-reads the file when its content (or the environment
// it expands) changed: what a change of the file triggers.
func (a *App) reloadIfChanged() error { return a.reload(false) }

// reload re-reads the configuration file; force applies it even when the
// file is unchanged, for files it names (an OpenAPI document, a CA) that
// may have changed.
func (a *App) reload(force bool) error {
	if a.opts.ConfigPath == "" {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	cfg, digest, err := a.opts.load()
	if err == nil && digest == a.digest && !force {
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
	return a.reopenAccessLog()
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

// Start binds the listeners and serves in the background.
func (a *App) Start() error {
	cfg := a.cfg
	if err := a.bindProxy(cfg); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Server.AdminListen)
	if err != nil {
		a.proxy.Shutdown(context.Background())
		return fmt.Errorf("admin listener %s: %w", cfg.Server.AdminListen, err)
	}
	a.adminLn = ln
	if a.certs != nil {
		if err := a.listenTLS(cfg, http2Enabled(cfg)); err != nil {
			a.proxy.Shutdown(context.Background())
			ln.Close()
			return err
		}
	}
	a.admin = &http.Server{Handler: a.adminHandler(), ReadHeaderTimeout: 10 * time.Second}
	a.serveProxy()
	go func() {
		if err := a.admin.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			a.serveErr <- err
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	a.stopWatch = cancel
	if a.opts.ConfigPath != "" {
		if err := watchFile(ctx, a.opts.ConfigPath, a.log, func() { a.reloadIfChanged() }); err != nil {
			a.log.Warn("not watching the configuration file; SIGHUP still reloads", "err", err)
		}
	}
	go a.follow(ctx)
	return nil
}

// settle makes the engine serve the controller's configuration now, for an
// admin API answer to come after its change is served.
func (a *App) settle() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.applyCurrent(); err != nil {
		a.log.Error("configuration change not served", "err", err.Error())
	}
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

// AdminAddr returns the bound admin address (useful with port 0).
func (a *App) AdminAddr() string { return a.adminLn.Addr().String() }

// Shutdown stops accepting connections, lets in-flight requests finish
// within the drain timeout, then releases everything.
func (a *App) Shutdown(ctx context.Context) error {
	if a.stopWatch != nil {
		a.stopWatch()
	}
	drain := a.cfg.Server.DrainTimeout.Or(30 * time.Second)
	ctx, cancel := context.WithTimeout(ctx, drain)
	defer cancel()
	errs := a.shutdownListeners(ctx)
	if a.admin != nil {
		errs = append(errs, a.admin.Shutdown(ctx))
	}
	errs = append(errs, a.release()...)
	errs = append(errs, a.store.Close())
	return errors.Join(errs...)
}

func (a *App) adminHandler() http.Handler {
	return adminMux(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"status":"ok","config_version":%d}`+"\n", a.engine.Version())
	}, a.metrics, a.api.Handler(), a.cfg.Admin.Pprof)
}

// adminMux is the admin listener's handler: health, metrics, the admin API
// (nil on a data plane, which has none) and, when asked, Go's profiler.
func adminMux(health http.HandlerFunc, m *metrics.Metrics, api http.Handler, pprofOn bool) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", health)
	mux.Handle("GET /metrics", m.Handler())
	if api != nil {
		mux.Handle("/api/", api)
	}
	if pprofOn {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	}
	return mux
}
