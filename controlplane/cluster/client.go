package cluster

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/controlplane"
	"github.com/tollgate/tollgate/controlplane/store"
)

// Defaults of ClientOptions.
const (
	DefaultMinBackoff = 250 * time.Millisecond
	DefaultMaxBackoff = 15 * time.Second
)

// ClientOptions configure a data plane's side.
type ClientOptions struct {
	// ControlPlane is the control plane's cluster URL, http:// or https://.
	ControlPlane string
	// Token is sent as a bearer token.
	Token string
	// TLS verifies the control plane over https (nil: the system's roots)
	// and may hold a client certificate.
	TLS *tls.Config
	// CacheDir keeps the last good configuration and the node id.
	CacheDir string
	// Hostname is reported to the control plane (default: os.Hostname).
	Hostname string
	Logger   *slog.Logger
	// Base returns the data plane's own settings (server, logging,
	// tracing...). The control plane brings the entities, the global
	// policies, and the Redis URL when Base has none.
	Base func() *config.Config
	// Apply serves a configuration (defaults applied); on error the one in
	// use stays.
	Apply func(cfg *config.Config, version int64) error
	// MinBackoff and MaxBackoff bound the wait between connection attempts
	// (doubling, with jitter, from one to the other).
	MinBackoff, MaxBackoff time.Duration
}

// Status is what a data plane knows of its configuration.
type Status struct {
	NodeID string `json:"node_id"`
	// Version is the version being served; Configured says whether any
	// configuration is (from the cache or the control plane).
	Version    int64 `json:"config_version"`
	Configured bool  `json:"configured"`
	// Connected says whether the stream from the control plane is open.
	Connected bool `json:"connected"`
	// Health is "ok", or "error: " and why the last configuration received
	// is not served.
	Health string `json:"health"`
}

// Client keeps a data plane's configuration in step with the control
// plane: it streams the configuration, applies each version, caches the
// last good one, boots from that cache, and reports to the control plane.
type Client struct {
	opts      ClientOptions
	http      *http.Client
	streamURL string
	reportURL string
	cache     *cache
	nodeID    string

	mu      sync.Mutex // guards the received state below
	replica *controlplane.Replica
	raw     rawSet
	globals Globals
	epoch   string
	// pending are the messages applied to the replica and not yet in the
	// cache; pending[0] is a snapshot when pendingSnapshot. resets counts
	// the times a snapshot replaced them.
	pending         [][]byte
	pendingSnapshot bool
	resets          uint64
	changes         uint64 // counts changes to the state, to skip applying an unchanged one

	applyMu    sync.Mutex // serialises applyNow (the applier, Reapply, LoadCache)
	applied    uint64     // the changes count last applied, under applyMu
	kick       chan struct{}
	reportKick chan struct{}
	writeMu    sync.Mutex // guards writes
	writes     []cacheWrite
	writeKick  chan struct{}
	status     atomic.Pointer[Status]
	connected  atomic.Bool
	heartbeat  atomic.Int64 // the control plane's heartbeat period, ns

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewClient opens the cache directory (making the node id on first use).
func NewClient(opts ClientOptions) (*Client, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = DefaultMinBackoff
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(DefaultMaxBackoff, opts.MinBackoff)
	}
	if opts.Hostname == "" {
		opts.Hostname, _ = os.Hostname()
	}
	c, err := openCache(opts.CacheDir)
	if err != nil {
		return nil, err
	}
	id, err := c.nodeID()
	if err != nil {
		return nil, fmt.Errorf("cluster.cache_dir: node id: %w", err)
	}
	base := strings.TrimSuffix(opts.ControlPlane, "/")
	cl := &Client{
		opts: opts, cache: c, nodeID: id,
		streamURL: base + StreamPath, reportURL: base + ReportPath,
		replica: controlplane.NewReplica(), raw: rawSet{},
		kick: make(chan struct{}, 1), reportKick: make(chan struct{}, 1), writeKick: make(chan struct{}, 1),
		http: &http.Client{Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSClientConfig:       opts.TLS,
			ForceAttemptHTTP2:     true,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: time.Minute, // a big snapshot is encoded before the answer starts
			IdleConnTimeout:       90 * time.Second,
			DisableCompression:    true,
		}},
	}
	cl.heartbeat.Store(int64(DefaultHeartbeat))
	cl.status.Store(&Status{NodeID: id, Health: HealthOK})
	return cl, nil
}

