package app

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/controlplane/cluster"
)

// DataPlane is `tollgate dp`: the proxy listeners, serving what the control
// plane named in cluster.control_plane streams (or, while it is away, the
// last good configuration cached in cluster.cache_dir), and an admin
// listener with /healthz and /metrics only. Its own file gives the server,
// logging, tracing and cluster settings (and redis, when set); entities and
// global policies come from the control plane.
type DataPlane struct {
	*gateway
	opts   Options
	client *cluster.Client

	mu     sync.Mutex // serialises reloads
	cfg    atomic.Pointer[config.Config]
	digest [32]byte

	admin     *http.Server
	adminLn   net.Listener
	stopWatch context.CancelFunc
}

// DataPlaneOptions tune a DataPlane beyond its file (tests).
type DataPlaneOptions struct {
	// MinBackoff and MaxBackoff bound the wait between connection attempts.
	MinBackoff, MaxBackoff time.Duration
	// Hostname reported to the control plane (default: the machine's).
	Hostname string
}

// NewDataPlane loads the file and the cached configuration, if any, without
// binding listeners or connecting.
func NewDataPlane(opts Options, dpOpts ...DataPlaneOptions) (*DataPlane, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	var tune DataPlaneOptions
	if len(dpOpts) > 0 {
		tune = dpOpts[0]
	}
	d := &DataPlane{opts: opts}
	cfg, digest, err := d.opts.load()
	if err != nil {
		return nil, err
	}
	if cfg.Cluster.ControlPlane == "" {
		return nil, fmt.Errorf("%s: cluster.control_plane: tollgate dp needs the control plane's URL", d.opts.name())
	}
	if ignored := dataPlaneIgnores(cfg); ignored != "" {
		opts.Logger.Warn("ignored by tollgate dp: the control plane provides them", "settings", ignored)
	}
	d.cfg.Store(cfg)
	d.digest = digest
	dir := configDir(opts.ConfigPath)
	tc, err := clusterClientTLS(&cfg.Cluster, dir)
	if err != nil {
		return nil, err
	}
	d.gateway = newGateway(opts.Logger)
	d.transport.BaseDir = dir
	if err := d.loadCertificates(cfg, dir); err != nil {
		d.release()
		return nil, err
	}
	d.client, err = cluster.NewClient(cluster.ClientOptions{
		ControlPlane: cfg.Cluster.ControlPlane,
		Token:        cfg.Cluster.Token,
		TLS:          tc,
		CacheDir:     inDir(dir, cfg.Cluster.CacheDir),
		Hostname:     tune.Hostname,
		Logger:       opts.Logger,
		Base:         d.cfg.Load,
		Apply:        d.apply,
		MinBackoff:   tune.MinBackoff,
		MaxBackoff:   tune.MaxBackoff,
	})
	if err != nil {
		d.release()
		return nil, err
	}
	d.metrics.Registry().MustRegister(d.client.Collectors()...)
	switch ok, err := d.client.LoadCache(); {
	case err != nil:
		opts.Logger.Warn("the cached configuration cannot be served; waiting for the control plane", "dir", cfg.Cluster.CacheDir, "err", err.Error())
	case ok:
		opts.Logger.Info("serving the cached configuration until the control plane answers", "version", d.Version())
	}
	return d, nil
}

// apply serves a configuration from the control plane (or the cache).
func (d *DataPlane) apply(cfg *config.Config, version int64) error {
	err := d.serve(cfg, version)
	d.metrics.ConfigReload(err == nil)
	if err == nil {
		d.log.Info("configuration applied", "version", version)
	}
	return err
}

// dataPlaneIgnores names what a data plane's file sets in vain.
func dataPlaneIgnores(cfg *config.Config) string {
	var names []string
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"services", len(cfg.Services) > 0}, {"routes", len(cfg.Routes) > 0},
		{"consumers", len(cfg.Consumers) > 0}, {"plans", len(cfg.Plans) > 0},
		{"policies", len(cfg.Policies) > 0}, {"admin.tokens", len(cfg.Admin.Tokens) > 0},
	} {
		if f.set {
			names = append(names, f.name)
		}
	}
	return strings.Join(names, ", ")
}

