package cache_test

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "github.com/tollgate/tollgate/dataplane/policy/ratelimit"
	"github.com/tollgate/tollgate/internal/policytest"
	"github.com/tollgate/tollgate/internal/testutil"
)

func TestMissThenHit(t *testing.T) {
	b := countingBackend(t, "Content-Type", "application/json", "ETag", `"v1"`, "X-Internal", "1")
	clock := testutil.NewClock()
	g := start(t, gatewayConfig(b.URL, "{ttl: 1m}"), clock)

	first := get(t, g.URL+"/items?page=2")
	expect(t, "first", first, "MISS", "answer 1")
	clock.Advance(7 * time.Second)
	second := get(t, g.URL+"/items?page=2")
	expect(t, "second", second, "HIT", "answer 1")
	expectCalls(t, b, 1)
	if got := second.header.Get("Age"); got != "7" {
		t.Errorf("Age %q, want 7", got)
	}
	// Every header of the representation comes back, the upstream's own
	// ones (X-Internal) too.
	for _, h := range []string{"Content-Type", "ETag", "X-Internal"} {
		if second.header.Get(h) != first.header.Get(h) || second.header.Get(h) == "" {
			t.Errorf("hit's %s %q, the upstream's %q", h, second.header.Get(h), first.header.Get(h))
		}
	}
	if second.header.Get("X-Request-Id") == "" || second.header.Get("X-Request-Id") == first.header.Get("X-Request-Id") {
		t.Errorf("hit's X-Request-ID %q: want its own", second.header.Get("X-Request-Id"))
	}
	if first.header.Get("Age") != "" {
		t.Errorf("miss carries Age %q", first.header.Get("Age"))
	}

	// Another query is another resource; POST is never cached.
	expect(t, "other query", get(t, g.URL+"/items?page=3"), "MISS", "answer 2")
	post := send(t, "POST", g.URL+"/items?page=2")
	if post.body != "answer 3" || post.header.Get("X-Cache") != "" {
		t.Errorf("POST: %q X-Cache %q, want the upstream's answer and no X-Cache", post.body, post.header.Get("X-Cache"))
	}
	for series, want := range map[string]string{
		`tollgate_cache_requests_total{result="hit",route="api"}`:  "1",
		`tollgate_cache_requests_total{result="miss",route="api"}`: "2",
	} {
		if got, _ := g.MetricValue(t, series); got != want {
			t.Errorf("%s = %q, want %s", series, got, want)
		}
	}
}

func TestTTLExpiry(t *testing.T) {
	b := countingBackend(t)
	clock := testutil.NewClock()
	g := start(t, gatewayConfig(b.URL, "{ttl: 30s}"), clock)

	expect(t, "first", get(t, g.URL+"/a"), "MISS", "answer 1")
	clock.Advance(29 * time.Second)
	expect(t, "within ttl", get(t, g.URL+"/a"), "HIT", "answer 1")
	clock.Advance(time.Second)
	expect(t, "at ttl", get(t, g.URL+"/a"), "MISS", "answer 2")
	expect(t, "stored again", get(t, g.URL+"/a"), "HIT", "answer 2")
	expectCalls(t, b, 2)
}

