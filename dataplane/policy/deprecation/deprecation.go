// Package deprecation is the deprecation policy: it tells the clients of a
// route that it is deprecated, and when it will stop answering, with the
// headers the standards define, and may refuse it after that.
//
//   - Deprecation (RFC 9745) is a Structured Field Date, "@" and Unix
//     seconds: "Deprecation: @1688169599". RFC 9745 has no other form (the
//     "true" of its drafts is gone), so without deprecated_at the date is
//     the moment the gateway first ran the route with the policy, kept
//     across reloads (policy.State); set deprecated_at for a date that is
//     the same on every node and after restarts.
//   - Sunset (RFC 8594) is an HTTP-date: "Sunset: Wed, 30 Jun 2027
//     00:00:00 GMT". RFC 9745 section 4 forbids a sunset before the
//     deprecation: such settings are refused, and a default deprecation
//     date later than the sunset is brought back to it.
//   - Link lines (RFC 8288): `<link>; rel="deprecation"; type="text/html"`
//     (RFC 9745 section 3) and `<sunset_link>; rel="sunset";
//     type="text/html"` (RFC 8594 section 6). They are added to the
//     upstream's own Link lines (pagination links stay), not put in their
//     place.
//
// The headers are written in the response phase, so every answer of the
// route has them: the upstream's, a mock's, and every refusal of the
// gateway, even one made by a policy that ran before this one. The policy
// runs in the identify phase so that, with after_sunset: refuse, a retired
// route answers 410 before any credential is checked.
//
// Every header value is made at load time; a request costs a few header
// writes and, with after_sunset: refuse, one clock read.
package deprecation

import (
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/tollgate/tollgate/dataplane/policy"
)

// Name is the policy's name in configurations.
const Name = "deprecation"

func init() {
	policy.Register(Name, policy.Identify, build)
}

// Header names.
const (
	hDeprecation = "Deprecation"
	hSunset      = "Sunset"
	hLink        = "Link"
)

// clock is the time the policy reads; tests replace it.
var clock atomic.Pointer[func() time.Time]

func now() time.Time {
	if f := clock.Load(); f != nil {
		return (*f)()
	}
	return time.Now()
}

type deprecation struct {
	deprecation string   // the Deprecation value
	sunset      string   // the Sunset value, "" for none
	links       []string // Link lines
	sunsetAt    time.Time
	gone        *policy.Reject // nil unless after_sunset: refuse
}

func build(s *Settings, b *policy.Build) (any, error) {
	t, _ := s.compile() // Validate has refused bad settings
	since := t.deprecatedAt
	if since.IsZero() {
		since = firstRun(b)
		if !t.sunset.IsZero() && since.After(t.sunset) {
			since = t.sunset
		}
	}
	d := &deprecation{
		deprecation: "@" + strconv.FormatInt(since.Unix(), 10),
		sunsetAt:    t.sunset,
	}
	if !t.sunset.IsZero() {
		d.sunset = t.sunset.UTC().Format(http.TimeFormat)
		if t.refuse {
			d.gone = &policy.Reject{Status: http.StatusGone, Code: "sunset",
				Message: "this API was retired on " + d.sunset}
		}
	}
	if s.Link != "" {
		d.links = append(d.links, "<"+s.Link+`>; rel="deprecation"; type="text/html"`)
	}
	if s.SunsetLink != "" {
		d.links = append(d.links, "<"+s.SunsetLink+`>; rel="sunset"; type="text/html"`)
	}
	return d, nil
}

// firstRun is when the gateway first built the policy for the route, kept
// in the state that outlives reloads.
func firstRun(b *policy.Build) time.Time {
	if b.State == nil {
		return now().Truncate(time.Second)
	}
	return *b.State.Get(Name+"/first-run/"+b.Route, func() any {
		t := now().Truncate(time.Second)
		return &t
	}).(*time.Time)
}

// Handle refuses the route once its sunset has passed, when asked to.
func (d *deprecation) Handle(x *policy.Exchange) *policy.Reject {
	if d.gone != nil && !now().Before(d.sunsetAt) {
		return d.gone
	}
	return nil
}

// Respond writes the headers on the answer, whoever made it.
func (d *deprecation) Respond(x *policy.Exchange) {
	x.SetResponseHeader(hDeprecation, d.deprecation)
	if d.sunset != "" {
		x.SetResponseHeader(hSunset, d.sunset)
	}
	for _, l := range d.links {
		if !hasLine(x.ResponseHeaderValues(hLink), l) {
			x.AddResponseHeader(hLink, l)
		}
	}
}

// hasLine reports whether the upstream already sent the very same line.
func hasLine(lines [][]byte, l string) bool {
	for _, v := range lines {
		if string(v) == l {
			return true
		}
	}
	return false
}
