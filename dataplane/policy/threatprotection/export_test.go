package threatprotection

import "time"

// SetClock makes the ban tables built from now on count time with now,
// until the returned function puts the real clock back.
func SetClock(now func() time.Time) (restore func()) {
	clock.Store(&now)
	return func() { clock.Store(nil) }
}