// Responses say how they may be cached; the policy's ttl only fills in
// when they say nothing.
func TestResponseCacheControl(t *testing.T) {
	for _, tc := range []struct {
		name     string
		settings string
		header   []string
		// after is how long after storing the second request comes, and
		// hit whether it is answered from the cache.
		after time.Duration
		hit   bool
	}{
		{"no-store", "{}", []string{"Cache-Control", "no-store"}, 0, false},
		{"no-cache", "{}", []string{"Cache-Control", "no-cache"}, 0, false},
		{"private", "{}", []string{"Cache-Control", "private, max-age=60"}, 0, false},
		{"private with cache_private", "{cache_private: true}", []string{"Cache-Control", "private, max-age=60"}, 0, true},
		{"max-age beats ttl", "{ttl: 1h}", []string{"Cache-Control", "max-age=5"}, 6 * time.Second, false},
		{"max-age longer than ttl", "{ttl: 1s}", []string{"Cache-Control", "max-age=100"}, 50 * time.Second, true},
		{"s-maxage beats max-age", "{}", []string{"Cache-Control", "max-age=5, s-maxage=20"}, 10 * time.Second, true},
		{"max-age=0", "{}", []string{"Cache-Control", "max-age=0"}, 0, false},
		{"Age counts", "{}", []string{"Cache-Control", "max-age=10", "Age", "8"}, 3 * time.Second, false},
		{"Expires", "{ttl: 1s}", []string{"Date", "Tue, 14 Nov 2023 22:13:20 GMT", "Expires", "Tue, 14 Nov 2023 22:14:20 GMT"}, 30 * time.Second, true},
		{"Expires in the past", "{}", []string{"Expires", "Thu, 01 Jan 1970 00:00:00 GMT"}, 0, false},
		{"ttl 0 needs the response's word", "{ttl: 0}", nil, 0, false},
		{"Set-Cookie", "{}", []string{"Set-Cookie", "session=1"}, 0, false},
		{"Vary: *", "{}", []string{"Vary", "*"}, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := countingBackend(t, tc.header...)
			clock := testutil.NewClock()
			g := start(t, gatewayConfig(b.URL, tc.settings), clock)
			expect(t, "first", get(t, g.URL+"/r"), "MISS", "answer 1")
			clock.Advance(tc.after)
			second := get(t, g.URL+"/r")
			if tc.hit {
				expect(t, "second", second, "HIT", "answer 1")
			} else {
				expect(t, "second", second, "MISS", "answer 2")
			}
		})
	}
}

func TestUncacheableStatus(t *testing.T) {
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/"))
		w.Header().Set("Cache-Control", "max-age=60")
		w.WriteHeader(code)
		io.WriteString(w, "status "+strconv.Itoa(code))
	})
	g := start(t, gatewayConfig(b.URL, "{}"), nil)
	for code, cached := range map[int]bool{200: true, 404: true, 301: true, 410: true, 302: false, 500: false, 503: false, 206: false} {
		path := "/" + strconv.Itoa(code)
		get(t, g.URL+path)
		want := "MISS"
		if cached {
			want = "HIT"
		}
		a := get(t, g.URL+path)
		if a.header.Get("X-Cache") != want || a.status != code {
			t.Errorf("%d: second answer %d X-Cache %q, want %d %s", code, a.status, a.header.Get("X-Cache"), code, want)
		}
	}
}

func TestRequestCacheControl(t *testing.T) {
	b := countingBackend(t)
	clock := testutil.NewClock()
	g := start(t, gatewayConfig(b.URL, "{}"), clock)

	expect(t, "no-store first", get(t, g.URL+"/x", "Cache-Control", "no-store"), "MISS", "answer 1")
	expect(t, "nothing was stored", get(t, g.URL+"/x"), "MISS", "answer 2")
	expect(t, "stored", get(t, g.URL+"/x"), "HIT", "answer 2")
	// no-cache and max-age=0 go upstream and store the new answer.
	expect(t, "no-cache", get(t, g.URL+"/x", "Cache-Control", "no-cache"), "MISS", "answer 3")
	expect(t, "refreshed", get(t, g.URL+"/x"), "HIT", "answer 3")
	expect(t, "max-age=0", get(t, g.URL+"/x", "Cache-Control", "max-age=0"), "MISS", "answer 4")
	expect(t, "Pragma", get(t, g.URL+"/x", "Pragma", "no-cache"), "MISS", "answer 5")
	clock.Advance(20 * time.Second)
	expect(t, "max-age=10 refuses a 20s old answer", get(t, g.URL+"/x", "Cache-Control", "max-age=10"), "MISS", "answer 6")
	expect(t, "max-age=30", get(t, g.URL+"/x", "Cache-Control", "max-age=30"), "HIT", "answer 6")

	a := get(t, g.URL+"/never", "Cache-Control", "only-if-cached")
	if a.status != 504 || !strings.Contains(a.body, "not_cached") {
		t.Errorf("only-if-cached miss: %d %s, want 504 not_cached", a.status, a.body)
	}
	expect(t, "only-if-cached hit", get(t, g.URL+"/x", "Cache-Control", "only-if-cached"), "HIT", "answer 6")
	expectCalls(t, b, 6)
	if got, _ := g.MetricValue(t, `tollgate_cache_requests_total{result="bypass",route="api"}`); got != "4" {
		t.Errorf("bypass count %q, want 4 (no-store, no-cache, max-age=0, Pragma)", got)
	}
}

