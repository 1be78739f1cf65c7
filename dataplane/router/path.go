package router

import "errors"

// ErrInvalidPath is wrapped by every error NormalizePath returns, so callers
// can answer 400 without inspecting the reason.
var ErrInvalidPath = errors.New("invalid path")

type pathError struct{ reason string }

func (e *pathError) Error() string { return "invalid path: " + e.reason }
func (e *pathError) Unwrap() error { return ErrInvalidPath }

// Preallocated so rejecting hostile input costs no allocation.
var (
	errNotAbsolute  = &pathError{"does not start with /"}
	errEncodedSlash = &pathError{"encoded slash or backslash"}
	errBackslash    = &pathError{"backslash"}
	errNUL          = &pathError{"NUL byte"}
	errControl      = &pathError{"control character or space"}
	errNonASCII     = &pathError{"raw byte >= 0x80"}
	errBadEscape    = &pathError{"malformed percent escape"}
)

// NormalizePath returns the canonical form of a request path (without the
// query string), the form used for routing, policies and forwarding:
//
//   - percent-escapes of unreserved characters (ALPHA DIGIT - . _ ~) are
//     decoded, other escapes keep their encoding with uppercase hex;
//   - duplicate slashes collapse, "." and ".." segments are resolved and never
//     climb above the root, a trailing slash is kept;
//   - an encoded slash or backslash (%2F, %5C), a backslash, NUL or %00, a
//     control character or space, a raw byte >= 0x80, a malformed escape or a
//     path not starting with "/" is an error wrapping ErrInvalidPath.
//
// Decoding happens once: "%252e" is the literal text "%2e", never a dot.
// When p is already canonical it is returned as is, without allocating.
func NormalizePath(p []byte) ([]byte, error) {
	out, canonical, err := normalize(p)
	if err != nil {
		return nil, err
	}
	if canonical {
		return p, nil
	}
	return out, nil
}

// NormalizePathString is NormalizePath for strings; a canonical s is
// returned as is, without allocating.
func NormalizePathString(s string) (string, error) {
	out, canonical, err := normalize(s)
	if err != nil {
		return "", err
	}
	if canonical {
		return s, nil
	}
	return string(out), nil
}

// normalize first checks whether p is canonical (the common case, no
// allocation) and only then rewrites it.
func normalize[T string | []byte](p T) (out []byte, canonical bool, err error) {
	canonical, err = isCanonical(p)
	if err != nil || canonical {
		return nil, canonical, err
	}
	return rewrite(p), false, nil
}

// isCanonical validates p and reports whether rewrite would leave it unchanged.
func isCanonical[T string | []byte](p T) (bool, error) {
	if len(p) == 0 || p[0] != '/' {
		return false, errNotAbsolute
	}
	canonical := true
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '%':
			if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
				return false, errBadEscape
			}
			v := unhex(p[i+1])<<4 | unhex(p[i+2])
			switch {
			case v == '/' || v == '\\':
				return false, errEncodedSlash
			case v == 0:
				return false, errNUL
			case isUnreserved(v) || isLowerHex(p[i+1]) || isLowerHex(p[i+2]):
				canonical = false
			}
			i += 2
		case c == '/':
			// "//", "/." and "/.." segments are rewritten.
			rest := len(p) - i - 1
			switch {
			case rest >= 1 && p[i+1] == '/':
				canonical = false
			case rest >= 1 && p[i+1] == '.' && (rest == 1 || p[i+2] == '/'):
				canonical = false
			case rest >= 2 && p[i+1] == '.' && p[i+2] == '.' && (rest == 2 || p[i+3] == '/'):
				canonical = false
			}
		case c == '\\':
			return false, errBackslash
		case c == 0:
			return false, errNUL
		case c <= ' ' || c == 0x7f:
			return false, errControl
		case c >= 0x80:
			return false, errNonASCII
		}
	}
	return canonical, nil
}

// rewrite builds the canonical form of a path isCanonical has validated.
// It walks the raw segments (an encoded slash was rejected, so every raw
// '/' is a separator), decodes each into out, then resolves it if it turned
// out to be "." or "..".
func rewrite[T string | []byte](p T) []byte {
	out := make([]byte, 1, len(p))
	out[0] = '/'
	for i := 1; i <= len(p); {
		j := i
		for j < len(p) && p[j] != '/' {
			j++
		}
		last := j == len(p)
		start := len(out)
		for k := i; k < j; k++ {
			c := p[k]
			if c == '%' {
				v := unhex(p[k+1])<<4 | unhex(p[k+2])
				if isUnreserved(v) {
					out = append(out, v)
				} else {
					out = append(out, '%', upperHex(p[k+1]), upperHex(p[k+2]))
				}
				k += 2
				continue
			}
			out = append(out, c)
		}
		seg := out[start:]
		switch {
		case len(seg) == 0:
			// A duplicate slash collapses; a trailing one is already in out.
		case len(seg) == 1 && seg[0] == '.':
			out = out[:start]
		case len(seg) == 2 && seg[0] == '.' && seg[1] == '.':
			out = out[:start]
			if start > 1 {
				// Drop the previous segment, keep its leading slash.
				k := start - 2
				for out[k] != '/' {
					k--
				}
				out = out[:k+1]
			}
		default:
			if !last {
				out = append(out, '/')
			}
		}
		i = j + 1
	}
	return out
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isLowerHex(c byte) bool { return 'a' <= c && c <= 'f' }

func upperHex(c byte) byte {
	if isLowerHex(c) {
		return c - 'a' + 'A'
	}
	return c
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// isUnreserved reports the RFC 3986 unreserved characters, the only ones
// whose escapes may be decoded without changing a URI's meaning.
func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}
