// Package redisopt reads the Redis addresses of a configuration into client
// options for the gateway's uses of Redis (shared rate limits, caches).
package redisopt

import (
	"errors"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Options returns the client options for addr: a redis:// or rediss:// URL,
// or a bare host:port. Calls carry their own deadline and are not retried,
// since the gateway's uses of Redis prefer a local answer now to a remote
// one late.
func Options(addr string) (*redis.Options, error) {
	var opts *redis.Options
	if strings.Contains(addr, "://") {
		o, err := redis.ParseURL(addr)
		if err != nil {
			return nil, err
		}
		opts = o
	} else {
		if addr == "" {
			return nil, errors.New("empty redis address")
		}
		opts = &redis.Options{Addr: addr}
	}
	opts.ContextTimeoutEnabled = true
	opts.MaxRetries = -1
	opts.DialTimeout = 2 * time.Second
	opts.DisableIdentity = true
	opts.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	return opts, nil
}
