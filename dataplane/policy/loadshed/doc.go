// Package loadshed is the load-shed policy: at most max_concurrent requests
// of a route in flight to its upstream at once, a bounded queue for the
// next ones, and 503 "overloaded" with Retry-After for those that find the
// queue full or wait longer than queue_timeout. It protects an upstream
// from more work than it can do, and the gateway from piling up requests
// that will time out anyway.
//
// It runs in the Proxy phase, the last before the upstream call, so only
// requests that passed every other policy take a slot. A request holds its
// slot until the engine tells the policy the exchange is over (Finish),
// after the last byte of the response: a streamed body, an upstream error
// and a client gone away all give the slot back.
//
// Consumers on paid plans (a plan whose price has an amount above zero)
// are shed last: they wait ahead of every unpaid request, and when the
// queue is full a paid arrival takes the place of the unpaid request that
// queued last, which is refused instead.
//
// In adaptive mode the limit moves between min_concurrent and
// max_concurrent with the upstream's latency (see aimd): down by a tenth
// when the 90th percentile of the last adjust_interval's requests is above
// target_latency, up by one when it is not and the route was busy. The
// latency is measured from the slot's taking to the end of the exchange.
//
// The fast path, a slot free and nobody waiting, is one compare-and-swap
// and a sharded map entry (which exchange holds a slot) without allocation;
// the queue's mutex is only taken when the route is full. The limiter lives
// in the policy state keyed by the route and its settings, so a reload that
// keeps them keeps the slots taken and the adaptive limit; requests that
// started before a reload give their slot back to the limiter they took it
// from, exactly once.
package loadshed
