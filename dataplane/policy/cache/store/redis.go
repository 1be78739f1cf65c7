package store

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tollgate/tollgate/internal/redisopt"
)

// Redis is the store shared by gateways: entries live in Redis under a key
// prefix, with Redis's own expiry set to their freshness, so every gateway
// using the same Redis and prefix answers from what any of them stored.
//
// Each gateway keeps a Memory in front of it (the caller's): an entry read
// from Redis is kept there until it expires. What a purge removes must also
// leave those memories, so a purge publishes its scope on the prefix's
// channel, and every gateway listening there purges its own.
//
// Redis is never what makes a request fail: calls have a short deadline,
// a failed call counts as a miss (or a write not made), and after a few
// failures in a row the store stops asking for a second, so that requests
// do not each wait for a Redis that is gone. Every call skipped or failed
// is reported to Fallback.
type Redis struct {
	client  *redis.Client
	where   string // the URL without its password, for logs
	log     *slog.Logger
	timeout time.Duration
	// fallback counts a call that did not reach Redis.
	fallback func()

	failures  atomic.Int64
	downUntil atomic.Int64 // Unix ns; calls are skipped before it
	down      atomic.Bool

	writes chan struct{} // bounds the writes in flight

	mu        sync.Mutex
	pubsub    *redis.PubSub
	listeners map[string]*listeners // by channel
	closed    bool
	done      chan struct{}
}

// RedisOptions tune a Redis store.
type RedisOptions struct {
	Logger *slog.Logger
	// Timeout bounds each call (DefaultRedisTimeout when 0).
	Timeout time.Duration
	// Fallback is told of every call skipped or failed (nil: nobody).
	Fallback func()
}

// Tuning of the store's calls and outage handling.
const (
	DefaultRedisTimeout = 200 * time.Millisecond
	// downAfter failed calls in a row make the store skip Redis for
	// downFor.
	downAfter = 3
	downFor   = time.Second
	// maxWrites is how many writes may be in flight; beyond, an entry is
	// kept in memory only.
	maxWrites = 64
	// purgeBatch is how many keys one UNLINK removes.
	purgeBatch = 500
)

// CheckURL checks a Redis address: a redis:// or rediss:// URL, or a bare
// host:port.
func CheckURL(addr string) error {
	_, err := clientOptions(addr)
	return err
}

func clientOptions(addr string) (*redis.Options, error) {
	return redisopt.Options(addr)
}

// OpenRedis returns the store of the Redis at addr (see CheckURL). It does
// not dial: the pool connects on first use.
func OpenRedis(addr string, opts RedisOptions) (*Redis, error) {
	o, err := clientOptions(addr)
	if err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultRedisTimeout
	}
	if opts.Fallback == nil {
		opts.Fallback = func() {}
	}
	where := addr
	if u, err := url.Parse(addr); err == nil && u.Host != "" {
		where = u.Redacted()
	}
	return &Redis{
		client:    redis.NewClient(o),
		where:     where,
		log:       opts.Logger,
		timeout:   opts.Timeout,
		fallback:  opts.Fallback,
		writes:    make(chan struct{}, maxWrites),
		listeners: map[string]*listeners{},
	}, nil
}

// usable reports whether calls may go to Redis now; a skipped call counts
// as a fallback.
func (r *Redis) usable() bool {
	if r.down.Load() && time.Now().UnixNano() < r.downUntil.Load() {
		r.fallback()
		return false
	}
	return true
}

// failed records a call that did not get an answer.
func (r *Redis) failed(err error) {
	r.fallback()
	if r.failures.Add(1) < downAfter {
		return
	}
	r.downUntil.Store(time.Now().Add(downFor).UnixNano())
	if r.down.CompareAndSwap(false, true) {
		r.log.Warn("redis unreachable: the cache answers from and stores in each gateway's memory until it answers again",
			"redis", r.where, "err", err.Error())
	}
}

// succeeded records a call Redis answered.
func (r *Redis) succeeded() {
	if r.failures.Load() != 0 {
		r.failures.Store(0)
	}
	if r.down.Load() && r.down.CompareAndSwap(true, false) {
		r.log.Info("redis reachable again: the cache is shared again", "redis", r.where)
	}
}

func (r *Redis) call() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), r.timeout)
}

// Keys names the Redis keys of one resource of a route under a prefix.
type Keys struct {
	Prefix, Route string
	// Resource is the resource's key (ResourceKey with Route).
	Resource string
}

