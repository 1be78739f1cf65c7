package quota

import "time"

// period is a kind of calendar period, in UTC.
type period uint8

const (
	day period = iota
	week
	month
	year
)

var periodNames = [...]string{"day", "week", "month", "year"}

// parsePeriod reads a plan's quota period (validated with the plans).
func parsePeriod(s string) (period, bool) {
	for i, name := range periodNames {
		if name == s {
			return period(i), true
		}
	}
	return 0, false
}

func (p period) String() string { return periodNames[p] }

// bounds returns the start and end of the period t falls in. Weeks are ISO
// weeks, starting on Monday.
func (p period) bounds(t time.Time) (start, end time.Time) {
	t = t.UTC()
	y, m, d := t.Date()
	switch p {
	case week:
		monday := d - (int(t.Weekday())+6)%7
		start = time.Date(y, m, monday, 0, 0, 0, 0, time.UTC)
		return start, start.AddDate(0, 0, 7)
	case month:
		start = time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)
		return start, start.AddDate(0, 1, 0)
	case year:
		start = time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC)
		return start, start.AddDate(1, 0, 0)
	}
	start = time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	return start, start.AddDate(0, 0, 1)
}
