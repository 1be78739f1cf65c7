package basicauth

import (
	"crypto/sha256"
	"fmt"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/dataplane/policy"
)

func directory(creds ...string) *policy.Directory {
	var cs []config.Consumer
	for i := 0; i+1 < len(creds); i += 2 {
		cs = append(cs, config.Consumer{Name: "c-" + creds[i], Credentials: config.Credentials{
			BasicAuth: []config.BasicCredential{{Username: creds[i], Password: creds[i+1]}}}})
	}
	return policy.NewDirectory(cs)
}

func mustHash(t *testing.T, password string, cost int) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func creds(user, pass string) Credentials {
	up := []byte(user + ":" + pass)
	return Credentials{UserPass: up, User: up[:len(user)], Password: up[len(user)+1:]}
}

// cheapClearHashes makes the test hash clear passwords at the lowest cost.
func cheapClearHashes(t *testing.T) {
	clearCost = bcrypt.MinCost
	t.Cleanup(func() { clearCost = BcryptCost })
}

func TestClearPasswordsAreHashedOnceAcrossSnapshots(t *testing.T) {
	cheapClearHashes(t)
	memo := &hashMemo{}
	first, err := buildUsers(directory("alice", "wonderland", "bob", "builder"), memo)
	if err != nil {
		t.Fatal(err)
	}
	h, ok := first.byName["alice"].hash.(*bcryptHash)
	if !ok || h.cost != bcrypt.MinCost || bcrypt.CompareHashAndPassword(h.hash, []byte("wonderland")) != nil {
		t.Fatalf("alice's password hashed as %#v", first.byName["alice"].hash)
	}
	// The next snapshot reuses the hashes (and dummy) of what did not change.
	second, err := buildUsers(directory("alice", "wonderland", "bob", "new"), memo)
	if err != nil {
		t.Fatal(err)
	}
	if second.byName["alice"].hash != first.byName["alice"].hash || second.dummy != first.dummy {
		t.Error("unchanged password hashed again")
	}
	if second.byName["bob"].hash == first.byName["bob"].hash {
		t.Error("changed password kept its old hash")
	}
	// Only what the last snapshot used is kept: two users and the dummy.
	if n := len(memo.hashes); n != 3 {
		t.Errorf("memo keeps %d hashes, want 3", n)
	}
}

func TestUnknownUserIsCheckedAgainstDummyOfTheCommonCost(t *testing.T) {
	u, err := buildUsers(directory(
		"a", mustHash(t, "x", 5), "b", mustHash(t, "x", 5), "c", mustHash(t, "x", 4),
		"d", "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5",
	), &hashMemo{})
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := u.dummy.(*bcryptHash); !ok || d.cost != 5 {
		t.Errorf("dummy %#v, want a bcrypt hash of cost 5", u.dummy)
	}
	if c := u.check(creds("nobody", "x")); c != nil {
		t.Errorf("unknown user accepted as %v", c)
	}

	// With argon2id the most common, the dummy is argon2id with the same
	// parameters.
	phc := func(salt string) string {
		return "$argon2id$v=19$m=64,t=2,p=1$" + salt + "$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5"
	}
	u, err = buildUsers(directory("a", phc("c2FsdHNhbHQ"), "b", phc("dGxhc3RsYXM"), "c", mustHash(t, "x", 4)), &hashMemo{})
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := u.dummy.(*argon2idHash); !ok || d.memory != 64 || d.time != 2 || d.threads != 1 || len(d.key) != 30 {
		t.Errorf("dummy %#v, want argon2id m=64,t=2,p=1", u.dummy)
	}
}

func TestOnlySuccessfulChecksAreRemembered(t *testing.T) {
	u, err := buildUsers(directory("alice", mustHash(t, "pw", 4)), &hashMemo{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []Credentials{creds("alice", "wrong"), creds("nobody", "pw")} {
		if u.check(c) != nil {
			t.Fatalf("%q accepted", c.UserPass)
		}
	}
	if n := u.verified.len(); n != 0 {
		t.Errorf("%d failed checks remembered", n)
	}
	if c := u.check(creds("alice", "pw")); c == nil || c.Name != "c-alice" {
		t.Fatalf("good password: %v", c)
	}
	if n := u.verified.len(); n != 1 {
		t.Errorf("%d checks remembered, want 1", n)
	}
	// Remembered: found again even with the hash gone.
	u.byName["alice"] = user{consumer: u.byName["alice"].consumer, hash: u.dummy}
	if c := u.check(creds("alice", "pw")); c == nil {
		t.Error("remembered login checked again")
	}
}

func TestVerifiedCacheIsBounded(t *testing.T) {
	var c verifiedCache
	cons := &policy.Consumer{Name: "alice"}
	for i := range CacheSize + 10 {
		k := sha256.Sum256([]byte(fmt.Sprint(i)))
		c.put(&k, cons)
		if c.len() > CacheSize {
			t.Fatalf("%d entries after %d puts", c.len(), i+1)
		}
	}
	if n := c.len(); n != 10 {
		t.Errorf("%d entries, want the 10 put since it was last emptied", n)
	}
	k := sha256.Sum256([]byte(fmt.Sprint(CacheSize + 9)))
	if c.get(&k) != cons {
		t.Error("latest entry lost")
	}
}