// names is the key of the resource's names: the prefix, then hashes of the
// route, the host and the target, so that a route's keys, or a target's
// under every host, can be matched by pattern.
func (k *Keys) names() string {
	rest := k.Resource[min(len(k.Route)+1, len(k.Resource)):]
	host, target, _ := strings.Cut(rest, "\x00")
	return namesKey(k.Prefix, k.Route, host, target)
}

func namesKey(prefix, route, host, target string) string {
	b := make([]byte, 0, len(prefix)+3*17)
	b = append(b, prefix...)
	b = appendHash(b, route)
	b = append(b, ':')
	b = appendHash(b, host)
	b = append(b, ':')
	return string(appendHash(b, target))
}

func variantKey(namesKey string, variant []byte) string {
	return string(appendHash(append([]byte(namesKey), ':'), variant))
}

// appendHash appends the 64-bit FNV-1a hash of b in hex.
func appendHash[B []byte | string](dst []byte, b B) []byte {
	h := uint64(14695981039346656037)
	for i := range len(b) {
		h ^= uint64(b[i])
		h *= 1099511628211
	}
	const hexDigits = "0123456789abcdef"
	for shift := 60; shift >= 0; shift -= 4 {
		dst = append(dst, hexDigits[(h>>uint(shift))&0xf])
	}
	return dst
}

// Get returns the fresh entry of a resource's variant. names and variant
// are the caller's idea of the resource's names and the request's variant
// under them; when Redis knows other names, variantFor makes the variant
// under those. It also returns the names the entry was stored with (to
// keep it in memory under them). A miss is (nil, nil, nil); an error is a
// call that failed, counted as a fallback.
func (r *Redis) Get(k *Keys, names []string, variant []byte, variantFor func([]string) []byte, now int64) (*Entry, []string, error) {
	if !r.usable() {
		return nil, nil, nil
	}
	ctx, cancel := r.call()
	defer cancel()
	nk := k.names()
	vals, err := r.client.MGet(ctx, nk, variantKey(nk, variant)).Result()
	if err != nil {
		r.failed(err)
		return nil, nil, err
	}
	r.succeeded()
	raw, _ := vals[0].(string)
	stored, ok := decodeNames([]byte(raw), k.Resource)
	if !ok {
		return nil, nil, nil
	}
	value, _ := vals[1].(string)
	if !slices.Equal(stored, names) {
		variant = variantFor(stored)
		value, err = r.client.Get(ctx, variantKey(nk, variant)).Result()
		switch {
		case errors.Is(err, redis.Nil):
			return nil, nil, nil
		case err != nil:
			r.failed(err)
			return nil, nil, err
		}
	}
	if value == "" {
		return nil, nil, nil
	}
	e, err := Decode([]byte(value))
	if err != nil || e.Resource != k.Resource || e.Variant != string(variant) || !e.Fresh(now) {
		return nil, nil, nil
	}
	return e, stored, nil
}

// storeScript writes an entry and its resource's names, giving the names
// the longest life of any variant written.
var storeScript = redis.NewScript(`
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local left = redis.call('PTTL', KEYS[2])
local want = tonumber(ARGV[2])
if left > want then want = left end
redis.call('SET', KEYS[2], ARGV[3], 'PX', want)
return 1
`)

// Put writes e, whose resource varies on names, to Redis in the
// background, to live until it expires (now and its expiry in Unix ns).
// When too many writes are already in flight, or Redis is out, it is not
// written; the caller keeps it in memory anyway.
func (r *Redis) Put(k *Keys, e *Entry, names []string, now int64) {
	ttl := (e.Expires - now) / int64(time.Millisecond)
	if ttl <= 0 || !r.usable() {
		return
	}
	select {
	case r.writes <- struct{}{}:
	default:
		r.fallback()
		return
	}
	nk := k.names()
	ek := variantKey(nk, []byte(e.Variant))
	value := e.Encode(make([]byte, 0, len(e.Body)+512))
	namesValue := encodeNames(e.Resource, names)
	go func() {
		defer func() { <-r.writes }()
		ctx, cancel := r.call()
		defer cancel()
		if err := storeScript.Run(ctx, r.client, []string{ek, nk}, value, ttl, namesValue).Err(); err != nil {
			r.failed(err)
			return
		}
		r.succeeded()
	}()
}

// purgeChannel is the channel purges of a prefix are announced on.
func purgeChannel(prefix string) string { return prefix + "purge" }

