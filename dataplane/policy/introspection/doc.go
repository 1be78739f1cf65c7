// Package introspection is the oauth2-introspection policy: it accepts
// opaque OAuth 2.0 access tokens (Authorization: Bearer) by asking the
// authorization server's introspection endpoint about them (RFC 7662).
//
// Design:
//
//   - The endpoint is called with a form POST (token, token_type_hint) and
//     the gateway's client credentials in HTTP basic authentication, on a
//     dedicated net/http client whose calls are bounded by the policy's
//     timeout.
//   - Answers are cached under the SHA-256 of the token (the token itself is
//     never kept), active ones until the token's exp or cache_ttl, whichever
//     comes first, inactive ones for negative_cache_ttl. The cache is bounded
//     and, when full, drops expired entries first, else the one expiring
//     soonest of a small random sample. Concurrent requests carrying the same
//     uncached token share one call to the endpoint.
//   - The cache and the HTTP client live in policy.State keyed by endpoint
//     URL and client_id, so every route asking the same endpoint as the same
//     client shares them, and they survive configuration reloads. Each route
//     still applies its own TTLs when reading.
//   - What the cache keeps does not depend on the snapshot: the consumer is
//     looked up in the current snapshot's directory on every request, so a
//     consumer added or changed by a reload takes effect at once.
//   - A failing endpoint (unreachable, timeout, 5xx, refused credentials,
//     unreadable answer) is answered 503 auth_unavailable, never
//     401 invalid_token: the gateway does not call a token invalid when it
//     could not check it. Failures are not cached.
//   - A token whose user is not a configured consumer is accepted, as Kong
//     does, as a consumer of its own named after the user, with no groups
//     and no plan; consumer_required refuses it instead.
package introspection
