package redisstore

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// IncrExpireAt adds one to the counter at key and has it expire at at, in
// one round trip (MULTI INCR EXPIREAT EXEC), and returns the new count: a
// counter over a fixed period (a quota) that Redis drops once the period is
// over. The outcome is recorded as the limiters' calls are, so a Redis
// that stops answering is marked down, logged once, and Up says so.
func (c *Conn) IncrExpireAt(ctx context.Context, key string, at time.Time) (int64, error) {
	var incr *redis.IntCmd
	_, err := c.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		incr = p.Incr(ctx, key)
		p.ExpireAt(ctx, key, at)
		return nil
	})
	if err != nil {
		c.failed(err)
		return 0, err
	}
	c.succeeded()
	return incr.Val(), nil
}
