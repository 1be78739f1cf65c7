package keyauth

import "bytes"

// withoutParam appends to dst the query string query (without "?") less
// every parameter whose decoded name is name, the other parameters kept
// byte for byte (empty ones dropped). It reports whether any was removed.
func withoutParam(dst, query []byte, name string) ([]byte, bool) {
	removed := false
	first := true
	for len(query) > 0 {
		pair := query
		if i := bytes.IndexByte(query, '&'); i >= 0 {
			pair, query = query[:i], query[i+1:]
		} else {
			query = nil
		}
		key := pair
		if i := bytes.IndexByte(pair, '='); i >= 0 {
			key = pair[:i]
		}
		if decodedEquals(key, name) {
			removed = true
			continue
		}
		if len(pair) == 0 {
			continue // "a&&b": nothing to keep
		}
		if !first {
			dst = append(dst, '&')
		}
		dst = append(dst, pair...)
		first = false
	}
	return dst, removed
}

// decodedEquals reports whether the query component raw, decoded as the
// request's query is ("+" is a space, "%XX" a byte, a "%" not followed by
// two hex digits itself), is s.
func decodedEquals(raw []byte, s string) bool {
	j := 0
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c == '+':
			c = ' '
		case c == '%' && i+2 < len(raw) && isHex(raw[i+1]) && isHex(raw[i+2]):
			c = unhex(raw[i+1])<<4 | unhex(raw[i+2])
			i += 2
		}
		if j >= len(s) || s[j] != c {
			return false
		}
		j++
	}
	return j == len(s)
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}
