// Package quota is the quota policy: each consumer may make as many
// requests as its plan's quota allows per calendar period (day, ISO week
// from Monday, month or year, in UTC); beyond that it gets 429
// "quota_exceeded" with Retry-After until the period ends. Every response
// of a limited consumer carries X-Quota-Limit, X-Quota-Remaining and
// X-Quota-Reset.
//
// The quota belongs to the consumer, not to a route: every route carrying
// the policy counts into the same counter. Consumers without a plan, with
// a plan that has no quota, and requests with no consumer at all are not
// limited, so the policy goes on routes with an authentication policy.
//
// A count is a counter per consumer and period, keyed by the period's
// start, so a new period starts at zero without any clean-up. Without
// redis the counters live on the gateway (a sharded map, package
// shardmap). With redis they live in Redis (INCR, and EXPIREAT at the end
// of the period), shared by every gateway and kept across restarts; the
// connection is the rate limiter's (package redisstore), so while Redis
// does not answer each gateway counts alone, which is logged once per
// outage, and Redis's count resumes when it answers again.
package quota
