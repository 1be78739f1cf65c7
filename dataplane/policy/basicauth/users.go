package basicauth

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/tollgate/tollgate/dataplane/policy"
)

// CacheSize bounds the successful checks remembered per snapshot; when it
// is reached they are all forgotten and the memory starts afresh.
const CacheSize = 10_000

// users is the basic-auth credentials of a snapshot's consumers, shared by
// all of the snapshot's routes.
type users struct {
	byName map[string]user
	// dummy is checked for unknown usernames, so that they take as long to
	// refuse as wrong passwords.
	dummy    passwordHash
	verified verifiedCache
	// slow bounds the hash checks running at once.
	slow chan struct{}
}

type user struct {
	consumer *policy.Consumer
	hash     passwordHash
}

// check returns the consumer whose credentials c are, or nil.
func (u *users) check(c Credentials) *policy.Consumer {
	key := sha256.Sum256(c.UserPass)
	if cons := u.verified.get(&key); cons != nil {
		return cons
	}
	found, known := u.byName[string(c.User)]
	hash := u.dummy
	if known {
		hash = found.hash
	}
	// Hashes are called through an interface, which the compiler assumes
	// keeps its arguments: a copy lets the caller's buffer stay on its
	// stack on the fast path above.
	password := bytes.Clone(c.Password)
	u.slow <- struct{}{}
	ok := hash.matches(password)
	<-u.slow
	if !known || !ok {
		return nil
	}
	u.verified.put(&key, found.consumer)
	return found.consumer
}

// verifiedCache remembers which consumer a checked "user:password" (by its
// SHA-256) belongs to.
type verifiedCache struct {
	mu sync.RWMutex
	m  map[[sha256.Size]byte]*policy.Consumer
}

func (c *verifiedCache) get(key *[sha256.Size]byte) *policy.Consumer {
	c.mu.RLock()
	cons := c.m[*key]
	c.mu.RUnlock()
	return cons
}

func (c *verifiedCache) put(key *[sha256.Size]byte, cons *policy.Consumer) {
	c.mu.Lock()
	if c.m == nil || len(c.m) >= CacheSize {
		c.m = make(map[[sha256.Size]byte]*policy.Consumer)
	}
	c.m[*key] = cons
	c.mu.Unlock()
}

func (c *verifiedCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}

// hashMemo keeps the hashes made of clear-text passwords (and the dummies)
// from one snapshot to the next, so that a reload hashes only the passwords
// that changed. It lives in the policy state.
type hashMemo struct {
	mu     sync.Mutex
	hashes map[[sha256.Size]byte]passwordHash
}

// memoKey hashes parts, each preceded by its length so that no two lists
// of parts hash alike.
func memoKey(parts ...string) [sha256.Size]byte {
	h := sha256.New()
	for _, p := range parts {
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(p))))
		h.Write([]byte(p))
	}
	return [sha256.Size]byte(h.Sum(nil))
}

// buildUsers indexes the consumers' basic-auth credentials, hashing the
// passwords written in the clear (those memo does not know yet).
func buildUsers(consumers *policy.Directory, memo *hashMemo) (*users, error) {
	memo.mu.Lock()
	defer memo.mu.Unlock()
	next := map[[sha256.Size]byte]passwordHash{}
	type clearPassword struct {
		name, password string
		key            [sha256.Size]byte
		hash           passwordHash
		err            error
	}
	var toHash []*clearPassword
	u := &users{byName: map[string]user{}, slow: make(chan struct{}, runtime.GOMAXPROCS(0))}
	for _, c := range consumers.All() {
		for _, cred := range c.Credentials.BasicAuth {
			name := cred.Username
			if name == "" || cred.Password == "" {
				continue // refused by the configuration's validation
			}
			if strings.Contains(name, ":") {
				return nil, fmt.Errorf("consumer %q: username %q contains a colon, which Basic credentials cannot carry", c.Name, name)
			}
			if prev, dup := u.byName[name]; dup {
				if prev.consumer == c {
					return nil, fmt.Errorf("consumer %q has the username %q twice", c.Name, name)
				}
				return nil, fmt.Errorf("consumers %q and %q have the same username %q", prev.consumer.Name, c.Name, name)
			}
			entry := user{consumer: c}
			if isHashed(cred.Password) {
				h, err := parseHash(cred.Password)
				if err != nil {
					return nil, fmt.Errorf("consumer %q: the password of %q %v", c.Name, name, err)
				}
				entry.hash = h
			} else if looksHashed(cred.Password) {
				return nil, fmt.Errorf("consumer %q: the password of %q looks like a hash of a kind basic-auth does not support; use bcrypt ($2b$), argon2id ($argon2id$) or the password in the clear", c.Name, name)
			} else {
				key := memoKey("clear", strconv.Itoa(clearCost), name, cred.Password)
				if h, ok := memo.hashes[key]; ok {
					entry.hash = h
					next[key] = h
				} else {
					p := &clearPassword{name: name, password: cred.Password, key: key}
					toHash = append(toHash, p)
				}
			}
			u.byName[name] = entry
		}
	}
	var wg sync.WaitGroup
	slots := make(chan struct{}, runtime.GOMAXPROCS(0))
	for _, p := range toHash {
		wg.Go(func() {
			slots <- struct{}{}
			p.hash, p.err = hashBcrypt([]byte(p.password), clearCost)
			<-slots
		})
	}
	wg.Wait()
	for _, p := range toHash {
		if p.err != nil {
			return nil, fmt.Errorf("consumer %q: the password of %q %v", u.byName[p.name].consumer.Name, p.name, p.err)
		}
		entry := u.byName[p.name]
		entry.hash = p.hash
		u.byName[p.name] = entry
		next[p.key] = p.hash
	}

	// The dummy has the class most passwords have: with one cost for all of
	// them (advised), no username can be told from an unknown one.
	class, exemplar := mostCommonClass(u.byName)
	if exemplar == nil {
		exemplar = &bcryptHash{cost: clearCost}
		class = exemplar.class()
	}
	key := memoKey("dummy", class)
	dummy, ok := memo.hashes[key]
	if !ok {
		var err error
		if dummy, err = exemplar.dummy(); err != nil {
			return nil, err
		}
	}
	next[key] = dummy
	u.dummy = dummy
	memo.hashes = next
	return u, nil
}

// mostCommonClass returns the hash class most users have (on a tie, the
// first in sort order, so a configuration always gets the same) and one of
// its hashes.
func mostCommonClass(byName map[string]user) (string, passwordHash) {
	counts := map[string]int{}
	exemplars := map[string]passwordHash{}
	for _, u := range byName {
		c := u.hash.class()
		counts[c]++
		exemplars[c] = u.hash
	}
	classes := slices.SortedFunc(maps.Keys(counts), func(a, b string) int {
		if c := cmp.Compare(counts[b], counts[a]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	if len(classes) == 0 {
		return "", nil
	}
	return classes[0], exemplars[classes[0]]
}
