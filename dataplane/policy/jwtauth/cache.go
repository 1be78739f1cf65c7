package jwtauth

import (
	"crypto/sha256"
	"sync"

	"github.com/tollgate/tollgate/dataplane/policy"
)

// verified is the outcome of a token that passed every check: what the
// policy does for it again, without parsing or verifying it again.
type verified struct {
	consumer *policy.Consumer
	headers  []headerValue
	until    int64 // unix nanoseconds: min(exp + leeway, verification + 1 min)
}

type headerValue struct{ name, value string }

// tokenCache remembers verified tokens, keyed by the SHA-256 of the token
// (the token itself, a bearer secret, is not kept). Clients send the same
// token for many requests, and checking an RS256 or ES256 signature costs
// tens of microseconds while a lookup costs well under one. An entry lives
// at most a minute, so a key withdrawn from the JWKS stops being honoured
// soon after; it lives in one policy instance, so a reload forgets it.
type tokenCache struct {
	mu      sync.RWMutex
	entries map[[sha256.Size]byte]*verified
	max     int
}

func newTokenCache(size int) *tokenCache {
	if size <= 0 {
		return nil
	}
	return &tokenCache{entries: make(map[[sha256.Size]byte]*verified, min(size, 1024)), max: size}
}

func (c *tokenCache) get(sum *[sha256.Size]byte, now int64) *verified {
	c.mu.RLock()
	v := c.entries[*sum]
	c.mu.RUnlock()
	if v == nil || now >= v.until {
		return nil
	}
	return v
}

func (c *tokenCache) put(sum *[sha256.Size]byte, v *verified, now int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		c.evict(now)
	}
	c.entries[*sum] = v
}

// evict makes room: expired entries go, and if that is not enough, an
// eighth of the others (map order is random enough to pick them).
func (c *tokenCache) evict(now int64) {
	for k, v := range c.entries {
		if now >= v.until {
			delete(c.entries, k)
		}
	}
	drop := c.max/8 + 1
	for k := range c.entries {
		if len(c.entries) <= c.max-drop {
			break
		}
		delete(c.entries, k)
	}
}
