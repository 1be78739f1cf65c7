package basicauth_test

import (
	"strings"
	"testing"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/dataplane/policy"
)

func TestUnknownSettingIsLocated(t *testing.T) {
	_, err := config.Parse("t.yaml", []byte(`services:
  - name: echo
    targets: [{url: "http://127.0.0.1:1"}]
routes:
  - name: api
    paths: ["/"]
    service: echo
    policies:
      basic-auth:
        hide_credential: true
`))
	want := `t.yaml:10:9: unknown field "hide_credential"; did you mean "hide_credentials"?`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("got %v\nwant %s", err, want)
	}
}

func compile(t *testing.T, cs ...config.Consumer) error {
	t.Helper()
	_, err := policy.Compile(config.Policies{"basic-auth": map[string]any{}}, &policy.Build{
		Route: "api", Consumers: policy.NewDirectory(cs), Shared: policy.NewShared(), State: policy.NewState(),
	})
	return err
}

func withPasswords(name string, creds ...string) config.Consumer {
	c := config.Consumer{Name: name}
	for i := 0; i+1 < len(creds); i += 2 {
		c.Credentials.BasicAuth = append(c.Credentials.BasicAuth, config.BasicCredential{Username: creds[i], Password: creds[i+1]})
	}
	return c
}

func TestConfigurationRefused(t *testing.T) {
	salt, key := "c2FsdHNhbHRzYWx0", "a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5" // 12 and 30 bytes
	for _, tc := range []struct {
		name      string
		consumers []config.Consumer
		want      string
	}{
		{"same username", []config.Consumer{withPasswords("alice", "al", "$2a$04$abcdefghijklmnopqrstuu5Ayo2EYa3Qt4oVQ/wNgxQUGxqSXuTa6"), withPasswords("bob", "al", "x")},
			`consumers "alice" and "bob" have the same username "al"`},
		{"username twice", []config.Consumer{withPasswords("alice", "al", "x", "al", "y")},
			`consumer "alice" has the username "al" twice`},
		{"colon in username", []config.Consumer{withPasswords("alice", "a:l", "x")},
			`username "a:l" contains a colon`},
		{"long clear password", []config.Consumer{withPasswords("alice", "al", strings.Repeat("x", 73))},
			`the password of "al" is longer than 72 bytes`},
		{"bcrypt lookalike", []config.Consumer{withPasswords("alice", "al", "$2b$10$short")},
			`the password of "al" is not a usable bcrypt hash`},
		{"bcrypt too costly", []config.Consumer{withPasswords("alice", "al", "$2b$15$abcdefghijklmnopqrstuu5Ayo2EYa3Qt4oVQ/wNgxQUGxqSXuTa6")},
			`has bcrypt cost 15, above 14`},
		{"argon2id version", []config.Consumer{withPasswords("alice", "al", "$argon2id$v=16$m=64,t=1,p=1$"+salt+"$"+key)},
			`version "v=16" is not supported`},
		{"argon2id memory", []config.Consumer{withPasswords("alice", "al", "$argon2id$v=19$m=4194304,t=1,p=1$"+salt+"$"+key)},
			`m=4194304 KiB is above`},
		{"argon2id parameters", []config.Consumer{withPasswords("alice", "al", "$argon2id$v=19$t=1,m=64,p=1$"+salt+"$"+key)},
			`want parameters m=M,t=T,p=P`},
		{"htpasswd MD5", []config.Consumer{withPasswords("alice", "al", "$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/")},
			`looks like a hash of a kind basic-auth does not support`},
		{"argon2i", []config.Consumer{withPasswords("alice", "al", "$argon2i$v=19$m=64,t=1,p=1$"+salt+"$"+key)},
			`looks like a hash of a kind basic-auth does not support`},
		{"SHA", []config.Consumer{withPasswords("alice", "al", "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=")},
			`looks like a hash of a kind basic-auth does not support`},
		{"argon2id padded salt", []config.Consumer{withPasswords("alice", "al", "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ=$"+key)},
			`the salt must be`},
	} {
		err := compile(t, tc.consumers...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "xxxx") {
			t.Errorf("%s: the error shows the password: %v", tc.name, err)
		}
	}
}
