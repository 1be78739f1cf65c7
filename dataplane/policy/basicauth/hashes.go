package basicauth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// BcryptCost is the bcrypt cost clear-text passwords are hashed with.
const BcryptCost = bcrypt.DefaultCost

// clearCost is BcryptCost, lowered by tests that hash many passwords.
var clearCost = BcryptCost

// Bounds on configured hashes. Every login (and every wrong password)
// costs one check, so a hash far slower or bigger than usual is refused
// rather than allowed to make the gateway easy to exhaust.
const (
	maxBcryptCost     = 14        // about a second per check
	maxArgon2Memory   = 256 << 10 // KiB
	maxArgon2Time     = 32
	maxArgon2Threads  = 64
	minArgon2SaltLen  = 8
	minArgon2KeyLen   = 16
	maxArgon2KeyLen   = 128
	maxBcryptPassword = 72 // bcrypt ignores the rest, x/crypto refuses it
)

// passwordHash is a stored password hash.
type passwordHash interface {
	// matches reports whether password is the password hashed.
	matches(password []byte) bool
	// class names the algorithm and parameters: checks against hashes of
	// one class take equally long.
	class() string
	// dummy returns a hash of the same class of a random password.
	dummy() (passwordHash, error)
}

// isHashed reports whether a configured password is written as a hash.
func isHashed(password string) bool {
	for _, prefix := range []string{"$2a$", "$2b$", "$2y$", "$argon2id$"} {
		if strings.HasPrefix(password, prefix) {
			return true
		}
	}
	return false
}

// looksHashed reports whether a configured password has the look of a
// hash of a kind not supported ("$apr1$...", "$argon2i$...", "{SHA}...",
// as htpasswd and other tools write them). Taking one for a clear password
// would let anyone who knows the hash log in with it.
func looksHashed(password string) bool {
	if strings.HasPrefix(password, "{SHA}") || strings.HasPrefix(password, "{SSHA}") {
		return true
	}
	rest, ok := strings.CutPrefix(password, "$")
	if !ok {
		return false
	}
	id, rest, ok := strings.Cut(rest, "$")
	return ok && id != "" && rest != "" && strings.Trim(id, "abcdefghijklmnopqrstuvwxyz0123456789-") == ""
}

// parseHash reads a configured password hash (isHashed is true for it).
func parseHash(s string) (passwordHash, error) {
	if strings.HasPrefix(s, "$argon2id$") {
		return parseArgon2id(s)
	}
	return parseBcrypt(s)
}

type bcryptHash struct {
	hash []byte
	cost int
}

func (h *bcryptHash) matches(password []byte) bool {
	return bcrypt.CompareHashAndPassword(h.hash, password) == nil
}

func (h *bcryptHash) class() string { return "bcrypt cost " + strconv.Itoa(h.cost) }

func (h *bcryptHash) dummy() (passwordHash, error) {
	return hashBcrypt([]byte(rand.Text()), h.cost)
}

func hashBcrypt(password []byte, cost int) (*bcryptHash, error) {
	if len(password) > maxBcryptPassword {
		return nil, fmt.Errorf("is longer than %d bytes, which bcrypt cannot hash; configure an argon2id hash of it instead", maxBcryptPassword)
	}
	h, err := bcrypt.GenerateFromPassword(password, cost)
	if err != nil {
		return nil, err
	}
	return &bcryptHash{hash: h, cost: cost}, nil
}

const bcryptAlphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// parseBcrypt reads "$2b$CC$" followed by 22 characters of salt and 31 of
// hash (isHashed checked the prefix).
func parseBcrypt(s string) (*bcryptHash, error) {
	if len(s) != 60 || s[3] != '$' || s[6] != '$' || strings.Trim(s[7:], bcryptAlphabet) != "" {
		return nil, errors.New("is not a usable bcrypt hash: want $2b$, two cost digits, $ and 53 characters")
	}
	cost, err := bcrypt.Cost([]byte(s))
	if err != nil {
		return nil, fmt.Errorf("is not a usable bcrypt hash: %v", err)
	}
	if cost > maxBcryptCost {
		return nil, fmt.Errorf("has bcrypt cost %d, above %d: each login would take seconds", cost, maxBcryptCost)
	}
	return &bcryptHash{hash: []byte(s), cost: cost}, nil
}

