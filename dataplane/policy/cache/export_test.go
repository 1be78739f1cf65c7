package cache

import "time"

// SetClock makes the caches built from now on go by now, until the
// returned function restores the real clock.
func SetClock(now func() time.Time) (restore func()) {
	old := clock
	clock = now
	return func() { clock = old }
}

// Waiting returns how many requests of a route wait for a fetch by another
// request (concurrent misses).
func Waiting(route string) int64 {
	caches.Lock()
	defer caches.Unlock()
	n := int64(0)
	for c := range caches.set {
		if c.route == route {
			n += c.flights.waiting.Load()
		}
	}
	return n
}
