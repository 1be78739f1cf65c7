package iprestriction_test

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/tollgate/tollgate/dataplane/policy/iprestriction"
)

// randomPrefixes returns n prefixes, about a fifth of them IPv6, of every
// length, clustered in a few networks so that they overlap and touch.
func randomPrefixes(r *rand.Rand, n int) []netip.Prefix {
	out := make([]netip.Prefix, 0, n)
	for range n {
		if r.IntN(5) == 0 {
			var b [16]byte
			b[0], b[1], b[2], b[3] = 0x20, 0x01, 0x0d, byte(r.IntN(4))
			for i := 4; i < 16; i++ {
				b[i] = byte(r.Uint32())
			}
			out = append(out, netip.PrefixFrom(netip.AddrFrom16(b), 28+r.IntN(101)).Masked())
			continue
		}
		a := netip.AddrFrom4([4]byte{10, byte(r.IntN(4)), byte(r.Uint32()), byte(r.Uint32())})
		out = append(out, netip.PrefixFrom(a, 12+r.IntN(21)).Masked())
	}
	return out
}

// probes returns addresses worth asking about: the edges of each prefix,
// their neighbours, and random ones.
func probes(r *rand.Rand, prefixes []netip.Prefix) []netip.Addr {
	var out []netip.Addr
	for _, p := range prefixes {
		first := p.Addr()
		last := lastAddr(p)
		out = append(out, first, last, first.Prev(), last.Next())
	}
	for range 2000 {
		out = append(out, netip.AddrFrom4([4]byte{10, byte(r.IntN(5)), byte(r.Uint32()), byte(r.Uint32())}))
	}
	return out
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// The set answers as a scan of every prefix would.
func TestSetAgreesWithALinearScan(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 10, 100, 1000} {
		prefixes := randomPrefixes(r, n)
		set := iprestriction.NewSet(prefixes)
		for _, a := range probes(r, prefixes) {
			if !a.IsValid() {
				continue
			}
			want := false
			for _, p := range prefixes {
				if p.Contains(a) {
					want = true
					break
				}
			}
			if got := set.Contains(a); got != want {
				t.Fatalf("n=%d: Contains(%s) = %v, want %v", n, a, got, want)
			}
		}
	}
}

func TestSetEdges(t *testing.T) {
	parse := func(entries ...string) *iprestriction.Set {
		var ps []netip.Prefix
		for _, e := range entries {
			p, err := iprestriction.ParseEntry(e)
			if err != nil {
				t.Fatal(err)
			}
			ps = append(ps, p)
		}
		return iprestriction.NewSet(ps)
	}
	all := parse("0.0.0.0/0", "::/0")
	for _, a := range []string{"0.0.0.0", "255.255.255.255", "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"} {
		if !all.Contains(netip.MustParseAddr(a)) {
			t.Errorf("the whole space lacks %s", a)
		}
	}
	if all.Len() != 2 {
		t.Errorf("whole spaces: %d ranges", all.Len())
	}
	// Adjacent and nested ranges merge into one.
	if s := parse("10.0.0.0/25", "10.0.0.128/25", "10.0.0.7", "10.0.1.0/24"); s.Len() != 1 {
		t.Errorf("adjacent ranges: %d ranges, want 1", s.Len())
	}
	if s := parse("2001:db8::/33", "2001:db8:8000::/33"); s.Len() != 1 || !s.Contains(netip.MustParseAddr("2001:db8:ffff::1")) {
		t.Errorf("adjacent IPv6 halves: %d ranges", s.Len())
	}
	// An IPv4-mapped entry is the IPv4 range; plain IPv6 ranges hold no IPv4.
	mapped := parse("::ffff:192.0.2.0/120")
	if !mapped.Contains(netip.MustParseAddr("192.0.2.99")) || mapped.Contains(netip.MustParseAddr("192.0.3.1")) {
		t.Error("IPv4-mapped entry")
	}
	if parse("::/0").Contains(netip.MustParseAddr("192.0.2.1")) {
		t.Error("::/0 holds an IPv4 address")
	}
	if parse("0.0.0.0/0").Contains(netip.Addr{}) {
		t.Error("the zero Addr is in a set")
	}
	for _, bad := range []string{"", "10.0.0.0/33", "10.0.0", "fe80::1%eth0", "::1/129", "host.example"} {
		if _, err := iprestriction.ParseEntry(bad); err == nil {
			t.Errorf("ParseEntry(%q) accepted", bad)
		}
	}
}
