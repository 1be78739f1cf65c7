package redisopt

import "testing"

func TestOptions(t *testing.T) {
	for _, tc := range []struct {
		addr, want string
		ok         bool
	}{
		{"127.0.0.1:6379", "127.0.0.1:6379", true},
		{"redis://10.0.0.1:6380/2", "10.0.0.1:6380", true},
		{"", "", false},
		{"redis://:bad:port:x/z", "", false},
	} {
		o, err := Options(tc.addr)
		if (err == nil) != tc.ok {
			t.Errorf("%q: err %v", tc.addr, err)
			continue
		}
		if err == nil && (o.Addr != tc.want || o.MaxRetries != -1 || !o.ContextTimeoutEnabled) {
			t.Errorf("%q: %+v", tc.addr, o)
		}
	}
}
