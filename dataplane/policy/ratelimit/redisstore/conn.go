// Package redisstore makes rate limits cluster-wide through Redis, in the
// two ways the rate-limit policy offers:
//
//   - Strict decides every request with one atomic round trip: a Lua GCRA
//     script (EVALSHA, falling back to EVAL when Redis lost the script) that
//     reads and moves the key's TAT using Redis's own clock, so gateways with
//     skewed clocks still agree. Exact, at the price of a round trip.
//   - Batched decides on the gateway, against a view of the key that is the
//     cluster's state as of the last sync plus this gateway's admissions
//     since, and pushes its admissions to Redis every sync interval (reading
//     the cluster's state back in the same script call). The request path
//     makes no network call; the price is a bounded excess of admissions,
//     described on Batched.
//
// Both fall back to limiting on the gateway alone while Redis does not
// answer (they never fail closed): a call that fails is decided locally;
// a few failures in a row mark the connection down, which is logged once,
// after which requests stop waiting on Redis; a background probe brings it
// back when Redis answers again. One Conn, with its connection pool, is
// shared by every limiter using the same URL.
//
// This is the only package of the data plane that talks to Redis. It
// replaces the client library's logger with one that drops its per-dial
// failure lines (Conn reports an outage once instead) and passes the rest
// on to the standard logger as before.
package redisstore

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/logging"
	"github.com/tollgate/tollgate/internal/redisopt"
)

// The client library logs every failed dial; Conn reports an outage once
// instead. Other library messages still go to the standard logger.
func init() {
	redis.SetLogger(logging.NewBlacklistLogger([]string{"failed to dial"}))
}

// ConnOptions tune a Conn; the zero value is what the gateway uses.
type ConnOptions struct {
	Logger *slog.Logger
	// Registry receives the store's metrics (once per registry); nil
	// keeps them unexposed.
	Registry *prometheus.Registry
	// ProbeEvery is how often a down connection is tried again (250ms).
	ProbeEvery time.Duration
	// ProbeTimeout bounds one probe (1s).
	ProbeTimeout time.Duration
}

// Conn is a Redis client shared by the limiters of one URL, and whether
// Redis answers.
type Conn struct {
	client  *redis.Client
	where   string // the URL without its password, for logs
	log     *slog.Logger
	metrics *storeMetrics

	down      atomic.Bool
	downSince atomic.Int64 // unix nanoseconds
	failures  atomic.Int64 // calls failed in a row
	closed    atomic.Bool

	probeEvery, probeTimeout time.Duration
	wake                     chan struct{}
	// ctx ends with Close, cutting a probe or call short.
	ctx       context.Context
	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
}

// ParseURL checks a Redis address: a redis:// or rediss:// URL, or a bare
// host:port.
func ParseURL(addr string) error {
	_, err := clientOptions(addr)
	return err
}

func clientOptions(addr string) (*redis.Options, error) {
	opts, err := redisopt.Options(addr)
	if err != nil {
		return nil, err
	}
	opts.DialerRetries = 1
	return opts, nil
}

// redact hides a URL's password for logs.
func redact(addr string) string {
	if u, err := url.Parse(addr); err == nil && u.Host != "" {
		return u.Redacted()
	}
	return addr
}

// Open returns a connection to Redis at addr (see ParseURL). It does not
// dial: the pool connects on first use.
func Open(addr string, opts ConnOptions) (*Conn, error) {
	o, err := clientOptions(addr)
	if err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	c := &Conn{
		client:       redis.NewClient(o),
		where:        redact(addr),
		log:          opts.Logger,
		metrics:      metricsFor(opts.Registry),
		probeEvery:   opts.ProbeEvery,
		probeTimeout: opts.ProbeTimeout,
		wake:         make(chan struct{}, 1),
		done:         make(chan struct{}),
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	if c.probeEvery <= 0 {
		c.probeEvery = 250 * time.Millisecond
	}
	if c.probeTimeout <= 0 {
		c.probeTimeout = time.Second
	}
	c.metrics.addConn(c)
	go c.probeLoop()
	return c, nil
}

// Up reports whether Redis is answering; while it is not, limiters decide
// locally.
func (c *Conn) Up() bool { return !c.down.Load() }

// FallbackDecision counts one decision made locally because Redis is down.
func (c *Conn) FallbackDecision() { c.metrics.fallbackDecisions.Inc() }

// downAfter is how many calls in a row must fail before the connection
// counts as down: one slow answer (a pause, a busy core) should not send
// every gateway to its local limits, while a Redis that is gone fails that
// many calls within milliseconds.
const downAfter = 3

// failed records a failed call. Errors Redis itself answered (a script
// error) say nothing about reachability and are the caller's to report;
// anything else (refused, reset, timed out) counts towards marking the
// connection down, which is logged once per outage.
func (c *Conn) failed(err error) {
	if c.closed.Load() || isServerError(err) || errors.Is(err, context.Canceled) {
		return
	}
	if c.failures.Add(1) < downAfter || !c.down.CompareAndSwap(false, true) {
		return
	}
	c.downSince.Store(time.Now().UnixNano())
	c.log.Warn("redis unreachable: rate limits fall back to limiting on each gateway alone until it answers again",
		"redis", c.where, "err", err.Error())
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// succeeded records a call Redis answered.
func (c *Conn) succeeded() {
	if c.failures.Load() != 0 {
		c.failures.Store(0)
	}
}

func isServerError(err error) bool {
	var re redis.Error
	return errors.As(err, &re) && !errors.Is(err, redis.ErrClosed)
}

func (c *Conn) probeLoop() {
	defer close(c.done)
	t := time.NewTimer(c.probeEvery)
	t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.wake:
		}
		for c.down.Load() {
			t.Reset(c.probeEvery)
			select {
			case <-c.ctx.Done():
				return
			case <-t.C:
			}
			ctx, cancel := context.WithTimeout(c.ctx, c.probeTimeout)
			err := c.client.Ping(ctx).Err()
			cancel()
			if err == nil {
				since := time.Unix(0, c.downSince.Load())
				c.failures.Store(0)
				c.down.Store(false)
				c.log.Info("redis reachable again: rate limits are cluster-wide again",
					"redis", c.where, "down_for", time.Since(since).Round(time.Millisecond).String())
			}
		}
	}
}

// Close stops the probe and closes the connection pool.
func (c *Conn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		c.cancel()
		<-c.done
		c.metrics.removeConn(c)
		err = c.client.Close()
	})
	return err
}