func TestConditionalHit(t *testing.T) {
	b := countingBackend(t, "ETag", `"v7"`, "Last-Modified", "Tue, 14 Nov 2023 22:00:00 GMT")
	g := start(t, gatewayConfig(b.URL, "{}"), nil)
	get(t, g.URL+"/c")
	for _, h := range [][]string{
		{"If-None-Match", `"v7"`},
		{"If-None-Match", `"v1", W/"v7"`},
		{"If-Modified-Since", "Tue, 14 Nov 2023 23:00:00 GMT"},
	} {
		a := get(t, g.URL+"/c", h...)
		if a.status != 304 || a.body != "" || a.header.Get("ETag") != `"v7"` || a.header.Get("X-Cache") != "HIT" {
			t.Errorf("%v: %d %q ETag %q, want 304 from the cache", h, a.status, a.body, a.header.Get("ETag"))
		}
	}
	a := get(t, g.URL+"/c", "If-None-Match", `"v6"`)
	expect(t, "changed", a, "HIT", "answer 1")
	expectCalls(t, b, 1)
}

func TestVary(t *testing.T) {
	var b *backend
	b = newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Vary", "Accept-Language")
		io.WriteString(w, r.Header.Get("Accept-Language")+"/"+r.Header.Get("Accept")+" "+strconv.FormatInt(b.calls.Load(), 10))
	})
	g := start(t, gatewayConfig(b.URL, "{vary: [accept]}"), nil)

	en := get(t, g.URL+"/v", "Accept-Language", "en", "Accept", "text/plain")
	expect(t, "en", en, "MISS", "en/text/plain 1")
	if got := en.header.Get("Vary"); got != "Accept-Language, Accept" {
		t.Errorf("Vary %q: want the upstream's and the policy's", got)
	}
	expect(t, "de", get(t, g.URL+"/v", "Accept-Language", "de", "Accept", "text/plain"), "MISS", "de/text/plain 2")
	expect(t, "en again", get(t, g.URL+"/v", "Accept-Language", "en", "Accept", "text/plain"), "HIT", "en/text/plain 1")
	expect(t, "de again", get(t, g.URL+"/v", "Accept-Language", "de", "Accept", "text/plain"), "HIT", "de/text/plain 2")
	expect(t, "another Accept", get(t, g.URL+"/v", "Accept-Language", "en", "Accept", "application/json"), "MISS", "en/application/json 3")
	hit := get(t, g.URL+"/v", "Accept-Language", "en", "Accept", "text/plain")
	if got := hit.header.Get("Vary"); got != "Accept-Language, Accept" {
		t.Errorf("hit's Vary %q", got)
	}
}

func TestKeyHeaders(t *testing.T) {
	b := countingBackend(t)
	g := start(t, gatewayConfig(b.URL, "{key_headers: [X-Tenant]}"), nil)
	expect(t, "tenant a", get(t, g.URL+"/k", "X-Tenant", "a"), "MISS", "answer 1")
	b2 := get(t, g.URL+"/k", "X-Tenant", "b")
	expect(t, "tenant b", b2, "MISS", "answer 2")
	if v := b2.header.Get("Vary"); v != "" {
		t.Errorf("key_headers announced in Vary: %q", v)
	}
	expect(t, "tenant a again", get(t, g.URL+"/k", "X-Tenant", "a"), "HIT", "answer 1")
}

