package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"math"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollgate/tollgate/dataplane/policy/ratelimit/gcra"
	"github.com/tollgate/tollgate/dataplane/policy/ratelimit/shardmap"
)

// Batched decides every request on the gateway, against a view of its key,
// and reconciles the views with Redis every sync interval.
//
// A key's view is the cluster's GCRA state as of this gateway's last sync
// (the TAT Redis returned) plus the admissions this gateway made since. At
// each tick the gateway pushes, in one script call for all the keys it
// admitted requests of, how many it admitted; Redis adds them to the key's
// TAT (beyond the capacity if the gateways together admitted too many, so
// the excess is paid back before anything more is admitted) and returns the
// new TAT, which becomes the view, and the count of admissions ever pushed,
// which tells whether other gateways pushed since. A view never counts an
// admission that did not happen; what it misses is what the other gateways
// admitted since their last push.
//
// To keep that bounded when a key is busy on several gateways at once, a
// gateway spends at most a quota of the key between two of its syncs:
//
//   - a key it did not sync in the last interval (new here, or idle here, so
//     its view may be stale): q = ⌈(free + r) / N⌉, where free is what the
//     view admits, r = ⌈sync interval / emission interval⌉ one interval's
//     refill and N the gateways alive (each heartbeats into a Redis sorted
//     set);
//   - after a sync: the same share of what is free once the others' unseen
//     admissions are assumed as large as this gateway's own last quota
//     (free − (N−1)·q_prev), at least 1;
//   - unlimited (the view alone decides) once two syncs in a row showed no
//     other gateway pushing the key: a key busy on one gateway only is then
//     limited exactly, as in strict mode.
//
// The bound: another gateway's admissions that a view misses were made in
// at most two of its quota periods (its current one, and the previous one
// when its push landed after this gateway's last read), at most
// q_max = ⌈(limit + r)/N⌉ each; at most one gateway at a time runs
// unlimited on a key. So over any span of length d starting with the
// allowance whole, the cluster admits at most
// limit + d/T + 2 (N−1) ⌈(limit + r)/N⌉ requests (T the emission interval).
// A saturated key (nothing free at the syncs) admits at most 2 (N−1) ⌈r/N⌉
// beyond its rate at any moment, repaid in the following intervals, so the
// long-run rate stays limit per window. The price of the quotas is on the
// other side: a burst bigger than a gateway's share on a key new to it waits
// for the next syncs (429 with Retry-After: 1), so batched mode may refuse a
// request the exact limiter would have admitted, during about two sync
// intervals after a key starts being used on a gateway.
type Batched struct {
	conn    *Conn
	rate    gcra.Rate
	prefix  string
	every   time.Duration
	timeout time.Duration
	refill  int64
	args    []any // the sync script's leading arguments

	views *shardmap.Map[view]
	now   func() time.Time
	epoch time.Time

	id       string // this gateway in the heartbeat set
	gateways atomic.Int64
	tick     atomic.Int64
	// syncFailing is set once a failed sync was logged, until one succeeds.
	syncFailing atomic.Bool

	dirtyMu sync.Mutex
	dirty   []*view // views with admissions not pushed yet
	spare   []*view // the previous dirty list, reused

	sweepTicks, heartbeatTicks int64
	liveFor                    time.Duration

	// ctx ends with Close, cutting a call in flight short.
	ctx       context.Context
	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
}

// view is a key's state on this gateway.
type view struct {
	mu  sync.Mutex
	key string
	// tat is the cluster's TAT as of the last sync plus this gateway's
	// admissions since, in nanoseconds of the limiter's clock.
	tat     int64
	pending int64 // admissions not pushed yet
	spent   int64 // admissions since quota was set
	quota   int64 // admissions allowed until the next sync; unlimited when alone
	// synced is the tick of the last sync, pushed the key's pushed count
	// Redis returned then.
	synced, pushed int64
	// aloneSyncs counts the syncs in a row that showed no other gateway
	// pushing the key.
	aloneSyncs int
	listed     bool // in the dirty list
	dead       bool // swept: look the key up again
}

const (
	unlimited = math.MaxInt64
	never     = -1
)

func initView(key string, v *view) {
	v.key, v.quota, v.synced = key, unlimited, never
}

// BatchedOptions tune a Batched limiter.
type BatchedOptions struct {
	// Every is the sync interval (50ms when 0).
	Every time.Duration
	// Timeout bounds each Redis call (100ms when 0).
	Timeout time.Duration
	// Now is the clock, time.Now when nil.
	Now func() time.Time
}

// NewBatched returns a batched limiter keeping its keys under prefix in
// Redis, syncing in the background until Close.
func NewBatched(conn *Conn, rate gcra.Rate, prefix string, opts BatchedOptions) *Batched {
	b := newBatched(conn, rate, prefix, opts)
	go b.loop()
	return b
}

