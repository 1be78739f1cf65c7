package httpcache_test

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/tollgate/tollgate/dataplane/policy/cache/httpcache"
	"github.com/tollgate/tollgate/internal/testutil"
)

func lines(ls ...string) [][]byte {
	out := make([][]byte, len(ls))
	for i, l := range ls {
		out[i] = []byte(l)
	}
	return out
}

func TestParseRequest(t *testing.T) {
	for _, tc := range []struct {
		lines  [][]byte
		pragma string
		want   httpcache.RequestDirectives
	}{
		{nil, "", httpcache.RequestDirectives{MaxAge: -1}},
		{nil, "no-cache", httpcache.RequestDirectives{NoCache: true, MaxAge: -1}},
		{lines("max-age=5"), "no-cache", httpcache.RequestDirectives{MaxAge: 5}}, // Pragma only without Cache-Control
		{lines("No-Store, max-age=\"30\""), "", httpcache.RequestDirectives{NoStore: true, MaxAge: 30}},
		{lines("no-cache", "only-if-cached"), "", httpcache.RequestDirectives{NoCache: true, OnlyIfCached: true, MaxAge: -1}},
		{lines("max-age=abc"), "", httpcache.RequestDirectives{MaxAge: 0}},
		{lines("max-age=99999999999999999999"), "", httpcache.RequestDirectives{MaxAge: 1 << 31}},
		{lines(" , ,foo=\"a,b\", max-age=1"), "", httpcache.RequestDirectives{MaxAge: 1}},
	} {
		if got := httpcache.ParseRequest(tc.lines, []byte(tc.pragma)); got != tc.want {
			t.Errorf("ParseRequest(%q, %q) = %+v, want %+v", tc.lines, tc.pragma, got, tc.want)
		}
	}
}

func TestParseResponse(t *testing.T) {
	d := httpcache.ParseResponse(lines(`public, max-age=60`, `s-maxage=120, private="Set-Cookie", no-cache="X"`))
	want := httpcache.ResponseDirectives{Public: true, Private: true, NoCache: true, MaxAge: 60, SMaxAge: 120}
	if d != want {
		t.Errorf("got %+v, want %+v", d, want)
	}
	if d := httpcache.ParseResponse(lines("max-age=-1")); d.MaxAge != 0 {
		t.Errorf("an unreadable max-age must mean stale: %+v", d)
	}
	for _, tc := range []struct {
		cc   string
		want bool
	}{{"public", true}, {"s-maxage=1", true}, {"must-revalidate", true}, {"max-age=60", false}} {
		if got := httpcache.ParseResponse(lines(tc.cc)).SharedWithAuthorization(); got != tc.want {
			t.Errorf("%s: SharedWithAuthorization = %v", tc.cc, got)
		}
	}
}

func TestLifetime(t *testing.T) {
	now := testutil.NewClock().Now()
	date := now.UTC().Format(http.TimeFormat)
	in := func(d time.Duration) string { return now.Add(d).UTC().Format(http.TimeFormat) }
	ttl := 7 * time.Second
	for _, tc := range []struct {
		name          string
		cc            string
		expires, date string
		want          time.Duration
		explicit      bool
	}{
		{"ttl", "", "", "", ttl, false},
		{"s-maxage first", "max-age=5, s-maxage=9", in(time.Hour), date, 9 * time.Second, true},
		{"then max-age", "max-age=5", in(time.Hour), date, 5 * time.Second, true},
		{"then Expires - Date", "", in(time.Hour), in(-time.Minute), time.Hour + time.Minute, true},
		{"Expires - now without Date", "", in(time.Hour), "", time.Hour, true},
		{"bad Expires", "", "0", date, 0, true},
		{"past Expires", "", in(-time.Hour), date, 0, true},
		{"far Expires", "", "Fri, 31 Dec 9999 23:59:59 GMT", date, (1 << 31) * time.Second, true},
	} {
		d := httpcache.ParseResponse(lines(tc.cc))
		got, explicit := httpcache.Lifetime(d, []byte(tc.expires), []byte(tc.date), now, ttl)
		if got != tc.want || explicit != tc.explicit {
			t.Errorf("%s: %v %v, want %v %v", tc.name, got, explicit, tc.want, tc.explicit)
		}
	}
}

func TestVaryNames(t *testing.T) {
	names, star := httpcache.VaryNames(lines("accept-encoding, Accept", " x-api-version "))
	if star || !slices.Equal(names, []string{"Accept-Encoding", "Accept", "X-Api-Version"}) {
		t.Errorf("%q %v", names, star)
	}
	if _, star := httpcache.VaryNames(lines("Accept, *")); !star {
		t.Error("* not seen")
	}
}

func TestConditionals(t *testing.T) {
	for _, tc := range []struct {
		inm, etag string
		want      bool
	}{
		{`"a"`, `"a"`, true}, {`W/"a"`, `"a"`, true}, {`"b", W/"a"`, `W/"a"`, true},
		{`*`, `"a"`, true}, {`"b"`, `"a"`, false}, {`"a"`, ``, false},
	} {
		if got := httpcache.NoneMatch([]byte(tc.inm), tc.etag); got != tc.want {
			t.Errorf("NoneMatch(%s, %s) = %v", tc.inm, tc.etag, got)
		}
	}
	lm := "Tue, 14 Nov 2023 22:00:00 GMT"
	if !httpcache.NotModifiedSince([]byte(lm), lm) || httpcache.NotModifiedSince([]byte("Tue, 14 Nov 2023 21:00:00 GMT"), lm) ||
		httpcache.NotModifiedSince([]byte("garbage"), lm) {
		t.Error("NotModifiedSince")
	}
}

func TestStorableStatus(t *testing.T) {
	for status, want := range map[int]bool{200: true, 203: true, 204: true, 206: false, 301: true, 302: false, 404: true, 500: false, 501: true, 503: false} {
		if httpcache.StorableStatus(status) != want {
			t.Errorf("StorableStatus(%d) != %v", status, want)
		}
	}
}

func TestParsingAllocatesNothing(t *testing.T) {
	if testutil.RaceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	cc := lines("max-age=60, no-transform")
	inm := []byte(`"x", "y"`)
	allocs := testing.AllocsPerRun(100, func() {
		httpcache.ParseRequest(cc, nil)
		httpcache.ParseResponse(cc)
		httpcache.NoneMatch(inm, `"y"`)
	})
	if allocs != 0 {
		t.Errorf("%v allocations", allocs)
	}
}
