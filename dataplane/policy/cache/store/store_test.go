package store_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/dataplane/policy/cache/store"
	"github.com/tollgate/tollgate/dataplane/policy/ratelimit/redistest"
	"github.com/tollgate/tollgate/internal/testutil"
)

const now = int64(1_700_000_000) * int64(time.Second)

func resource(route, host, target string) string {
	return string(store.ResourceKey(nil, route, []byte(host), []byte(target)))
}

func entry(res, variant string, body string) *store.Entry {
	return (&store.Entry{
		Resource: res, Variant: variant, Status: 200,
		Header:  []store.Field{{Name: "Content-Type", Value: "text/plain"}, {Name: "ETag", Value: `"e"`}},
		Body:    []byte(body),
		AgeBase: now, Expires: now + int64(time.Minute), Shared: true,
	}).Seal()
}

func TestEncodeDecode(t *testing.T) {
	e := entry(resource("r", "h", "/p?q"), "v\x00", "body bytes")
	d, err := store.Decode(e.Encode(nil))
	if err != nil {
		t.Fatal(err)
	}
	if d.Resource != e.Resource || d.Variant != e.Variant || d.Status != 200 || string(d.Body) != "body bytes" ||
		d.AgeBase != e.AgeBase || d.Expires != e.Expires || !d.Shared || d.ETag != `"e"` || len(d.Header) != 2 {
		t.Errorf("decoded %+v, want %+v", d, e)
	}
	if d.Answer.Status != 200 || !bytes.Equal(d.Answer.Body, d.Body) || d.Answer.Code != "" {
		t.Errorf("answer %+v", d.Answer)
	}
	for _, bad := range [][]byte{nil, []byte("TC"), []byte("XX\x01aaaaaaaaaaaaaaaaaaaaaaaaa"), e.Encode(nil)[:30]} {
		if _, err := store.Decode(bad); err == nil {
			t.Errorf("Decode(%q) accepted", bad)
		}
	}
}

func TestMemoryVariantsAndNames(t *testing.T) {
	m := store.NewMemory(1<<20, 1<<10)
	res := resource("r", "Example.COM", "/p")
	if !strings.Contains(res, "example.com") {
		t.Errorf("resource key %q: host not in lower case", res)
	}
	m.Put(entry(res, "en", "english"), []string{"Accept-Language"})
	m.Put(entry(res, "de", "deutsch"), []string{"Accept-Language"})
	if names, ok := m.Names([]byte(res)); !ok || len(names) != 1 || names[0] != "Accept-Language" {
		t.Errorf("Names = %q %v", names, ok)
	}
	if e := m.Get([]byte(res), []byte("de"), now); e == nil || string(e.Body) != "deutsch" {
		t.Errorf("de: %v", e)
	}
	if e := m.Get([]byte(res), []byte("de"), now+int64(time.Minute)); e != nil {
		t.Error("an expired entry was returned")
	}
	if n, _ := m.Len(); n != 1 {
		t.Errorf("%d entries after the expired one was found, want 1", n)
	}
	// New names make the old variants unreachable: they go.
	m.Put(entry(res, "en|gzip", "english, gzipped"), []string{"Accept-Encoding", "Accept-Language"})
	if n, _ := m.Len(); n != 1 {
		t.Errorf("%d entries after the names changed, want 1", n)
	}
}

func TestMemoryEvictsLeastRecentlyUsed(t *testing.T) {
	body := strings.Repeat("x", 1000)
	size := entry(resource("r", "h", "/0"), "", body).Size()
	m := store.NewMemory(3*size, size) // one shard, room for three
	for i := range 3 {
		m.Put(entry(resource("r", "h", fmt.Sprint("/", i)), "", body), nil)
	}
	m.Get([]byte(resource("r", "h", "/0")), nil, now) // /0 is now the most recent
	m.Put(entry(resource("r", "h", "/3"), "", body), nil)
	for i, want := range []bool{true, false, true, true} {
		got := m.Get([]byte(resource("r", "h", fmt.Sprint("/", i))), nil, now) != nil
		if got != want {
			t.Errorf("/%d kept = %v, want %v", i, got, want)
		}
	}
	if n, bytes := m.Len(); n != 3 || bytes != 3*size {
		t.Errorf("%d entries, %d bytes; want 3, %d", n, bytes, 3*size)
	}
	if m.Put(entry(resource("r", "h", "/big"), "", strings.Repeat("y", 4000)), nil) {
		t.Error("an entry larger than the store was stored")
	}
}