func newBatched(conn *Conn, rate gcra.Rate, prefix string, opts BatchedOptions) *Batched {
	if opts.Every <= 0 {
		opts.Every = 50 * time.Millisecond
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 100 * time.Millisecond
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	b := &Batched{
		conn: conn, rate: rate, prefix: prefix, every: opts.Every, timeout: opts.Timeout,
		refill: (int64(opts.Every) + rate.Interval - 1) / rate.Interval,
		args:   []any{rate.Interval / int64(time.Microsecond), rate.Capacity / int64(time.Microsecond)},
		views:  shardmap.New[view](),
		now:    opts.Now,
		id:     gatewayID(),
		done:   make(chan struct{}),
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.epoch = b.now()
	b.gateways.Store(1)
	ticks := func(d time.Duration) int64 { return max(1, int64(d/b.every)) }
	b.heartbeatTicks = ticks(time.Second)
	b.liveFor = 3 * max(time.Second, b.every)
	b.sweepTicks = ticks(min(max(time.Duration(rate.Capacity), time.Second), time.Minute))
	conn.metrics.addBatched(b)
	return b
}

// gatewayID names this limiter instance in the heartbeat set: the process
// and a random part, so two gateways in one process count as two.
func gatewayID() string {
	var r [6]byte
	rand.Read(r[:]) //nolint:errcheck // crypto/rand.Read does not fail
	host, _ := os.Hostname()
	return host + "/" + strconv.Itoa(os.Getpid()) + "/" + hex.EncodeToString(r[:])
}

func (b *Batched) clock() int64 { return int64(b.now().Sub(b.epoch)) }

// Allow decides on one request of key, without a network call.
func (b *Batched) Allow(key []byte) gcra.Decision {
	alone := !b.conn.Up()
	if alone {
		b.conn.FallbackDecision()
	}
	now := b.clock()
	for {
		v := b.views.Get(key, initView)
		v.mu.Lock()
		if v.dead {
			v.mu.Unlock()
			continue
		}
		d, list := b.decide(v, now, alone)
		v.mu.Unlock()
		if list {
			b.dirtyMu.Lock()
			b.dirty = append(b.dirty, v)
			b.dirtyMu.Unlock()
		}
		return d
	}
}

// decide decides on a request at now against v (locked). alone is set
// while Redis is down: the view then limits on its own, without shares.
// list reports that v must join the dirty list.
func (b *Batched) decide(v *view, now int64, alone bool) (d gcra.Decision, list bool) {
	if !alone && v.quota == unlimited && v.synced != b.tick.Load() {
		// Not synced in this interval: others may be using the key.
		v.quota, v.spent, v.aloneSyncs = b.share(b.rate.Free(v.tat, now)), 0, 0
	}
	next, d := b.rate.Admit(v.tat, now)
	if !d.Allowed {
		return d, false
	}
	if !alone {
		left := v.quota - v.spent
		if left <= 0 {
			// The view would admit it, but this gateway spent its share:
			// the next sync tells how much the others left.
			return gcra.Decision{Reset: b.every, RetryAfter: b.every}, false
		}
		d.Remaining = min(d.Remaining, left-1)
	}
	v.tat = next
	v.pending++
	v.spent++
	if v.listed {
		return d, false
	}
	v.listed = true
	return d, true
}

// share is how many admissions a gateway may make on a key with free
// admissions left until its next sync, when others may be admitting too.
func (b *Batched) share(free int64) int64 {
	n := max(b.gateways.Load(), 1)
	return max(1, (max(free, 0)+b.refill+n-1)/n)
}

func (b *Batched) loop() {
	defer close(b.done)
	b.heartbeat()
	t := time.NewTicker(b.every)
	defer t.Stop()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-t.C:
		}
		tick := b.tick.Add(1)
		if tick%b.heartbeatTicks == 0 {
			b.heartbeat()
		}
		b.sync(tick)
		if tick%b.sweepTicks == 0 {
			b.sweep()
		}
	}
}

// maxKeysPerCall bounds one script call, so that Redis is never busy with
// one gateway's sync for long.
const maxKeysPerCall = 256

// sync pushes the admissions made since the last tick and takes the
// cluster's state back into the views.
func (b *Batched) sync(tick int64) {
	b.dirtyMu.Lock()
	list := b.dirty
	b.dirty, b.spare = b.spare[:0], nil
	b.dirtyMu.Unlock()
	defer func() {
		clear(list)
		b.dirtyMu.Lock()
		b.spare = list[:0]
		b.dirtyMu.Unlock()
	}()
	if len(list) == 0 {
		return
	}
	counts := make([]int64, len(list))
	for i, v := range list {
		v.mu.Lock()
		counts[i], v.pending, v.listed = v.pending, 0, false
		v.mu.Unlock()
	}
	if !b.conn.Up() {
		// Admissions made while Redis was down were limited locally and
		// are not carried over: they would only hold the cluster back.
		return
	}
	for start := 0; start < len(list); start += maxKeysPerCall {
		end := min(start+maxKeysPerCall, len(list))
		if !b.push(tick, list[start:end], counts[start:end]) {
			b.requeue(list[start:], counts[start:])
			return
		}
	}
}

