package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/controlplane"
	"github.com/tollgate/tollgate/controlplane/admin"
	"github.com/tollgate/tollgate/controlplane/cluster"
	"github.com/tollgate/tollgate/controlplane/store"
	"github.com/tollgate/tollgate/observe/metrics"
)

// ControlPlane is `tollgate cp`: the store, the controller fed by the
// configuration file and the admin API, the admin listener, and the
// cluster listener that streams the configuration to data planes. It
// proxies nothing; an engine that never serves checks each change, so
// that nothing is stored that the data planes would refuse.
type ControlPlane struct {
	opts    Options
	log     *slog.Logger
	checker *gateway // its engine compiles changes; it never serves
	metrics *metrics.Metrics

	store   store.Store
	ctrl    *controlplane.Controller
	api     *admin.API
	cluster *cluster.Server
	certs   atomic.Pointer[tls.Certificate] // the cluster listener's, with cluster.tls

	mu     sync.Mutex // serialises reloads
	cfg    *config.Config
	digest [32]byte

	admin      *http.Server
	adminLn    net.Listener
	clusterSrv *http.Server
	clusterLn  net.Listener
	serveErr   chan error
	stopWatch  context.CancelFunc
}

// NewControlPlane loads the configuration, brings the file's entities into
// the store and prepares the listeners without binding them.
func NewControlPlane(opts Options) (*ControlPlane, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	c := &ControlPlane{opts: opts, log: opts.Logger, metrics: metrics.New(), serveErr: make(chan error, 2)}
	cfg, digest, err := c.opts.load()
	if err != nil {
		return nil, err
	}
	if cfg.Cluster.Token == "" && (cfg.Cluster.TLS == nil || cfg.Cluster.TLS.ClientCA == "") {
		return nil, fmt.Errorf("%s: cluster.token: tollgate cp needs a token data planes present (or cluster.tls.client_ca to accept data planes by certificate)", c.opts.name())
	}
	c.checker = newGateway(c.log)
	c.checker.transport.BaseDir = configDir(opts.ConfigPath)
	fail := func(err error) (*ControlPlane, error) {
		if c.cluster != nil {
			c.cluster.Close()
		}
		c.checker.release()
		if c.store != nil {
			c.store.Close()
		}
		return nil, err
	}
	ctx := context.Background()
	if c.store, err = openStore(ctx, cfg.Store, configDir(opts.ConfigPath)); err != nil {
		return fail(err)
	}
	if c.ctrl, err = controlplane.New(ctx, c.store, cfg); err != nil {
		return fail(fmt.Errorf("store %s: %w", cfg.Store, err))
	}
	c.ctrl.SetCheck(c.check)
	if _, err := c.ctrl.ApplyFile(ctx, cfg); err != nil {
		return fail(err)
	}
	c.cfg, c.digest = cfg, digest
	if err := c.loadClusterCert(cfg); err != nil {
		return fail(err)
	}
	if c.cluster, err = cluster.NewServer(ctx, cluster.ServerOptions{Controller: c.ctrl, Token: cfg.Cluster.Token, Logger: c.log}); err != nil {
		return fail(err)
	}
	c.metrics.Registry().MustRegister(c.cluster.Collectors()...)
	c.api = admin.New(admin.Options{Controller: c.ctrl, Nodes: c.cluster.Nodes, Logger: c.log})
	c.api.SetTokens(cfg.Admin.Tokens, cfg.Server.AdminListen)
	c.metrics.SetConfigVersion(c.Version())
	return c, nil
}

// check compiles a configuration as a data plane would, then drops the
// policy state the compilation made (a control plane serves nothing, so
// nothing else would ever release it).
func (c *ControlPlane) check(cfg *config.Config) error {
	err := c.checker.engine.Check(cfg)
	c.checker.engine.Apply(&config.Config{}, 0) //nolint:errcheck // an empty configuration always compiles
	return err
}

