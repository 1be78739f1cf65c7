package redisstore

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/tollgate/tollgate/dataplane/policy/ratelimit/gcra"
	"github.com/tollgate/tollgate/dataplane/policy/ratelimit/local"
)

// Strict decides every request in Redis, with one EVALSHA of a GCRA script.
// While Redis is down it decides with its fallback, a local limiter of the
// same rate.
type Strict struct {
	conn     *Conn
	rate     gcra.Rate
	prefix   string
	timeout  time.Duration
	fallback *local.Limiter
	args     []any // the script's arguments, the same for every call

	// scriptFailing is set once a script error was logged, until a call
	// succeeds again: one log line per episode, not per request.
	scriptFailing atomic.Bool
}

// NewStrict returns a strict limiter keeping its keys under prefix in
// Redis. timeout bounds each call; fallback decides while Redis is down.
func NewStrict(conn *Conn, rate gcra.Rate, prefix string, timeout time.Duration, fallback *local.Limiter) *Strict {
	return &Strict{
		conn: conn, rate: rate, prefix: prefix, timeout: timeout, fallback: fallback,
		args: []any{rate.Interval / int64(time.Microsecond), rate.Capacity / int64(time.Microsecond)},
	}
}

// Allow decides on one request of key.
func (s *Strict) Allow(key []byte) gcra.Decision {
	if !s.conn.Up() {
		s.conn.FallbackDecision()
		return s.fallback.Allow(key)
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	backlog, err := strictScript.Run(ctx, s.conn.client, []string{s.prefix + string(key)}, s.args...).Int64()
	cancel()
	if err != nil {
		s.conn.failed(err)
		if isServerError(err) && s.scriptFailing.CompareAndSwap(false, true) {
			s.conn.log.Error("rate limit script failed in redis; deciding locally", "redis", s.conn.where, "err", err.Error())
		}
		s.conn.FallbackDecision()
		return s.fallback.Allow(key)
	}
	s.conn.succeeded()
	if s.scriptFailing.Load() {
		s.scriptFailing.Store(false)
	}
	return s.rate.Decide(backlog * int64(time.Microsecond))
}

// Close releases the fallback limiter.
func (s *Strict) Close() error { return s.fallback.Close() }
