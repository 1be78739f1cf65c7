package engine

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
)

// FuzzSplitRequestURI feeds arbitrary request targets: splitting must never
// panic, and a path it returns must start with "/" and be part of the input
// (absolute-form targets aside, where "/" is added for an empty path).
func FuzzSplitRequestURI(f *testing.F) {
	for _, s := range []string{"/", "/a?b", "/a#f", "http://h/p?q", "http://h", "*", "", "//x", "http://h?q"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, uri []byte) {
		path, query, ok := splitRequestURI(uri)
		if !ok {
			return
		}
		if len(path) == 0 || path[0] != '/' {
			t.Fatalf("%q: path %q does not start with /", uri, path)
		}
		if bytes.IndexByte(path, '?') >= 0 {
			t.Fatalf("%q: path %q keeps the query", uri, path)
		}
		if len(query) > 0 && !bytes.Contains(uri, query) {
			t.Fatalf("%q: query %q not from the input", uri, query)
		}
	})
}

func trustingSnapshot(t testing.TB, cidrs ...string) *snapshot {
	s := &snapshot{}
	for _, c := range cidrs {
		p, err := parsePrefix(c)
		if err != nil {
			t.Fatal(err)
		}
		s.trusted = append(s.trusted, p)
	}
	return s
}

func TestClientAddress(t *testing.T) {
	s := trustingSnapshot(t, "10.0.0.0/8", "192.168.1.1")
	peer := netip.MustParseAddr("10.0.0.1")
	cases := []struct {
		xff  []string
		want string
	}{
		{nil, "10.0.0.1"},
		{[]string{"203.0.113.9"}, "203.0.113.9"},
		{[]string{"203.0.113.9, 10.1.2.3"}, "203.0.113.9"},
		{[]string{"6.6.6.6, 203.0.113.9, 192.168.1.1"}, "203.0.113.9"}, // the spoofed left part is ignored
		{[]string{"6.6.6.6", "203.0.113.9"}, "203.0.113.9"},            // several lines are one list
		{[]string{"garbage, 10.1.1.1"}, "10.1.1.1"},                    // a malformed hop ends the walk
		{[]string{"::ffff:203.0.113.9"}, "203.0.113.9"},
		{[]string{" 203.0.113.9 ,10.2.2.2 "}, "203.0.113.9"},
	}
	for _, c := range cases {
		var xff [][]byte
		for _, v := range c.xff {
			xff = append(xff, []byte(v))
		}
		if got := s.clientAddress(peer, xff); got.String() != c.want {
			t.Errorf("X-Forwarded-For %q: client %s, want %s", c.xff, got, c.want)
		}
	}
}

// FuzzClientAddress: whatever a client writes in X-Forwarded-For, the result
// is the peer or an address the header holds, and never a trusted proxy
// unless every hop is one.
func FuzzClientAddress(f *testing.F) {
	for _, s := range []string{"1.2.3.4", "1.2.3.4, 10.0.0.2", ",,,", "::1, x", "10.0.0.1,10.0.0.2"} {
		f.Add(s)
	}
	s := trustingSnapshot(f, "10.0.0.0/8")
	peer := netip.MustParseAddr("10.9.9.9")
	f.Fuzz(func(t *testing.T, xff string) {
		got := s.clientAddress(peer, [][]byte{[]byte(xff)})
		if got == peer {
			return
		}
		if got.Zone() != "" {
			t.Fatalf("%q gave %s, an address with a zone", xff, got)
		}
		if !strings.Contains(xff, got.String()) && !strings.Contains(strings.ToLower(xff), got.String()) {
			// Parsing may normalize the spelling (zeros, case, ::ffff:): the
			// address must at least parse back from one of the entries.
			found := false
			for _, item := range strings.Split(xff, ",") {
				if a, err := netip.ParseAddr(strings.Trim(item, " \t")); err == nil && a.Unmap() == got {
					found = true
				}
			}
			if !found {
				t.Fatalf("%q gave %s, which it does not hold", xff, got)
			}
		}
	})
}