// clusterClientTLS is the data plane's TLS configuration towards the
// control plane (nil: Go's defaults, the system's roots).
func clusterClientTLS(c *config.Cluster, dir string) (*tls.Config, error) {
	if c.CA == "" && c.Cert == "" {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CA != "" {
		pool, err := readPool(inDir(dir, c.CA))
		if err != nil {
			return nil, fmt.Errorf("cluster.ca: %w", err)
		}
		tc.RootCAs = pool
	}
	if c.Cert != "" {
		pair, err := tls.LoadX509KeyPair(inDir(dir, c.Cert), inDir(dir, c.Key))
		if err != nil {
			return nil, fmt.Errorf("cluster.cert: %w", err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	return tc, nil
}

// Start binds the listeners, serves, and connects to the control plane.
func (d *DataPlane) Start() error {
	cfg := d.cfg.Load()
	if err := d.bindProxy(cfg); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Server.AdminListen)
	if err != nil {
		d.proxy.Shutdown(context.Background())
		return fmt.Errorf("admin listener %s: %w", cfg.Server.AdminListen, err)
	}
	d.adminLn = ln
	if d.certs != nil {
		if err := d.listenTLS(cfg, http2Enabled(cfg)); err != nil {
			d.proxy.Shutdown(context.Background())
			ln.Close()
			return err
		}
	}
	d.admin = &http.Server{Handler: adminMux(d.health, d.metrics, nil, cfg.Admin.Pprof), ReadHeaderTimeout: 10 * time.Second}
	d.serveProxy()
	go func() {
		if err := d.admin.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			d.serveErr <- err
		}
	}()
	d.client.Start()
	ctx, cancel := context.WithCancel(context.Background())
	d.stopWatch = cancel
	if d.opts.ConfigPath != "" {
		if err := watchFile(ctx, d.opts.ConfigPath, d.log, func() { d.reloadIfChanged() }); err != nil {
			d.log.Warn("not watching the configuration file; SIGHUP still reloads", "err", err)
		}
	}
	return nil
}

// health answers 200 once a configuration is served (from the control
// plane or the cache), 503 before.
func (d *DataPlane) health(w http.ResponseWriter, r *http.Request) {
	st := d.client.Status()
	body := struct {
		Status       string `json:"status"`
		Version      int64  `json:"config_version"`
		NodeID       string `json:"node_id"`
		ControlPlane string `json:"control_plane"`
		Health       string `json:"health"`
	}{"ok", st.Version, st.NodeID, "disconnected", st.Health}
	if st.Connected {
		body.ControlPlane = "connected"
	}
	status := http.StatusOK
	if !st.Configured {
		body.Status, status = "starting", http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body)
}

// Status returns the data plane's cluster status.
func (d *DataPlane) Status() cluster.Status { return d.client.Status() }

// Reload re-reads the file: server, logging and policy-independent
// settings apply at once; listeners and cluster settings at the next
// restart.
func (d *DataPlane) Reload() error { return d.reload(true) }

// reloadIfChanged re-reads the file when its content (or the environment
// it expands) changed: what a change of the file triggers.
func (d *DataPlane) reloadIfChanged() error { return d.reload(false) }

// reload re-reads the configuration file; force applies it even when the
// file is unchanged, for files it names (an OpenAPI document, a CA) that
// may have changed.
func (d *DataPlane) reload(force bool) error {
	if d.opts.ConfigPath == "" {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	cfg, digest, err := d.opts.load()
	if err == nil && digest == d.digest && !force {
		return nil
	}
	if err == nil && cfg.Cluster.ControlPlane == "" {
		err = fmt.Errorf("%s: cluster.control_plane: tollgate dp needs the control plane's URL", d.opts.name())
	}
	if err != nil {
		d.metrics.ConfigReload(false)
		d.log.Error("configuration refused; the running configuration stays", "file", d.opts.ConfigPath, "err", err.Error())
		return err
	}
	old := d.cfg.Load()
	if warn := listenersChanged(old, cfg); warn != "" {
		d.log.Warn("listener settings changed; they take effect at the next restart", "changed", warn)
	}
	if !reflect.DeepEqual(old.Cluster, cfg.Cluster) {
		d.log.Warn("cluster settings changed; they take effect at the next restart")
	}
	d.cfg.Store(cfg)
	d.digest = digest
	if d.certs != nil && cfg.Server.TLS != nil {
		if cerr := d.certs.Reload(cfg.Server.TLS, configDir(d.opts.ConfigPath)); cerr != nil {
			d.log.Error("TLS certificates refused; the previous ones stay", "err", cerr.Error())
		}
	}
	if err := d.client.Reapply(); err != nil {
		return err
	}
	d.log.Info("configuration reloaded", "file", d.opts.ConfigPath, "version", d.Version())
	return nil
}

// ReopenLogs reopens the access log file, for log rotation by rename.
func (d *DataPlane) ReopenLogs() error { return d.reopenAccessLog() }

// AdminAddr returns the bound admin address (useful with port 0).
func (d *DataPlane) AdminAddr() string { return d.adminLn.Addr().String() }

// Shutdown disconnects from the control plane, stops accepting
// connections, lets in-flight requests finish within the drain timeout,
// then releases everything. The cache stays for the next start.
func (d *DataPlane) Shutdown(ctx context.Context) error {
	if d.stopWatch != nil {
		d.stopWatch()
	}
	d.client.Close()
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Load().Server.DrainTimeout.Or(30*time.Second))
	defer cancel()
	errs := d.shutdownListeners(ctx)
	if d.admin != nil {
		errs = append(errs, d.admin.Shutdown(ctx))
	}
	errs = append(errs, d.release()...)
	return errors.Join(errs...)
}
