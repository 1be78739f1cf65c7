package basicauth_test

import (
	"encoding/base64"
	"net/netip"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/dataplane/policy"
	"github.com/tollgate/tollgate/dataplane/policy/basicauth"
)

func newAuthenticator(tb testing.TB, settings *basicauth.Settings, cs ...config.Consumer) *basicauth.Authenticator {
	tb.Helper()
	a, err := basicauth.New(settings, &policy.Build{
		Route: "api", Consumers: policy.NewDirectory(cs), Shared: policy.NewShared(), State: policy.NewState(),
	})
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

func exchange(authorization string) *policy.Exchange {
	ctx := &fasthttp.RequestCtx{}
	ctx.Request.SetRequestURI("/x")
	if authorization != "" {
		ctx.Request.Header.Set("Authorization", authorization)
	}
	x := &policy.Exchange{}
	x.Reset(ctx, "api", "echo", []byte("/x"), netip.MustParseAddr("192.0.2.1"), []byte("req-1"))
	return x
}

func basicValue(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func TestAuthenticate(t *testing.T) {
	a := newAuthenticator(t, &basicauth.Settings{}, withPasswords("alice", "alice", bcryptOf(t, "pw")))
	x := exchange(basicValue("alice", "pw"))
	c, rej := a.Authenticate(x)
	if c == nil || c.Name != "alice" || rej != nil || x.Credential != "basic-auth" {
		t.Errorf("good: %v %v %q", c, rej, x.Credential)
	}
	for _, value := range []string{basicValue("alice", "wrong"), basicValue("nobody", "pw"), "Basic !"} {
		x := exchange(value)
		if c, rej := a.Authenticate(x); c != nil || rej == nil || rej.Status != 401 || x.Credential != "" {
			t.Errorf("%s: %v %+v", value, c, rej)
		}
	}
	if c, rej := a.Authenticate(exchange("")); c != nil || rej != nil {
		t.Errorf("none: %v %v", c, rej)
	}
}

func TestCachedLoginAllocatesNothing(t *testing.T) {
	a := newAuthenticator(t, &basicauth.Settings{}, withPasswords("alice", "alice", bcryptOf(t, "pw")))
	x := exchange(basicValue("alice", "pw"))
	login := func() {
		if c, _ := a.Authenticate(x); c == nil {
			t.Fatal("refused")
		}
	}
	login() // checks the hash, remembers the login
	if n := testing.AllocsPerRun(1000, login); n != 0 {
		t.Errorf("%v allocations per cached login", n)
	}
}

// BenchmarkBasicAuthCached is a repeated valid login: one SHA-256 and a map
// lookup, the hash check done once.
func BenchmarkBasicAuthCached(b *testing.B) {
	a := newAuthenticator(b, &basicauth.Settings{}, withPasswords("alice", "alice", "wonderland"))
	x := exchange(basicValue("alice", "wonderland"))
	if c, _ := a.Authenticate(x); c == nil {
		b.Fatal("refused")
	}
	b.ReportAllocs()
	for b.Loop() {
		if c, _ := a.Authenticate(x); c == nil {
			b.Fatal("refused")
		}
	}
}

// BenchmarkBasicAuthWrongPassword is what every wrong password (and every
// first login) costs: a bcrypt check at the default cost.
func BenchmarkBasicAuthWrongPassword(b *testing.B) {
	a := newAuthenticator(b, &basicauth.Settings{}, withPasswords("alice", "alice", "wonderland"))
	x := exchange(basicValue("alice", "wonderlan"))
	b.ReportAllocs()
	for b.Loop() {
		if c, _ := a.Authenticate(x); c != nil {
			b.Fatal("accepted")
		}
	}
}
