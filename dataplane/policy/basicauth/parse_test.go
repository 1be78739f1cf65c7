package basicauth_test

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tollgate/tollgate/dataplane/policy/basicauth"
)

func TestParseAuthorization(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	for _, tc := range []struct {
		value      string
		user, pass string
		err        error
	}{
		{value: "Basic " + b64("alice:pw"), user: "alice", pass: "pw"},
		{value: "BASIC " + b64("alice:pw"), user: "alice", pass: "pw"},
		{value: "basic " + b64("alice:"), user: "alice", pass: ""},
		{value: "Basic " + b64("alice:a:b"), user: "alice", pass: "a:b"},
		{value: "Basic " + b64("élodie:mot de passe"), user: "élodie", pass: "mot de passe"},
		{value: "", err: basicauth.ErrNotBasic},
		{value: "Bas", err: basicauth.ErrNotBasic},
		{value: "Bearer " + b64("alice:pw"), err: basicauth.ErrNotBasic},
		{value: "Basic2 " + b64("alice:pw"), err: basicauth.ErrNotBasic},
		{value: "Basic-x " + b64("alice:pw"), err: basicauth.ErrNotBasic},
		{value: "Basic", err: basicauth.ErrMalformed},
		{value: "Basic ", err: basicauth.ErrMalformed},
		{value: "Basic  " + b64("alice:pw"), err: basicauth.ErrMalformed},
		{value: "Basic\t" + b64("alice:pw"), err: basicauth.ErrMalformed},
		{value: "Basic " + b64("alice:pw") + " ", err: basicauth.ErrMalformed},
		{value: "Basic " + b64("alice:pw") + "\r\n", err: basicauth.ErrMalformed},
		{value: "Basic " + b64("alice:pw")[:4] + "\n" + b64("alice:pw")[4:], err: basicauth.ErrMalformed},
		{value: "Basic " + strings.TrimRight(b64("alice:p"), "="), err: basicauth.ErrMalformed},
		{value: "Basic YWxpY2U6cH=", err: basicauth.ErrMalformed}, // non-zero padding bits
		{value: "Basic " + b64("alice"), err: basicauth.ErrMalformed},
		{value: "Basic " + b64(":pw"), err: basicauth.ErrMalformed},
		{value: "Basic " + b64("al\tice:pw"), err: basicauth.ErrMalformed},
		{value: "Basic " + b64("alice:p\nw"), err: basicauth.ErrMalformed},
		{value: "Basic " + b64("alice:\x80"), err: basicauth.ErrMalformed},
		{value: "Basic " + b64("alice:"+strings.Repeat("x", basicauth.MaxCredentialsLen)), err: basicauth.ErrMalformed},
	} {
		var buf [basicauth.MaxCredentialsLen]byte
		c, err := basicauth.ParseAuthorization([]byte(tc.value), buf[:])
		if err != tc.err {
			t.Errorf("%q: error %v, want %v", tc.value, err, tc.err)
			continue
		}
		if err == nil && (string(c.User) != tc.user || string(c.Password) != tc.pass || string(c.UserPass) != tc.user+":"+tc.pass) {
			t.Errorf("%q: %q %q %q", tc.value, c.User, c.Password, c.UserPass)
		}
	}
}

func TestParseAuthorizationAllocatesNothing(t *testing.T) {
	value := []byte("Basic " + base64.StdEncoding.EncodeToString([]byte("alice:wonderland")))
	n := testing.AllocsPerRun(100, func() {
		var buf [basicauth.MaxCredentialsLen]byte
		if _, err := basicauth.ParseAuthorization(value, buf[:]); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Errorf("%v allocations per parse", n)
	}
}

func FuzzParseBasicAuthorization(f *testing.F) {
	for _, seed := range []string{
		"Basic YWxpY2U6d29uZGVybGFuZA==", "basic YTo=", "Basic", "Basic ", "Basic  YTpi", "Bearer x",
		"Basic YTpi\n", "Basic YWxpY2U6cH=", "Basic Og==", "Basic AA==", "Basicx YTpi", "Basic w4k6w4k=",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, value []byte) {
		var buf [basicauth.MaxCredentialsLen]byte
		c, err := basicauth.ParseAuthorization(value, buf[:])
		if err != nil {
			if err != basicauth.ErrNotBasic && err != basicauth.ErrMalformed {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		// What is accepted is well-formed...
		if len(c.User) == 0 || bytes.IndexByte(c.User, ':') >= 0 || !utf8.Valid(c.UserPass) {
			t.Fatalf("accepted %q as user %q", value, c.User)
		}
		for _, b := range c.UserPass {
			if b < 0x20 || b == 0x7f {
				t.Fatalf("accepted a control character in %q", c.UserPass)
			}
		}
		if string(c.UserPass) != string(c.User)+":"+string(c.Password) {
			t.Fatalf("parts %q %q of %q", c.User, c.Password, c.UserPass)
		}
		// ...and is the one encoding of what it decodes to, after the scheme.
		canonical := "Basic " + base64.StdEncoding.EncodeToString(c.UserPass)
		if !strings.EqualFold(string(value[:5]), "basic") || string(value[5:]) != canonical[5:] {
			t.Fatalf("accepted %q, which is not %q", value, canonical)
		}
	})
}