// NodeID returns the data plane's id.
func (c *Client) NodeID() string { return c.nodeID }

// Status returns what the data plane serves and whether it is connected.
func (c *Client) Status() Status {
	s := *c.status.Load()
	s.Connected = c.connected.Load()
	return s
}

// Collectors returns the data plane's cluster metric:
// tollgate_cluster_connected (1 while the stream is open).
func (c *Client) Collectors() []prometheus.Collector {
	return []prometheus.Collector{prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "tollgate_cluster_connected",
		Help: "1 while this data plane's stream from the control plane is open, else 0.",
	}, func() float64 {
		if c.connected.Load() {
			return 1
		}
		return 0
	})}
}

// LoadCache serves the cached configuration, if there is one. It reports
// whether a configuration is now served.
func (c *Client) LoadCache() (bool, error) {
	snap, deltas, err := c.cache.load()
	if err != nil || snap == nil {
		return false, err
	}
	msg, err := DecodeMessage(snap)
	if err == nil && msg.Type != TypeSnapshot {
		err = fmt.Errorf("not a snapshot but a %s", msg.Type)
	}
	if err != nil {
		return false, fmt.Errorf("%s: %w", cacheSnapshot, err)
	}
	c.mu.Lock()
	_, err = c.ingest(snap, msg, true)
	for i := 0; err == nil && i < len(deltas); i++ {
		var d *Message
		if d, err = DecodeMessage(deltas[i]); err == nil {
			_, err = c.ingest(deltas[i], d, true)
		}
		if err != nil {
			c.opts.Logger.Warn("cluster: the cache's journal is read up to a bad entry", "entry", i+1, "err", err.Error())
			c.cache.keepJournal(i) // what follows is rewritten from what arrives next
			err = nil
			break
		}
	}
	c.mu.Unlock()
	if err != nil {
		return false, fmt.Errorf("%s: %w", cacheSnapshot, err)
	}
	if err := c.applyNow(); err != nil {
		return false, err
	}
	return true, nil
}

// Start connects to the control plane and keeps the configuration in step
// until Close.
func (c *Client) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	c.wg.Add(4)
	go func() { defer c.wg.Done(); c.applyLoop(ctx) }()
	go func() { defer c.wg.Done(); c.writeLoop(ctx) }()
	go func() { defer c.wg.Done(); c.reportLoop(ctx) }()
	go func() { defer c.wg.Done(); c.connectLoop(ctx) }()
}

// Close disconnects and stops.
func (c *Client) Close() {
	if c.cancel != nil {
		c.cancel()
		c.wg.Wait()
	}
	c.http.CloseIdleConnections()
}

// Reapply applies the configuration again, after Base changed.
func (c *Client) Reapply() error {
	c.mu.Lock()
	c.changes++
	c.mu.Unlock()
	return c.applyNow()
}

