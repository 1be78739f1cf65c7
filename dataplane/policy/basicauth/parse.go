package basicauth

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"unicode/utf8"
)

// MaxCredentialsLen bounds the decoded "user:password" of Basic
// credentials; longer ones are malformed.
const MaxCredentialsLen = 1024

// Errors of ParseAuthorization.
var (
	// ErrNotBasic is an Authorization header of another scheme.
	ErrNotBasic = errors.New("basicauth: not the Basic scheme")
	// ErrMalformed is Basic credentials that do not follow RFC 7617.
	ErrMalformed = errors.New("basicauth: malformed Basic credentials")
)

// Credentials are decoded Basic credentials. The slices point into the
// buffer given to ParseAuthorization.
type Credentials struct {
	// UserPass is the decoded "user:password"; User and Password are its
	// parts on either side of the first colon.
	UserPass, User, Password []byte
}

var strictBase64 = base64.StdEncoding.Strict()

// ParseAuthorization decodes the value of an Authorization header carrying
// Basic credentials into buf, which needs MaxCredentialsLen bytes to take
// the longest credentials accepted. It returns ErrNotBasic for another
// scheme and ErrMalformed for Basic credentials it refuses.
func ParseAuthorization(value, buf []byte) (Credentials, error) {
	const scheme = "basic"
	if len(value) < len(scheme) || !equalFoldASCII(value[:len(scheme)], scheme) {
		return Credentials{}, ErrNotBasic
	}
	rest := value[len(scheme):]
	switch {
	case len(rest) > 0 && isTokenChar(rest[0]):
		return Credentials{}, ErrNotBasic // a scheme that starts with "basic"
	case len(rest) < 2 || rest[0] != ' ':
		return Credentials{}, ErrMalformed
	}
	token := rest[1:]
	for _, c := range token {
		// Decoding skips CR and LF; nothing but the alphabet is allowed here.
		if !isBase64Char(c) {
			return Credentials{}, ErrMalformed
		}
	}
	if strictBase64.DecodedLen(len(token)) > len(buf) {
		return Credentials{}, ErrMalformed
	}
	n, err := strictBase64.Decode(buf, token)
	if err != nil {
		return Credentials{}, ErrMalformed
	}
	userPass := buf[:n]
	colon := bytes.IndexByte(userPass, ':')
	if colon < 1 { // no colon, or no user
		return Credentials{}, ErrMalformed
	}
	for _, c := range userPass {
		if c < 0x20 || c == 0x7f {
			return Credentials{}, ErrMalformed
		}
	}
	if !utf8.Valid(userPass) {
		return Credentials{}, ErrMalformed
	}
	return Credentials{UserPass: userPass, User: userPass[:colon], Password: userPass[colon+1:]}, nil
}

// equalFoldASCII reports whether b is lower, ignoring the case of ASCII
// letters.
func equalFoldASCII(b []byte, lower string) bool {
	for i := range len(lower) {
		if b[i]|0x20 != lower[i] {
			return false
		}
	}
	return true
}

// isTokenChar reports whether c may appear in an auth-scheme (RFC 9110 tchar).
func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return c != 0 && strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func isBase64Char(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return c == '+' || c == '/' || c == '='
}