type argon2idHash struct {
	memory, time uint32 // memory in KiB
	threads      uint8
	salt, key    []byte
}

func (h *argon2idHash) matches(password []byte) bool {
	key := argon2.IDKey(password, h.salt, h.time, h.memory, h.threads, uint32(len(h.key)))
	return subtle.ConstantTimeCompare(key, h.key) == 1
}

func (h *argon2idHash) class() string {
	return fmt.Sprintf("argon2id m=%d,t=%d,p=%d, %d-byte key", h.memory, h.time, h.threads, len(h.key))
}

// dummy needs no hashing: checking a password against random bytes costs
// the same as against a real key.
func (h *argon2idHash) dummy() (passwordHash, error) {
	d := *h
	d.salt = make([]byte, len(h.salt))
	d.key = make([]byte, len(h.key))
	rand.Read(d.salt)
	rand.Read(d.key)
	return &d, nil
}

var phcBase64 = base64.RawStdEncoding.Strict()

// parseArgon2id reads a PHC string "$argon2id$v=19$m=M,t=T,p=P$SALT$KEY"
// (salt and key in unpadded base64), the form argon2 tools write.
func parseArgon2id(s string) (*argon2idHash, error) {
	bad := func(format string, args ...any) (*argon2idHash, error) {
		return nil, fmt.Errorf("is not a usable argon2id hash: "+format, args...)
	}
	parts := strings.Split(s, "$")
	if len(parts) != 6 {
		return bad("want $argon2id$v=19$m=M,t=T,p=P$SALT$KEY")
	}
	if parts[2] != "v=19" {
		return bad("version %q is not supported, want v=19", parts[2])
	}
	var params [3]uint64
	fields := strings.Split(parts[3], ",")
	if len(fields) != len(params) {
		return bad("want parameters m=M,t=T,p=P, got %q", parts[3])
	}
	for i, name := range []string{"m=", "t=", "p="} {
		v, ok := strings.CutPrefix(fields[i], name)
		n, err := strconv.ParseUint(v, 10, 32)
		if !ok || err != nil {
			return bad("want parameters m=M,t=T,p=P, got %q", parts[3])
		}
		params[i] = n
	}
	h := &argon2idHash{memory: uint32(params[0]), time: uint32(params[1])}
	switch p := params[2]; {
	case p < 1 || p > maxArgon2Threads:
		return bad("p=%d is outside 1..%d", p, maxArgon2Threads)
	default:
		h.threads = uint8(p)
	}
	switch {
	case h.memory > maxArgon2Memory:
		return bad("m=%d KiB is above %d KiB", h.memory, maxArgon2Memory)
	case h.memory < 8*uint32(h.threads):
		return bad("m=%d KiB is below 8 KiB per thread", h.memory)
	case h.time < 1 || h.time > maxArgon2Time:
		return bad("t=%d is outside 1..%d", h.time, maxArgon2Time)
	}
	var err error
	if h.salt, err = phcBase64.DecodeString(parts[4]); err != nil || len(h.salt) < minArgon2SaltLen {
		return bad("the salt must be at least %d bytes in unpadded base64", minArgon2SaltLen)
	}
	if h.key, err = phcBase64.DecodeString(parts[5]); err != nil || len(h.key) < minArgon2KeyLen || len(h.key) > maxArgon2KeyLen {
		return bad("the key must be %d to %d bytes in unpadded base64", minArgon2KeyLen, maxArgon2KeyLen)
	}
	return h, nil
}