func (c *Client) connectLoop(ctx context.Context) {
	backoff := c.opts.MinBackoff
	failures := 0
	for {
		connected, err := c.session(ctx)
		if ctx.Err() != nil {
			return
		}
		if connected {
			backoff, failures = c.opts.MinBackoff, 0
		}
		failures++
		wait := backoff/2 + rand.N(backoff/2+1)
		st := c.Status()
		log := c.opts.Logger.With("control_plane", c.opts.ControlPlane, "serving_version", st.Version, "retry_in", wait.Round(time.Millisecond).String())
		switch {
		case errors.Is(err, errRefused):
			log.Error("cluster: " + err.Error())
		case connected:
			log.Warn("cluster: lost the control plane; still serving, reconnecting", "err", err.Error())
		case failures == 1 || backoff >= c.opts.MaxBackoff:
			log.Warn("cluster: control plane unreachable; still serving what this data plane has", "err", err.Error())
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		backoff = min(backoff*2, c.opts.MaxBackoff)
	}
}

// session runs one stream: it says whether the control plane accepted it
// (so the backoff starts again) and why it ended.
func (c *Client) session(ctx context.Context) (connected bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.streamURL, nil)
	if err != nil {
		return false, err
	}
	c.mu.Lock()
	have, epoch := c.replica.Version(), c.epoch
	c.mu.Unlock()
	c.setHeaders(req.Header)
	req.Header.Set(HeaderVersion, strconv.FormatInt(have, 10))
	req.Header.Set(HeaderEpoch, epoch)
	req.Header.Set("Accept", ContentType)
	resp, err := c.http.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusUnauthorized:
		return false, errRefused
	default:
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return false, fmt.Errorf("the control plane answered %s: %s", resp.Status, bytes.TrimSpace(b))
	}
	hb := DefaultHeartbeat
	if ms, err := strconv.ParseInt(resp.Header.Get(HeaderHeartbeat), 10, 64); err == nil && ms > 0 {
		hb = time.Duration(ms) * time.Millisecond
	}
	c.heartbeat.Store(int64(hb))
	// Three heartbeats missed: the connection is dead even if TCP has not
	// noticed yet.
	var silent atomic.Bool
	watchdog := time.AfterFunc(3*hb, func() { silent.Store(true); cancel() })
	defer watchdog.Stop()

	c.connected.Store(true)
	defer c.connected.Store(false)
	c.opts.Logger.Info("cluster: connected to the control plane", "control_plane", c.opts.ControlPlane, "node", c.nodeID, "had_version", have)
	c.kickReport()
	r := bufio.NewReaderSize(resp.Body, 64<<10)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			if silent.Load() {
				return true, fmt.Errorf("nothing from the control plane for %s", 3*hb)
			}
			if err == io.EOF {
				err = io.ErrUnexpectedEOF // the stream never ends on its own
			}
			return true, err
		}
		watchdog.Reset(3 * hb)
		msg, err := DecodeMessage(line)
		if err != nil {
			return true, err
		}
		if msg.Type == TypeHeartbeat {
			continue
		}
		c.mu.Lock()
		changed, err := c.ingest(line, msg, false)
		c.mu.Unlock()
		if err != nil {
			c.setHealth(fmt.Sprintf("error: configuration version %d not applied: %v", msg.Version, err))
			c.kickReport()
			return true, fmt.Errorf("configuration version %d not applied: %w", msg.Version, err)
		}
		if changed {
			select {
			case c.kick <- struct{}{}:
			default:
			}
		}
	}
}

func (c *Client) setHeaders(h http.Header) {
	if c.opts.Token != "" {
		h.Set("Authorization", "Bearer "+c.opts.Token)
	}
	h.Set(HeaderNodeID, c.nodeID)
	h.Set(HeaderHostname, c.opts.Hostname)
}

// ingest applies a received message (or one read back from the cache,
// then persisted) to the replica. It says whether anything changed.
// Called with c.mu held.
func (c *Client) ingest(line []byte, msg *Message, persisted bool) (bool, error) {
	switch msg.Type {
	case TypeSnapshot:
		if err := c.replica.Reset(msg.Entities, msg.Version); err != nil {
			return false, err
		}
		c.raw = newRawSet(msg.Entities)
		c.globals, c.epoch = *msg.Globals, msg.Epoch
		c.pending, c.pendingSnapshot = nil, false
		c.resets++
		if !persisted {
			c.pending, c.pendingSnapshot = [][]byte{line}, true
		}
	case TypeDelta:
		have := c.replica.Version()
		if msg.From > have {
			return false, fmt.Errorf("a delta from version %d, but this data plane has %d", msg.From, have)
		}
		to := max(have, msg.Version)
		globalsChanged := msg.Globals != nil && !reflect.DeepEqual(*msg.Globals, c.globals)
		if to == have && !globalsChanged {
			return false, nil
		}
		if err := c.replica.Apply(msg.Ops, to); err != nil {
			return false, err
		}
		c.raw.apply(msg.Ops, have)
		if globalsChanged {
			c.globals = *msg.Globals
		}
		if !persisted {
			c.pending = append(c.pending, line)
		}
	default:
		return false, nil
	}
	c.changes++
	return true, nil
}

func (c *Client) applyLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.kick:
			c.applyNow() //nolint:errcheck // logged and reported
		}
	}
}

