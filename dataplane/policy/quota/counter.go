package quota

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/tollgate/tollgate/dataplane/policy/ratelimit/redisstore"
	"github.com/tollgate/tollgate/dataplane/policy/ratelimit/shardmap"
)

// redisTimeout bounds each Redis call; past it the request is counted on
// the gateway, as rate limits are.
const redisTimeout = 100 * time.Millisecond

// keyPrefix starts every Redis key the policy writes.
const keyPrefix = "tollgate:quota:"

// counters are the quota counts of one gateway: in Redis when conn is set
// and answering, else in local. They are shared by every route, so that a
// consumer has one count however many routes it calls.
type counters struct {
	conn  *redisstore.Conn // nil without redis
	local *shardmap.Map[localCount]
}

// localCount is a consumer's count in the period starting at start (unix
// seconds); a count of an earlier period is stale and starts again.
type localCount struct {
	mu    sync.Mutex
	start int64
	n     int64
}

func newCounters(conn *redisstore.Conn) *counters {
	return &counters{conn: conn, local: shardmap.New[localCount]()}
}

// add counts one request of consumer in the period [start, end) of kind p
// and returns the period's count so far, this request included.
func (c *counters) add(consumer string, p period, start, end time.Time) int64 {
	if c.conn != nil && c.conn.Up() {
		key := keyPrefix + p.String() + ":" + strconv.FormatInt(start.Unix(), 10) + ":" + consumer
		ctx, cancel := context.WithTimeout(context.Background(), redisTimeout)
		n, err := c.conn.IncrExpireAt(ctx, key, end)
		cancel()
		if err == nil {
			return n
		}
	}
	return c.addLocal(consumer, p, start.Unix())
}

func (c *counters) addLocal(consumer string, p period, start int64) int64 {
	var buf [96]byte
	key := append(append(append(buf[:0], p.String()...), ':'), consumer...)
	e := c.local.Get(key, nil)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.start != start {
		e.start, e.n = start, 0
	}
	e.n++
	return e.n
}