// loadClusterCert reads cluster.tls's certificate (kept for the next
// handshakes; the previous one stays on error).
func (c *ControlPlane) loadClusterCert(cfg *config.Config) error {
	t := cfg.Cluster.TLS
	if t == nil {
		return nil
	}
	dir := configDir(c.opts.ConfigPath)
	pair, err := tls.LoadX509KeyPair(inDir(dir, t.Cert), inDir(dir, t.Key))
	if err != nil {
		return fmt.Errorf("cluster.tls: %w", err)
	}
	c.certs.Store(&pair)
	return nil
}

// clusterTLS is the cluster listener's TLS configuration: HTTP/2 by ALPN
// and, with client_ca, data plane certificates required.
func (c *ControlPlane) clusterTLS(cfg *config.Config) (*tls.Config, error) {
	t := cfg.Cluster.TLS
	tc := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"h2", "http/1.1"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return c.certs.Load(), nil },
	}
	if t.ClientCA != "" {
		pool, err := readPool(inDir(configDir(c.opts.ConfigPath), t.ClientCA))
		if err != nil {
			return nil, fmt.Errorf("cluster.tls.client_ca: %w", err)
		}
		tc.ClientCAs, tc.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return tc, nil
}

// Start binds the admin and cluster listeners and serves them.
func (c *ControlPlane) Start() error {
	cfg := c.cfg
	adminLn, err := net.Listen("tcp", cfg.Server.AdminListen)
	if err != nil {
		return fmt.Errorf("admin listener %s: %w", cfg.Server.AdminListen, err)
	}
	clusterLn, err := net.Listen("tcp", cfg.Cluster.Listen)
	if err != nil {
		adminLn.Close()
		return fmt.Errorf("cluster listener %s: %w", cfg.Cluster.Listen, err)
	}
	c.adminLn, c.clusterLn = adminLn, clusterLn
	c.admin = &http.Server{Handler: adminMux(c.health, c.metrics, c.api.Handler(), cfg.Admin.Pprof), ReadHeaderTimeout: 10 * time.Second}
	// No write timeout: streams last as long as their data plane.
	c.clusterSrv = &http.Server{Handler: c.cluster.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(c.log.Handler(), slog.LevelDebug)}
	if cfg.Cluster.TLS != nil {
		tc, err := c.clusterTLS(cfg)
		if err != nil {
			adminLn.Close()
			clusterLn.Close()
			return err
		}
		c.clusterSrv.TLSConfig = tc
		go c.serve(func() error { return c.clusterSrv.ServeTLS(clusterLn, "", "") })
	} else {
		go c.serve(func() error { return c.clusterSrv.Serve(clusterLn) })
	}
	go c.serve(func() error { return c.admin.Serve(adminLn) })
	ctx, cancel := context.WithCancel(context.Background())
	c.stopWatch = cancel
	if c.opts.ConfigPath != "" {
		if err := watchFile(ctx, c.opts.ConfigPath, c.log, func() { c.reloadIfChanged() }); err != nil {
			c.log.Warn("not watching the configuration file; SIGHUP still reloads", "err", err)
		}
	}
	go c.follow(ctx)
	return nil
}

func (c *ControlPlane) serve(run func() error) {
	if err := run(); !errors.Is(err, http.ErrServerClosed) {
		c.serveErr <- err
	}
}

// follow keeps the version metric current and looks for versions other
// control planes wrote to a shared store (their data planes' changes reach
// this one's within a second; this one's own changes are streamed as they
// are made).
func (c *ControlPlane) follow(ctx context.Context) {
	changes, cancel := c.ctrl.Subscribe()
	defer cancel()
	poll := time.NewTicker(time.Second)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-poll.C:
			if err := c.ctrl.Refresh(ctx); err != nil && ctx.Err() == nil {
				c.log.Warn("reading the store", "err", err.Error())
			}
		case <-changes:
			c.metrics.SetConfigVersion(c.Version())
		}
	}
}

