package introspection

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// tokenKey is the SHA-256 of a token: what the cache keeps instead of it.
type tokenKey = [32]byte

// endpointState is what the routes asking one endpoint as one client share,
// across reloads: the HTTP client, the cache and the calls in flight.
type endpointState struct {
	transport *http.Transport
	client    *http.Client
	cache     *cache

	mu      sync.Mutex
	flights map[tokenKey]*flight

	lastLog atomic.Int64 // unix nanoseconds of the last failure logged
}

// flight is one call to the endpoint, awaited by every request for its token.
type flight struct {
	done chan struct{}
	res  *result
	err  error
}

func newEndpointState(size int) *endpointState {
	tr := newTransport()
	return &endpointState{
		transport: tr,
		// Redirects are not followed: a redirected POST loses its body.
		client: &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}},
		cache:   newCache(size),
		flights: map[tokenKey]*flight{},
	}
}

// Close implements io.Closer: State closes the entry once no route uses it.
func (e *endpointState) Close() error {
	e.transport.CloseIdleConnections()
	return nil
}

// resolve returns the answer about token, from the cache when p finds it
// fresh, else from the endpoint, with one call for all concurrent requests.
func (e *endpointState) resolve(p *instance, key tokenKey, token []byte, now time.Time) (*result, error) {
	if r := e.cache.get(key); r != nil && p.fresh(r, now) {
		return r, nil
	}
	e.mu.Lock()
	if f, ok := e.flights[key]; ok {
		e.mu.Unlock()
		<-f.done
		return f.res, f.err
	}
	// The call that just ended stored its answer before leaving the flight
	// map: look again now that no flight can end unseen.
	if r := e.cache.get(key); r != nil && p.fresh(r, now) {
		e.mu.Unlock()
		return r, nil
	}
	f := &flight{done: make(chan struct{})}
	e.flights[key] = f
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.flights, key)
		e.mu.Unlock()
		close(f.done)
	}()
	f.res, f.err = p.introspect(string(token))
	if f.err == nil && f.res.expires.After(f.res.fetched) {
		e.cache.put(key, f.res, f.res.fetched)
	}
	return f.res, f.err
}

// cacheShards spreads the cache over locks; a power of two.
const cacheShards = 32

// cache maps token hashes to answers, bounded in size.
type cache struct {
	perShard int
	shards   [cacheShards]cacheShard
}

type cacheShard struct {
	mu sync.RWMutex
	m  map[tokenKey]*result
}

func newCache(size int) *cache {
	c := &cache{perShard: max(1, (size+cacheShards-1)/cacheShards)}
	for i := range c.shards {
		c.shards[i].m = make(map[tokenKey]*result)
	}
	return c
}

func (c *cache) shard(k tokenKey) *cacheShard { return &c.shards[k[0]%cacheShards] }

func (c *cache) get(k tokenKey) *result {
	s := c.shard(k)
	s.mu.RLock()
	r := s.m[k]
	s.mu.RUnlock()
	return r
}

func (c *cache) put(k tokenKey, r *result, now time.Time) {
	s := c.shard(k)
	s.mu.Lock()
	if _, ok := s.m[k]; !ok && len(s.m) >= c.perShard {
		s.evict(now)
	}
	s.m[k] = r
	s.mu.Unlock()
}

// evictSample is how many entries a full shard looks at to make room.
const evictSample = 16

// evict makes room for one entry: it drops the expired entries of a random
// sample (Go's map order), or else the one of the sample expiring soonest.
func (s *cacheShard) evict(now time.Time) {
	var (
		victim        tokenKey
		soonest       time.Time
		have, dropped bool
		seen          int
	)
	for k, r := range s.m {
		if !now.Before(r.expires) {
			delete(s.m, k)
			dropped = true
		} else if !have || r.expires.Before(soonest) {
			victim, soonest, have = k, r.expires, true
		}
		if seen++; seen == evictSample {
			break
		}
	}
	if !dropped && have {
		delete(s.m, victim)
	}
}
