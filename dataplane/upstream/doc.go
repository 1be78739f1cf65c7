// Package upstream decides where a proxied request goes and remembers how each
// target has been doing. It does not send requests: the proxy asks a Pool for a
// Target, marks it Start, sends, and reports the Outcome with Done.
//
// State that must outlive a configuration reload (health, passive failure
// counts, in-flight counters, circuit breakers, active checkers) lives in a
// Registry keyed by service name and target URL. Each config snapshot builds
// immutable Pools against it; a Pool holds a reference to every target state
// it uses, and the last Release of a target stops its checker and forgets it.
//
// Balancers live here rather than in a sub-package because each one reads the
// same per-target atomics (health, in-flight); the breaker and the probe loop
// are self-contained and have their own packages.
package upstream
