// Package keyauth is the key-auth policy: a consumer is identified by an API
// key sent in a request header or a query parameter (both "apikey" unless
// configured otherwise).
//
// The keys of all consumers go into one index per configuration snapshot,
// shared by every route that uses the policy (policy.Shared). The index is
// keyed by the SHA-256 digest of each key, never by the key itself: a lookup
// hashes the presented key and looks the digest up, so how long the lookup
// takes depends on a digest the client cannot steer, not on how many leading
// bytes of a real key it guessed. The entry found is confirmed with a
// constant-time comparison of the digests as well. The lookup allocates
// nothing.
//
// Two consumers with the same key would make the key ambiguous: building the
// index fails, naming both consumers, and the configuration is refused.
//
// A request without a key is left to the route's other authentication
// policies (and ends as a plain 401 when none accepts it); a wrong key is
// refused with 401 "invalid_credentials" and a WWW-Authenticate challenge.
package keyauth
