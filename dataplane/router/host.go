package router

import "unsafe"

// hostBufLen fits any DNS name (253 bytes) so lowering one needs no heap.
const hostBufLen = 256

// stripHost strips the port and a trailing dot; the result is a substring.
func stripHost(h string) string {
	h = stripPort(h)
	if n := len(h); n > 0 && h[n-1] == '.' {
		h = h[:n-1]
	}
	return h
}

func hasUpper(h string) bool {
	for i := 0; i < len(h); i++ {
		if 'A' <= h[i] && h[i] <= 'Z' {
			return true
		}
	}
	return false
}

// lowerHost lowercases h into buf, which the caller keeps on its stack.
func lowerHost(h string, buf *[hostBufLen]byte) string {
	if len(h) > len(buf) {
		return string(lowerASCII(make([]byte, len(h)), h)) // longer than any DNS name: rare
	}
	// The string aliases buf; it is used only while Match runs.
	return unsafe.String(&lowerASCII(buf[:len(h)], h)[0], len(h))
}

// lowerASCII writes h lowercased into dst, which has h's length. Only ASCII
// letters fold: host names on the wire are ASCII (IDNs travel as punycode).
func lowerASCII(dst []byte, h string) []byte {
	for i := 0; i < len(h); i++ {
		c := h[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst[i] = c
	}
	return dst
}

// stripPort removes ":port" from "host:port" and "[v6]:port".
func stripPort(h string) string {
	if len(h) > 0 && h[0] == '[' {
		for i := 1; i < len(h); i++ {
			if h[i] == ']' {
				return h[:i+1]
			}
		}
		return h
	}
	for i := len(h) - 1; i >= 0; i-- {
		if h[i] == ':' {
			return h[:i]
		}
	}
	return h
}