func TestAuthorization(t *testing.T) {
	var b *backend
	b = newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/public" {
			w.Header().Set("Cache-Control", "public, max-age=60")
		} else {
			w.Header().Set("Cache-Control", "max-age=60")
		}
		io.WriteString(w, r.Header.Get("Authorization")+" "+strconv.FormatInt(b.calls.Load(), 10))
	})
	g := start(t, gatewayConfig(b.URL, "{}"), nil)

	// A response to an authorized request is only stored when it says
	// others may have it.
	expect(t, "alice", get(t, g.URL+"/mine", "Authorization", "Bearer alice"), "MISS", "Bearer alice 1")
	expect(t, "bob", get(t, g.URL+"/mine", "Authorization", "Bearer bob"), "MISS", "Bearer bob 2")
	expect(t, "guest", get(t, g.URL+"/mine"), "MISS", " 3")
	// A stored response without public does not answer an authorized one.
	expect(t, "guest again", get(t, g.URL+"/mine"), "HIT", " 3")
	expect(t, "alice again", get(t, g.URL+"/mine", "Authorization", "Bearer alice"), "MISS", "Bearer alice 4")

	expect(t, "public", get(t, g.URL+"/public", "Authorization", "Bearer alice"), "MISS", "Bearer alice 5")
	expect(t, "public for bob", get(t, g.URL+"/public", "Authorization", "Bearer bob"), "HIT", "Bearer alice 5")
	expect(t, "public for anyone", get(t, g.URL+"/public"), "HIT", "Bearer alice 5")
}

func TestHeadFromGet(t *testing.T) {
	b := countingBackend(t, "Content-Type", "text/plain")
	g := start(t, gatewayConfig(b.URL, "{}"), nil)

	head := send(t, "HEAD", g.URL+"/h")
	if head.header.Get("X-Cache") != "MISS" || b.calls.Load() != 1 {
		t.Fatalf("first HEAD: X-Cache %q, backend %d", head.header.Get("X-Cache"), b.calls.Load())
	}
	expect(t, "GET after HEAD (HEAD answers are not stored)", get(t, g.URL+"/h"), "MISS", "answer 2")
	head = send(t, "HEAD", g.URL+"/h")
	if head.header.Get("X-Cache") != "HIT" || head.body != "" || head.header.Get("Content-Length") != strconv.Itoa(len("answer 2")) {
		t.Errorf("HEAD after GET: X-Cache %q body %q Content-Length %q", head.header.Get("X-Cache"), head.body, head.header.Get("Content-Length"))
	}
	expectCalls(t, b, 2)

	// methods: [GET] leaves HEAD alone.
	g2 := start(t, gatewayConfig(b.URL, "{methods: [GET]}"), nil)
	get(t, g2.URL+"/h")
	if h := send(t, "HEAD", g2.URL+"/h"); h.header.Get("X-Cache") != "" {
		t.Errorf("HEAD with methods [GET]: X-Cache %q", h.header.Get("X-Cache"))
	}
}

func TestHostIsPartOfTheKey(t *testing.T) {
	b := countingBackend(t)
	g := start(t, gatewayConfig(b.URL, "{}"), nil)
	expect(t, "a", get(t, g.URL+"/p", "Host", "a.example.com"), "MISS", "answer 1")
	expect(t, "b", get(t, g.URL+"/p", "Host", "b.example.com"), "MISS", "answer 2")
	expect(t, "A (case)", get(t, g.URL+"/p", "Host", "A.example.com"), "HIT", "answer 1")
	// The path is normalised as routing sees it.
	expect(t, "dot segments", get(t, g.URL+"/x/../p", "Host", "a.example.com"), "HIT", "answer 1")
}