// Purge removes the entries in scope under prefix from Redis, announces
// the purge to every gateway listening on the prefix, and returns how many
// entries it removed.
func (r *Redis) Purge(prefix string, scope Scope) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pattern := globEscape(prefix)
	switch {
	case scope.Route == "":
		pattern += "*"
	case scope.Target == "":
		pattern = string(appendHash([]byte(pattern), scope.Route)) + ":*"
	case scope.Host == "":
		pattern = string(appendHash(append(appendHash([]byte(pattern), scope.Route), ":*:"...), scope.Target)) + "*"
	default:
		pattern = namesKey(pattern, scope.Route, strings.ToLower(scope.Host), scope.Target) + "*"
	}
	removed := 0
	batch := make([]string, 0, purgeBatch)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := r.client.Unlink(ctx, batch...).Err()
		batch = batch[:0]
		return err
	}
	it := r.client.Scan(ctx, 0, pattern, 1000).Iterator()
	for it.Next(ctx) {
		key := it.Val()
		if strings.Count(key[len(prefix):], ":") == 3 { // a variant, not a names key
			removed++
		}
		if batch = append(batch, key); len(batch) == purgeBatch {
			if err := flush(); err != nil {
				return removed, err
			}
		}
	}
	if err := it.Err(); err != nil {
		return removed, err
	}
	if err := flush(); err != nil {
		return removed, err
	}
	msg := scope.Route + "\x00" + scope.Host + "\x00" + scope.Target
	if err := r.client.Publish(ctx, purgeChannel(prefix), msg).Err(); err != nil {
		return removed, err
	}
	return removed, nil
}

// globEscape quotes the characters a SCAN pattern gives a meaning to.
func globEscape(s string) string {
	if !strings.ContainsAny(s, `*?[]\`) {
		return s
	}
	var b strings.Builder
	for _, c := range []byte(s) {
		switch c {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	}
	return b.String()
}

// listeners are the memories purged by the purges of one channel.
type listeners struct {
	mems map[*Memory]struct{}
}

// Listen makes the purges announced under prefix, by any gateway, purge
// m too, until the returned function is called.
func (r *Redis) Listen(prefix string, m *Memory) (stop func()) {
	ch := purgeChannel(prefix)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return func() {}
	}
	ls := r.listeners[ch]
	if ls == nil {
		ls = &listeners{mems: map[*Memory]struct{}{}}
		r.listeners[ch] = ls
		ctx, cancel := r.call()
		if r.pubsub == nil {
			// Subscribing fails while Redis is out; the channel is
			// remembered and subscribed again when the connection comes back.
			r.pubsub = r.client.Subscribe(ctx, ch)
			r.done = make(chan struct{})
			go r.receive(r.pubsub.Channel(), r.done)
		} else {
			r.pubsub.Subscribe(ctx, ch) //nolint:errcheck // see above
		}
		cancel()
	}
	ls.mems[m] = struct{}{}
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		delete(ls.mems, m)
		if len(ls.mems) == 0 && r.listeners[ch] == ls && !r.closed {
			delete(r.listeners, ch)
			ctx, cancel := r.call()
			r.pubsub.Unsubscribe(ctx, ch) //nolint:errcheck // a stale subscription only costs messages
			cancel()
		}
	}
}

// receive applies the purges announced on the channels listened to.
func (r *Redis) receive(msgs <-chan *redis.Message, done chan struct{}) {
	defer close(done)
	for msg := range msgs {
		parts := strings.SplitN(msg.Payload, "\x00", 3)
		if len(parts) != 3 {
			continue
		}
		scope := Scope{Route: parts[0], Host: parts[1], Target: parts[2]}
		var mems []*Memory
		r.mu.Lock()
		if ls := r.listeners[msg.Channel]; ls != nil {
			for m := range ls.mems {
				mems = append(mems, m)
			}
		}
		r.mu.Unlock()
		for _, m := range mems {
			m.Purge(scope)
		}
	}
}

// Subscribers returns how many connections listen to the purges of prefix
// (every gateway's store listens once): for tests and diagnostics.
func (r *Redis) Subscribers(prefix string) (int64, error) {
	ctx, cancel := r.call()
	defer cancel()
	ch := purgeChannel(prefix)
	n, err := r.client.PubSubNumSub(ctx, ch).Result()
	return n[ch], err
}

// Close stops listening and closes the connection pool.
func (r *Redis) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	ps, done := r.pubsub, r.done
	r.mu.Unlock()
	if ps != nil {
		ps.Close() //nolint:errcheck // closing anyway
		<-done
	}
	// Writes still in flight finish (or time out) before the pool closes.
	for range maxWrites {
		r.writes <- struct{}{}
	}
	return r.client.Close()
}
