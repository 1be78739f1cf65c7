package deprecation

import "time"

// SetClock makes the policy read the time from now, until the returned
// function puts the real clock back.
func SetClock(now func() time.Time) (restore func()) {
	clock.Store(&now)
	return func() { clock.Store(nil) }
}
