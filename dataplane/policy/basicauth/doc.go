// Package basicauth is the basic-auth policy: a consumer is identified by a
// username and password sent as HTTP Basic credentials (RFC 7617).
//
// Passwords are only ever held as password hashes. A password written in
// the configuration in the clear is hashed with bcrypt when the snapshot is
// compiled; one written as a bcrypt hash ("$2a$", "$2b$", "$2y$") or as an
// argon2id PHC string ("$argon2id$v=19$m=...,t=...,p=...$salt$hash") is
// used as it is. Hashing the clear ones costs tens of milliseconds each, so
// the hashes are kept in the policy state and reused by later snapshots
// while the username and password stay the same.
//
// Checking a password against its hash is slow on purpose. So that a client
// logging in again and again does not pay for it every time, successful
// checks are remembered per snapshot, keyed by the SHA-256 of the decoded
// "user:password": a repeated valid login costs one SHA-256. The memory is
// bounded (CacheSize entries, forgotten all at once when full) and is
// dropped with the snapshot, so a changed or removed password stops working
// at the next reload. Failed checks are never remembered.
//
// An unknown username is checked against a dummy hash made with the same
// algorithm and cost as most configured passwords, so that it takes as long
// to refuse as a wrong password and timing does not tell which usernames
// exist. Slow checks run at most GOMAXPROCS at a time, which bounds the
// memory argon2id hashes take while a flood of wrong passwords comes in.
//
// The Authorization header is parsed strictly: the scheme "Basic" (in any
// case), one space, standard base64 with padding, and a decoded "user:pass"
// split at the first colon, in valid UTF-8 without control characters.
// Anything else after "Basic" is refused as malformed; another scheme
// ("Bearer ...") is left to the route's other authentication policies.
package basicauth
