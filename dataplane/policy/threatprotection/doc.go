// Package threatprotection is the threat-protection policy: it bans client
// addresses that keep presenting wrong credentials, and refuses JSON bodies
// shaped to hurt the upstream's parser (too deep, too many keys or items,
// huge strings) before they reach it.
//
// The policy runs in the Identify phase, before authentication, and does
// both jobs there in this order: a banned address is refused first (403
// "banned" with Retry-After), even with valid credentials and without its
// body being read; then a JSON body (application/json, application/*+json)
// is read whole, up to max_body_bytes, checked in one pass by jsonscan and
// forwarded from memory unchanged. Other bodies are not read and stream
// through as usual; requests without a body cost one header lookup.
//
// Failures are counted through policy.AuthFailureObserver: the chain calls
// AuthFailed when a request's credential was refused. They are counted per
// client address in a ban table kept in the policy State, so bans survive
// reloads. Routes whose ban settings are equal share one table: a global
// threat-protection bans an address on every route at once. The table is
// sharded (64 locks), stores only addresses that failed, drops records that
// are over when a shard needs room and caps what it remembers, and while
// no ban is in force a request checks it without taking a lock.
package threatprotection