func TestLargeBodiesStreamAndAreNotStored(t *testing.T) {
	big := strings.Repeat("x", 4096)
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/big":
			w.Header().Set("Content-Length", strconv.Itoa(len(big)))
			io.WriteString(w, big)
		case "/chunked":
			io.WriteString(w, big[:100])
			w.(http.Flusher).Flush()
			io.WriteString(w, big[100:])
		default:
			io.WriteString(w, "small")
		}
	})
	g := start(t, gatewayConfig(b.URL, "{max_body_bytes: 1024}"), nil)
	for _, path := range []string{"/big", "/chunked"} {
		for i := range 2 {
			a := get(t, g.URL+path)
			if a.body != big || a.header.Get("X-Cache") != "MISS" {
				t.Errorf("%s #%d: %d bytes X-Cache %q, want the whole body, not cached", path, i, len(a.body), a.header.Get("X-Cache"))
			}
		}
	}
	get(t, g.URL+"/small")
	expect(t, "small", get(t, g.URL+"/small"), "HIT", "small")
	expectCalls(t, b, 5)
}

// A body above the proxy's usual in-memory bound (16 KiB) but within
// max_body_bytes is stored whole.
func TestBodiesUpToMaxBodyBytesAreStored(t *testing.T) {
	body := strings.Repeat("0123456789", 50_000) // 500 kB
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		io.WriteString(w, body)
	})
	g := start(t, gatewayConfig(b.URL, "{}"), nil)
	get(t, g.URL+"/large")
	a := get(t, g.URL+"/large")
	if a.header.Get("X-Cache") != "HIT" || a.body != body {
		t.Errorf("X-Cache %q, %d bytes; want a hit with the whole body", a.header.Get("X-Cache"), len(a.body))
	}
	expectCalls(t, b, 1)
}

func TestReloadKeepsEntries(t *testing.T) {
	b := countingBackend(t)
	g := start(t, gatewayConfig(b.URL, "{ttl: 1m}"), nil)
	get(t, g.URL+"/r")
	g.Reload(t, gatewayConfig(b.URL, "{ttl: 1m}")+"\n# touched\n")
	expect(t, "after a reload with the same settings", get(t, g.URL+"/r"), "HIT", "answer 1")
	g.Reload(t, gatewayConfig(b.URL, "{ttl: 2m}"))
	expect(t, "after a change of settings", get(t, g.URL+"/r"), "MISS", "answer 2")
}

func init() { policytest.RegisterConsumerPolicy() }

func TestKeyConsumer(t *testing.T) {
	b := countingBackend(t)
	yaml := strings.Replace(gatewayConfig(b.URL, "{key_consumer: true}"), "      cache:", "      test-consumer: {anonymous: guest}\n      cache:", 1) +
		"consumers: [{name: alice}, {name: bob}, {name: guest}]\n"
	g := start(t, yaml, nil)
	expect(t, "alice", get(t, g.URL+"/mine", "X-Test-Consumer", "alice"), "MISS", "answer 1")
	expect(t, "bob", get(t, g.URL+"/mine", "X-Test-Consumer", "bob"), "MISS", "answer 2")
	expect(t, "guest", get(t, g.URL+"/mine"), "MISS", "answer 3")
	expect(t, "alice again", get(t, g.URL+"/mine", "X-Test-Consumer", "alice"), "HIT", "answer 1")
	expect(t, "guest again", get(t, g.URL+"/mine"), "HIT", "answer 3")
}

// Headers other policies set for one answer are not stored: a hit carries
// the rate limit headers of its own request, not those of the miss.
func TestAnswerHeadersOfOtherPoliciesAreNotStored(t *testing.T) {
	b := countingBackend(t)
	yaml := strings.Replace(gatewayConfig(b.URL, "{ttl: 1m}"), "      cache:",
		"      rate-limit: {limit: 10, window: 1h, per: route}\n      cache:", 1)
	g := start(t, yaml, nil)
	miss := get(t, g.URL+"/r")
	hit := get(t, g.URL+"/r")
	expect(t, "hit", hit, "HIT", "answer 1")
	if m, h := miss.header.Get("RateLimit-Remaining"), hit.header.Get("RateLimit-Remaining"); m != "9" || h != "8" {
		t.Errorf("RateLimit-Remaining: miss %q, hit %q; want 9 then 8", m, h)
	}
}