// applyNow serves the replica's state, when it changed since last served,
// then writes what made it to the cache and reports.
func (c *Client) applyNow() error {
	c.applyMu.Lock()
	defer c.applyMu.Unlock()
	c.mu.Lock()
	if c.changes == c.applied {
		c.mu.Unlock()
		return nil
	}
	base := *c.opts.Base()
	base.Policies = c.globals.Policies
	if base.Redis == "" {
		base.Redis = c.globals.Redis
	}
	cfg := c.replica.Config(&base)
	version, changes, resets := c.replica.Version(), c.changes, c.resets
	pending, pendingSnapshot := c.pending, c.pendingSnapshot
	c.mu.Unlock()

	cfg.ApplyDefaults()
	err := c.opts.Apply(cfg, version)
	c.applied = changes
	if err != nil {
		c.setHealth(fmt.Sprintf("error: configuration version %d refused: %v", version, err))
		c.opts.Logger.Error("cluster: configuration refused; the one in use stays", "version", version, "err", err.Error())
		c.kickReport()
		return err
	}
	c.status.Store(&Status{NodeID: c.nodeID, Version: version, Configured: true, Health: HealthOK})
	c.kickReport()

	// What made this configuration goes to the cache writer, which owns
	// it from now on: the next configuration never waits for a disk.
	c.mu.Lock()
	if c.resets == resets {
		c.pending = c.pending[len(pending):]
		if len(pending) > 0 {
			c.pendingSnapshot = false
		}
	}
	c.mu.Unlock()
	c.queueCacheWrite(cacheWrite{lines: pending, snapshot: pendingSnapshot})
	return nil
}

// cacheWrite is one batch for the cache writer: the messages of a served
// configuration.
type cacheWrite struct {
	lines    [][]byte
	snapshot bool // lines[0] is a snapshot
}

func (c *Client) queueCacheWrite(w cacheWrite) {
	if len(w.lines) == 0 {
		return
	}
	c.writeMu.Lock()
	c.writes = append(c.writes, w)
	c.writeMu.Unlock()
	select {
	case c.writeKick <- struct{}{}:
	default:
	}
}

// writeLoop writes queued batches to the cache, in order, and what is
// left when the client stops.
func (c *Client) writeLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			c.writeCache()
			return
		case <-c.writeKick:
			c.writeCache()
		}
	}
}

// writeCache writes the queued batches, then folds the journal into a new
// snapshot once it has grown. A failure is logged: the data plane serves
// on, with an older cache. Only this goroutine touches the cache once the
// client has started.
func (c *Client) writeCache() {
	c.writeMu.Lock()
	writes := c.writes
	c.writes = nil
	c.writeMu.Unlock()
	var err error
	for _, w := range writes {
		lines := w.lines
		if w.snapshot {
			if err = c.cache.saveSnapshot(lines[0]); err != nil {
				break
			}
			lines = lines[1:]
		}
		if len(lines) > 0 {
			if err = c.cache.appendDeltas(lines); err != nil {
				break
			}
		}
	}
	if err == nil && c.cache.wantsCompaction() {
		err = c.compactCache()
	}
	if err != nil {
		c.opts.Logger.Warn("cluster: writing the configuration cache", "dir", c.opts.CacheDir, "err", err.Error())
	}
}

// compactCache writes the state served as the cached snapshot. It waits
// for a moment when everything received has been served (nothing pending):
// the state is then the last good one.
func (c *Client) compactCache() error {
	c.mu.Lock()
	if len(c.pending) > 0 {
		c.mu.Unlock()
		return nil
	}
	entities := c.raw.values()
	g, err := encodeGlobals(c.globals)
	version, epoch := c.replica.Version(), c.epoch
	c.mu.Unlock()
	if err != nil {
		return err
	}
	store.SortEntities(entities)
	return c.cache.saveSnapshot(appendSnapshot(make([]byte, 0, bodyBytes(entities)), version, epoch, g, entities))
}

func (c *Client) setHealth(h string) {
	s := *c.status.Load()
	s.Health = h
	c.status.Store(&s)
}

func (c *Client) kickReport() {
	select {
	case c.reportKick <- struct{}{}:
	default:
	}
}

// reportLoop tells the control plane the version served and the health,
// after each change and at every heartbeat while connected.
func (c *Client) reportLoop(ctx context.Context) {
	tick := time.NewTicker(DefaultHeartbeat)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.reportKick:
		case <-tick.C:
		}
		tick.Reset(time.Duration(c.heartbeat.Load()))
		if !c.connected.Load() {
			continue
		}
		if err := c.report(ctx); err != nil && ctx.Err() == nil {
			c.opts.Logger.Debug("cluster: report to the control plane", "err", err.Error())
		}
	}
}

func (c *Client) report(ctx context.Context) error {
	st := c.Status()
	body, _ := json.Marshal(Report{ID: c.nodeID, Hostname: c.opts.Hostname, Version: st.Version, Health: st.Health})
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.reportURL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	c.setHeaders(req.Header)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("the control plane answered %s", resp.Status)
	}
	return nil
}