func (c *ControlPlane) health(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"status":"ok","config_version":%d}`+"\n", c.Version())
}

// Reload re-reads the configuration file, as App.Reload does. Listener
// addresses take effect at the next restart; the cluster token and
// certificate at once.
func (c *ControlPlane) Reload() error { return c.reload(true) }

// reloadIfChanged re-reads the file when its content (or the environment
// it expands) changed: what a change of the file triggers.
func (c *ControlPlane) reloadIfChanged() error { return c.reload(false) }

// reload re-reads the configuration file; force applies it even when the
// file is unchanged, for files it names (an OpenAPI document, a CA) that
// may have changed.
func (c *ControlPlane) reload(force bool) error {
	if c.opts.ConfigPath == "" {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	cfg, digest, err := c.opts.load()
	if err == nil && digest == c.digest && !force {
		return nil
	}
	if err == nil {
		warn := listenersChanged(c.cfg, cfg)
		if warn == "" && (c.cfg.Cluster.Listen != cfg.Cluster.Listen || !reflect.DeepEqual(c.cfg.Cluster.TLS, cfg.Cluster.TLS)) {
			warn = "cluster.listen or cluster.tls"
		}
		if warn != "" {
			c.log.Warn("listener settings changed; they take effect at the next restart", "changed", warn)
		}
		_, err = c.ctrl.ApplyFile(context.Background(), cfg)
	}
	if err == nil {
		c.cfg, c.digest = cfg, digest
		c.api.SetTokens(cfg.Admin.Tokens, cfg.Server.AdminListen)
		c.cluster.SetToken(cfg.Cluster.Token)
		if cerr := c.loadClusterCert(cfg); cerr != nil {
			c.log.Error("cluster certificate refused; the previous one stays", "err", cerr.Error())
		}
	}
	c.metrics.ConfigReload(err == nil)
	if err != nil {
		c.log.Error("configuration refused; the running configuration stays", "file", c.opts.ConfigPath, "err", err.Error())
		return err
	}
	c.log.Info("configuration reloaded", "file", c.opts.ConfigPath, "version", c.Version())
	return nil
}

// ReopenLogs does nothing: a control plane writes no access log.
func (c *ControlPlane) ReopenLogs() error { return nil }

// Version returns the version of the configuration in the store (without
// assembling the configuration, which is costly when it is large).
func (c *ControlPlane) Version() int64 {
	_, _, v := c.ctrl.Globals()
	return v
}

// AdminAddr and ClusterAddr return the bound addresses (useful with port 0).
func (c *ControlPlane) AdminAddr() string   { return c.adminLn.Addr().String() }
func (c *ControlPlane) ClusterAddr() string { return c.clusterLn.Addr().String() }

// ClusterURL is the URL data planes connect to (cluster.control_plane).
func (c *ControlPlane) ClusterURL() string {
	if c.cfg.Cluster.TLS != nil {
		return "https://" + c.ClusterAddr()
	}
	return "http://" + c.ClusterAddr()
}

// Errors reports a listener that stopped on its own.
func (c *ControlPlane) Errors() <-chan error { return c.serveErr }

// Shutdown closes the listeners (data planes see their stream end and keep
// serving what they have), then the store.
func (c *ControlPlane) Shutdown(ctx context.Context) error {
	if c.stopWatch != nil {
		c.stopWatch()
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Server.DrainTimeout.Or(30*time.Second))
	defer cancel()
	var errs []error
	c.cluster.Close()
	if c.clusterSrv != nil {
		// Streams never end on their own: close them rather than wait.
		errs = append(errs, c.clusterSrv.Close())
	}
	if c.admin != nil {
		errs = append(errs, c.admin.Shutdown(ctx))
	}
	errs = append(errs, c.checker.release()...)
	errs = append(errs, c.store.Close())
	return errors.Join(errs...)
}

// inDir resolves a file name of the configuration from its directory.
func inDir(dir, path string) string {
	if path == "" || filepath.IsAbs(path) || dir == "" {
		return path
	}
	return filepath.Join(dir, path)
}

// readPool reads a PEM file of CA certificates.
func readPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate found", path)
	}
	return pool, nil
}
