package cluster

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tollgate/tollgate/controlplane"
	"github.com/tollgate/tollgate/controlplane/admin"
	"github.com/tollgate/tollgate/internal/jsonx"
)

// Defaults of ServerOptions.
const (
	DefaultHeartbeat     = 10 * time.Second
	DefaultNodeRetention = 24 * time.Hour
)

// ServerOptions configure the control plane's side.
type ServerOptions struct {
	Controller *controlplane.Controller
	// Token is the bearer token data planes must present; empty accepts
	// any (for a listener that verifies client certificates instead).
	Token  string
	Logger *slog.Logger
	// Heartbeat is how often an idle stream says it is alive.
	Heartbeat time.Duration
	// NodeRetention is how long a disconnected data plane stays listed.
	NodeRetention time.Duration
	// Now is the clock of the node registry (tests).
	Now func() time.Time
}

// Server serves the stream and reports of data planes and keeps the
// registry of nodes.
type Server struct {
	opts   ServerOptions
	feed   *feed
	nodes  *registry
	token  atomic.Pointer[[32]byte] // nil: no token required
	cancel context.CancelFunc
	done   chan struct{}
}

// NewServer loads the store's current state and starts following the
// controller's changes until Close.
func NewServer(ctx context.Context, opts ServerOptions) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = DefaultHeartbeat
	}
	if opts.NodeRetention <= 0 {
		opts.NodeRetention = DefaultNodeRetention
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	f, changes, unsubscribe, err := newFeed(ctx, opts.Controller, opts.Logger)
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &Server{opts: opts, feed: f, nodes: newRegistry(opts.Now, opts.NodeRetention), cancel: cancel, done: make(chan struct{})}
	s.SetToken(opts.Token)
	go func() {
		defer close(s.done)
		defer unsubscribe()
		f.run(runCtx, changes)
	}()
	return s, nil
}

// Close stops following the controller. Open streams end when their
// listener shuts down.
func (s *Server) Close() {
	s.cancel()
	<-s.done
}

// SetToken replaces the token data planes must present (on a reload).
func (s *Server) SetToken(token string) {
	if token == "" {
		s.token.Store(nil)
		return
	}
	sum := sha256.Sum256([]byte(token))
	s.token.Store(&sum)
}

// Nodes lists the data planes, for the admin API.
func (s *Server) Nodes() []admin.Node { return s.nodes.list() }

// Collectors returns the control plane's cluster metrics:
// tollgate_cluster_nodes{status}.
func (s *Server) Collectors() []prometheus.Collector {
	gauge := func(status string, pick func(c, d int) int) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "tollgate_cluster_nodes",
			Help:        "Data planes known to this control plane, by status.",
			ConstLabels: prometheus.Labels{"status": status},
		}, func() float64 { return float64(pick(s.nodes.counts())) })
	}
	return []prometheus.Collector{
		gauge(StatusConnected, func(c, _ int) int { return c }),
		gauge(StatusDisconnected, func(_, d int) int { return d }),
	}
}

// Handler serves StreamPath and ReportPath.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+StreamPath, s.serveStream)
	mux.HandleFunc("POST "+ReportPath, s.serveReport)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such cluster endpoint")
	})
	return mux
}

// authorized checks the bearer token, answering 401 when it is wrong.
func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	want := s.token.Load()
	if want == nil {
		return true
	}
	scheme, presented, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	sum := sha256.Sum256([]byte(presented))
	if ok && strings.EqualFold(scheme, "Bearer") && subtle.ConstantTimeCompare(sum[:], want[:]) == 1 {
		return true
	}
	s.opts.Logger.Warn("cluster: data plane refused: invalid cluster token",
		"remote", r.RemoteAddr, "node", r.Header.Get(HeaderNodeID), "hostname", r.Header.Get(HeaderHostname))
	w.Header().Set("WWW-Authenticate", `Bearer realm="tollgate-cluster", error="invalid_token"`)
	writeError(w, http.StatusUnauthorized, "unauthorized", "invalid cluster token")
	return false
}

func (s *Server) serveStream(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r) {
		return
	}
	id, hostname := r.Header.Get(HeaderNodeID), r.Header.Get(HeaderHostname)
	if id == "" || len(id) > 128 || len(hostname) > 255 {
		writeError(w, http.StatusBadRequest, "bad_request", "a node id ("+HeaderNodeID+") of at most 128 bytes is required")
		return
	}
	have, _ := strconv.ParseInt(r.Header.Get(HeaderVersion), 10, 64)
	ctx := r.Context()
	lines, pos, err := s.feed.start(ctx, have, r.Header.Get(HeaderEpoch))
	if err != nil {
		s.opts.Logger.Error("cluster: configuration for a data plane", "node", id, "err", err.Error())
		writeError(w, http.StatusServiceUnavailable, "unavailable", "the configuration cannot be read now")
		return
	}
	h := w.Header()
	h.Set("Content-Type", ContentType)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // a buffering proxy in between would hold the stream back
	h.Set(HeaderHeartbeat, strconv.FormatInt(s.opts.Heartbeat.Milliseconds(), 10))
	w.WriteHeader(http.StatusOK)

	addr := remoteHost(r)
	s.nodes.connected(id, hostname, addr, have)
	defer s.nodes.disconnected(id)
	s.opts.Logger.Info("cluster: data plane connected", "node", id, "hostname", hostname, "address", addr,
		"had_version", have, "sent_version", pos.version)
	defer s.opts.Logger.Info("cluster: data plane disconnected", "node", id, "hostname", hostname)

	rc := http.NewResponseController(w)
	send := func(lines [][]byte) bool {
		for _, line := range lines {
			// A data plane that stops reading must not hold a goroutine
			// forever; big snapshots get more time.
			rc.SetWriteDeadline(time.Now().Add(30*time.Second + time.Duration(len(line)>>20)*time.Second))
			if _, err := w.Write(line); err != nil {
				return false
			}
		}
		return rc.Flush() == nil
	}
	if !send(lines) {
		return
	}
	heartbeat := time.NewTicker(s.opts.Heartbeat)
	defer heartbeat.Stop()
	var buf []byte
	for {
		lines, next, wake, behind := s.feed.next(pos)
		if behind {
			if lines, next, err = s.feed.start(ctx, pos.version, pos.epoch); err != nil {
				s.opts.Logger.Error("cluster: configuration for a data plane", "node", id, "err", err.Error())
				return
			}
		}
		if len(lines) > 0 {
			if !send(lines) {
				return
			}
			pos = next
			heartbeat.Reset(s.opts.Heartbeat)
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-heartbeat.C:
			buf = appendHeartbeat(buf[:0], pos.version)
			if !send([][]byte{buf}) {
				return
			}
		}
	}
}

func (s *Server) serveReport(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r) {
		return
	}
	var rep Report
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&rep); err != nil || rep.ID == "" || len(rep.ID) > 128 {
		writeError(w, http.StatusBadRequest, "bad_request", "a JSON report with an id is required")
		return
	}
	s.nodes.report(rep, remoteHost(r))
	w.WriteHeader(http.StatusNoContent)
}

func remoteHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// writeError answers in the gateway's error format.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	b := []byte(`{"error":{"status":`)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, `,"code":`...)
	b = jsonx.AppendString(b, code)
	b = append(b, `,"message":`...)
	b = jsonx.AppendString(b, msg)
	w.Write(append(b, "}}\n"...))
}

// errRefused is the client's error for a 401 from the control plane.
var errRefused = errors.New("the control plane refused the cluster token (401 Unauthorized): check cluster.token")
