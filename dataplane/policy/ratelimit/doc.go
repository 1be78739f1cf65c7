// Package ratelimit is the rate-limit policy: at most limit requests per
// window for each key (the consumer, the client address, the route or a
// header's value), answering 429 "rate_limited" with Retry-After beyond it,
// and telling every client where it stands with RateLimit-Limit,
// RateLimit-Remaining and RateLimit-Reset on every response.
//
// The algorithm is GCRA (package gcra): one timestamp per key, no burst at
// window edges. Where the decision is made depends on the configuration:
//
//   - without redis, on the gateway (package local): a sharded map of keys
//     updated with compare-and-swap, no allocation for a known key;
//   - with redis and sync: strict, in Redis, one script call per request
//     (redisstore.Strict), exact across gateways;
//   - with redis and sync: batched, on the gateway against a view of the
//     cluster's state reconciled every sync_interval (redisstore.Batched),
//     with a documented bound on the excess.
//
// When Redis does not answer, limits fall back to each gateway alone; the
// log says so once per outage and tollgate_ratelimit_redis_fallback is 1
// until Redis answers again.
//
// The limiter of a route lives in the policy state keyed by the route and
// every setting that shapes it, so a reload that keeps them keeps the
// counters; one Redis connection pool is shared per URL the same way.
package ratelimit