func TestMemoryPurgeScopes(t *testing.T) {
	m := store.NewMemory(1<<20, 1<<10)
	for _, r := range []string{
		resource("a", "one.example", "/x"), resource("a", "two.example", "/x"),
		resource("a", "one.example", "/y"), resource("b", "one.example", "/x"),
	} {
		m.Put(entry(r, "v1", "1"), []string{"Accept"})
		m.Put(entry(r, "v2", "2"), []string{"Accept"})
	}
	for _, tc := range []struct {
		scope store.Scope
		want  int
	}{
		{store.Scope{Route: "a", Host: "ONE.example", Target: "/x"}, 2},
		{store.Scope{Route: "a", Target: "/x"}, 2}, // the other host's
		{store.Scope{Route: "a"}, 2},               // /y
		{store.Scope{Route: "c"}, 0},
		{store.Scope{}, 2}, // route b
	} {
		if got := m.Purge(tc.scope); got != tc.want {
			t.Errorf("Purge(%+v) = %d, want %d", tc.scope, got, tc.want)
		}
	}
}

// Two gateways share Redis: what one stores the other reads, and a purge
// through one empties the other's memory too.
func TestRedisShared(t *testing.T) {
	srv := redistest.Start(t)
	prefix := redistest.Prefix()
	open := func() (*store.Redis, *store.Memory) {
		r, err := store.OpenRedis(srv.URL, store.RedisOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		m := store.NewMemory(1<<20, 1<<10)
		t.Cleanup(r.Listen(prefix, m))
		return r, m
	}
	one, _ := open()
	two, mem2 := open()
	testutil.Eventually(t, 5*time.Second, "both stores listen for purges", func() bool {
		n, err := one.Subscribers(prefix)
		return err == nil && n == 2
	})

	res := resource("r", "h", "/p")
	keys := &store.Keys{Prefix: prefix, Route: "r", Resource: res}
	names := []string{"Accept"}
	one.Put(keys, entry(res, "json\x00", "stored by one"), names, now)
	variantFor := func([]string) []byte { t.Error("names differ"); return nil }
	var got *store.Entry
	testutil.Eventually(t, 5*time.Second, "the entry in Redis", func() bool {
		e, stored, err := two.Get(keys, names, []byte("json\x00"), variantFor, now)
		if err != nil {
			t.Fatal(err)
		}
		if e != nil && len(stored) == 1 {
			got = e
		}
		return e != nil
	})
	if string(got.Body) != "stored by one" || got.ETag != `"e"` {
		t.Errorf("read %q ETag %q", got.Body, got.ETag)
	}
	// A reader that guessed other names is told the stored ones.
	e, stored, _ := two.Get(keys, nil, nil, func(n []string) []byte {
		if len(n) != 1 || n[0] != "Accept" {
			t.Errorf("variantFor(%q)", n)
		}
		return []byte("json\x00")
	}, now)
	if e == nil || len(stored) != 1 {
		t.Errorf("guessing no names: %v %q", e, stored)
	}
	if e, _, _ := two.Get(keys, names, []byte("json\x00"), variantFor, now+int64(time.Minute)); e != nil {
		t.Error("an expired entry was read")
	}

	mem2.Put(got, names)
	n, err := one.Purge(prefix, store.Scope{Route: "r", Target: "/p"})
	if err != nil || n != 1 {
		t.Fatalf("Purge = %d, %v; want 1", n, err)
	}
	if e, _, _ := two.Get(keys, names, []byte("json\x00"), variantFor, now); e != nil {
		t.Error("read after the purge")
	}
	testutil.Eventually(t, 5*time.Second, "the other gateway's memory purged", func() bool {
		n, _ := mem2.Len()
		return n == 0
	})
}
