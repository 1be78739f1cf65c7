// Package cache is the cache policy: it answers GET (and HEAD) requests of
// a route from stored upstream responses, as a shared HTTP cache (RFC
// 9111), and marks every answer X-Cache: HIT or MISS.
//
// It runs in the Proxy phase, after authentication, limits and transforms,
// so a hit is still authorized, counted and rate limited like any request;
// only the upstream call is saved. A hit is the policy's own answer (a
// Reject with no code): the stored status, headers and body, plus Age.
// Entries are immutable and carry that answer ready-made, so a hit from
// memory copies no body and allocates nothing.
//
// A miss asks the proxy to read the upstream's body into memory when it
// announces at most max_body_bytes (Exchange.BufferResponse); the response
// phase (Respond) then decides whether the answer may be stored: a
// heuristically cacheable status, no no-store, no-cache or (unless
// cache_private) private, no Set-Cookie, no Vary: *, a freshness lifetime
// above zero (s-maxage, max-age, Expires, else the policy's ttl), and for
// a request with Authorization a response marked public, s-maxage or
// must-revalidate. Bodies streamed (larger, or without a length) are
// passed on untouched and not stored.
//
// Keys follow Vary: a resource (route, host, path, query) records the
// request headers its responses vary on (the response's Vary, the policy's
// vary and key_headers), and the values of those headers pick the variant.
//
// Concurrent misses of one key make one upstream call: the first plain GET
// leads, the others wait (at most lock_timeout) for its answer to be
// stored and answer from it; when it was not stored they go upstream
// themselves.
//
// Entries live in the route's memory, an LRU bounded by memory_bytes, and,
// when the configuration has Redis, in Redis too (package store), shared by
// every gateway using it; the memory is then a first level in front of it.
// A Redis that fails is counted and left out until it answers again; the
// cache keeps working from memory. The route's cache lives in the policy
// state, so a reload that keeps its settings keeps its entries.
//
// Purges (PurgeAll, PurgeRoute, Purge) reach every cache of the process:
// the admin API calls them in `tollgate run`. A purge of a Redis-backed
// cache removes the entries from Redis and announces itself on Redis, so
// every gateway sharing it drops its memory copies as well.
package cache
