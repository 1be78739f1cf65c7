package quota

import (
	"testing"
	"time"
)

// SetClock makes the policy take the time from f until the test ends.
func SetClock(t testing.TB, f func() time.Time) {
	clock.Store(&f)
	t.Cleanup(func() { clock.Store(nil) })
}