func (b *Batched) push(tick int64, views []*view, counts []int64) bool {
	keys := make([]string, len(views))
	args := make([]any, 0, len(b.args)+len(views))
	args = append(args, b.args...)
	for i, v := range views {
		keys[i] = b.prefix + "k:" + v.key
		args = append(args, counts[i])
	}
	ctx, cancel := context.WithTimeout(b.ctx, b.timeout)
	res, err := syncScript.Run(ctx, b.conn.client, keys, args...).Int64Slice()
	cancel()
	if err == nil && len(res) != 2*len(views) {
		err = errShortReply
	}
	if err != nil {
		b.conn.failed(err)
		if (isServerError(err) || err == errShortReply) && b.syncFailing.CompareAndSwap(false, true) {
			b.conn.log.Error("rate limit sync failed in redis; retrying every interval", "redis", b.conn.where, "err", err.Error())
		}
		return false
	}
	b.conn.succeeded()
	b.syncFailing.Store(false)
	now := b.clock()
	for i, v := range views {
		b.apply(v, tick, now, counts[i], res[2*i], res[2*i+1])
	}
	return true
}

// requeue puts back the admissions of a failed push, to go with the next
// one: counted twice if the failed call did reach Redis, which errs on the
// safe side. Once Redis is down they are dropped with the rest.
func (b *Batched) requeue(views []*view, counts []int64) {
	for i, v := range views {
		v.mu.Lock()
		v.pending += counts[i]
		list := !v.listed
		v.listed = true
		v.mu.Unlock()
		if list {
			b.dirtyMu.Lock()
			b.dirty = append(b.dirty, v)
			b.dirtyMu.Unlock()
		}
	}
}

type replyError string

func (e replyError) Error() string { return string(e) }

const errShortReply = replyError("unexpected reply from the sync script")

// apply takes a key's cluster state back into its view: backlog (µs) is
// the key's TAT minus Redis's now after this gateway pushed n admissions,
// pushed the count of admissions ever pushed for the key.
func (b *Batched) apply(v *view, tick, now, n, backlog, pushed int64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	others := pushed - v.pushed - n
	v.pushed, v.synced = pushed, tick
	// Admissions made while the call was out are this gateway's own.
	v.tat = now + backlog*int64(time.Microsecond) + v.pending*b.rate.Interval
	v.spent = 0
	if others == 0 {
		v.aloneSyncs++
	} else {
		v.aloneSyncs = 0
	}
	if v.aloneSyncs >= 2 {
		v.quota = unlimited
		return
	}
	// The others may each have admitted, unseen yet, as much as this
	// gateway could: its quota of the period that just ended.
	free := b.rate.Free(v.tat, now)
	unseen := v.quota
	if unseen == unlimited {
		unseen = b.share(free)
	}
	v.quota = b.share(free - (max(b.gateways.Load(), 1)-1)*unseen)
}

// heartbeat records this gateway as alive and learns how many are.
func (b *Batched) heartbeat() {
	if !b.conn.Up() {
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, b.timeout)
	n, err := heartbeatScript.Run(ctx, b.conn.client, []string{b.prefix + "gateways"}, b.id, b.liveFor.Microseconds()).Int64()
	cancel()
	if err != nil {
		b.conn.failed(err)
		return
	}
	b.conn.succeeded()
	b.gateways.Store(max(n, 1))
}

// sweep drops the views that carry nothing: allowance whole, nothing to
// push, not synced in this interval.
func (b *Batched) sweep() {
	now, tick := b.clock(), b.tick.Load()
	b.views.Sweep(func(v *view) bool {
		v.mu.Lock()
		defer v.mu.Unlock()
		if v.tat > now || v.listed || v.synced == tick {
			return false
		}
		v.dead = true
		return true
	})
}

// Gateways returns the gateways this one last saw alive.
func (b *Batched) Gateways() int64 { return b.gateways.Load() }

// Close stops syncing and leaves the heartbeat set, so the others' shares
// grow at once.
func (b *Batched) Close() error {
	b.closeOnce.Do(func() {
		b.cancel()
		<-b.done
		b.conn.metrics.removeBatched(b)
		if b.conn.Up() && !b.conn.closed.Load() {
			ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
			b.conn.client.ZRem(ctx, b.prefix+"gateways", b.id) //nolint:errcheck // best effort: the entry expires anyway
			cancel()
		}
	})
	return nil
}
