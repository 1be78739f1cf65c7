// Package jsonscan checks the shape of a JSON document in one pass over its
// bytes, without building any value: how deep it nests, how many members its
// objects and items its arrays have, how long its strings are, and whether
// it is JSON at all (exactly as encoding/json.Valid decides, but for the
// nesting limit of 10000 that encoding/json has and Scan leaves to Limits).
//
// It exists because the gateway must refuse a hostile document before the
// upstream parses it, at a cost well below parsing: decoding tokens with
// encoding/json allocates for every string and number, while Scan allocates
// nothing for documents up to 32 levels deep and reads plain string bytes
// eight at a time.
package jsonscan

import (
	"encoding/binary"
	"math/bits"
)

// Limits bound a document's shape; a zero field sets no bound.
type Limits struct {
	// Depth is the deepest nesting of objects and arrays: `{}` is 1,
	// `{"a": [1]}` is 2, a lone scalar 0.
	Depth int
	// Keys is the most members one object may have.
	Keys int
	// ArrayItems is the most items one array may have.
	ArrayItems int
	// StringLength is the longest string, keys included, in bytes once
	// unescaped (`\u00e9` counts as the two bytes of é).
	StringLength int
}

// Problem is what Scan found wrong with a document.
type Problem uint8

// The problems, the first found being reported.
const (
	OK Problem = iota
	// Invalid: not JSON.
	Invalid
	TooDeep
	TooManyKeys
	TooManyItems
	StringTooLong
)

var problemNames = [...]string{"ok", "invalid", "too deep", "too many keys", "too many array items", "string too long"}

func (p Problem) String() string {
	if int(p) < len(problemNames) {
		return problemNames[p]
	}
	return "unknown"
}

// objectBit marks an open object, rather than an array, on the stack.
const objectBit = 1 << 31

// Scan checks data against lim. It returns OK, or the first problem met and
// the offset it was met at.
func Scan(data []byte, lim Limits) (Problem, int) {
	// One entry per open container: its members or items so far, with
	// objectBit set for objects. Kept on the stack for usual depths.
	var small [32]uint32
	stack := small[:0]
	var (
		i    int
		p    Problem
		top  *uint32
		n    = len(data)
		keys = uint32(lim.Keys)
	)

value:
	i = skipSpace(data, i)
	if i >= n {
		return Invalid, i
	}
	switch c := data[i]; c {
	case '{', '[':
		if lim.Depth > 0 && len(stack) >= lim.Depth {
			return TooDeep, i
		}
		i = skipSpace(data, i+1)
		if c == '{' {
			stack = append(stack, objectBit)
			if i < n && data[i] == '}' {
				i++
				stack = stack[:len(stack)-1]
				goto next
			}
			goto key
		}
		stack = append(stack, 1)
		if i < n && data[i] == ']' {
			i++
			stack = stack[:len(stack)-1]
			goto next
		}
		goto value
	case '"':
		if i, p = scanString(data, i+1, lim.StringLength); p != OK {
			return p, i
		}
	case 't':
		if n-i < 4 || string(data[i:i+4]) != "true" {
			return Invalid, i
		}
		i += 4
	case 'f':
		if n-i < 5 || string(data[i:i+5]) != "false" {
			return Invalid, i
		}
		i += 5
	case 'n':
		if n-i < 4 || string(data[i:i+4]) != "null" {
			return Invalid, i
		}
		i += 4
	default:
		end := scanNumber(data, i)
		if end < 0 {
			return Invalid, i
		}
		i = end
	}

next: // a value ended at i
	i = skipSpace(data, i)
	if len(stack) == 0 {
		if i != n {
			return Invalid, i
		}
		return OK, i
	}
	if i >= n {
		return Invalid, i
	}
	top = &stack[len(stack)-1]
	if *top&objectBit != 0 {
		switch data[i] {
		case ',':
			i = skipSpace(data, i+1)
			goto key
		case '}':
			i++
			stack = stack[:len(stack)-1]
			goto next
		}
		return Invalid, i
	}
	switch data[i] {
	case ',':
		*top++
		if lim.ArrayItems > 0 && int(*top) > lim.ArrayItems {
			return TooManyItems, i
		}
		i++
		goto value
	case ']':
		i++
		stack = stack[:len(stack)-1]
		goto next
	}
	return Invalid, i

key: // a member's key is due at i
	if i >= n || data[i] != '"' {
		return Invalid, i
	}
	top = &stack[len(stack)-1]
	*top++
	if keys > 0 && *top&^objectBit > keys {
		return TooManyKeys, i
	}
	if i, p = scanString(data, i+1, lim.StringLength); p != OK {
		return p, i
	}
	i = skipSpace(data, i)
	if i >= n || data[i] != ':' {
		return Invalid, i
	}
	i++
	goto value
}

// isSpace marks JSON's four whitespace bytes.
var isSpace = [256]bool{' ': true, '\t': true, '\n': true, '\r': true}

func skipSpace(data []byte, i int) int {
	for i < len(data) && isSpace[data[i]] {
		i++
	}
	return i
}

// special marks the bytes that end a run of plain string bytes: the quote,
// the backslash and the control characters JSON forbids in strings.
var special = func() (t [256]bool) {
	for c := range 0x20 {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// plainRun returns how many bytes from data[i] on are plain string bytes,
// looking at eight at a time.
func plainRun(data []byte, i int) int {
	start := i
	for ; len(data)-i >= 8; i += 8 {
		w := binary.LittleEndian.Uint64(data[i:])
		// High bit set in each byte that is a quote, a backslash or below
		// 0x20 (the classic "has zero byte" tests; bytes >= 0x80 are masked
		// out by ^w).
		m := ((w ^ (ones * '"')) - ones) | ((w ^ (ones * '\\')) - ones) | (w - ones*0x20)
		if m &= ^w & highs; m != 0 {
			return i - start + bits.TrailingZeros64(m)/8
		}
	}
	for i < len(data) && !special[data[i]] {
		i++
	}
	return i - start
}

// scanString reads a string whose opening quote is before data[i]: it
// returns the offset after the closing quote.
func scanString(data []byte, i, maxLen int) (int, Problem) {
	length := 0
	for {
		run := plainRun(data, i)
		i += run
		length += run
		if maxLen > 0 && length > maxLen {
			return i, StringTooLong
		}
		if i >= len(data) {
			return i, Invalid
		}
		switch data[i] {
		case '"':
			return i + 1, OK
		case '\\':
		default: // a control character
			return i, Invalid
		}
		if i+1 >= len(data) {
			return i, Invalid
		}
		switch data[i+1] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			i += 2
			length++
		case 'u':
			r, ok := hex4(data, i+2)
			if !ok {
				return i, Invalid
			}
			i += 6
			switch {
			case r < 0x80:
				length++
			case r < 0x800:
				length += 2
			case r >= 0xd800 && r < 0xdc00 && len(data)-i >= 6 && data[i] == '\\' && data[i+1] == 'u':
				// A high surrogate followed by a low one is one 4-byte
				// character; any other surrogate decodes to U+FFFD.
				if lo, ok := hex4(data, i+2); ok && lo >= 0xdc00 && lo < 0xe000 {
					i += 6
					length += 4
				} else {
					length += 3
				}
			default:
				length += 3
			}
		default:
			return i, Invalid
		}
	}
}

// hex4 decodes the four hex digits at data[i:].
func hex4(data []byte, i int) (rune, bool) {
	if len(data)-i < 4 {
		return 0, false
	}
	var r rune
	for _, c := range data[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// scanNumber reads a number starting at data[i] and returns the offset after
// it, or -1 when none is there:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func scanNumber(data []byte, i int) int {
	n := len(data)
	if data[i] == '-' {
		i++
		if i >= n {
			return -1
		}
	}
	switch c := data[i]; {
	case c == '0':
		i++
	case c >= '1' && c <= '9':
		i = digits(data, i+1)
	default:
		return -1
	}
	if i < n && data[i] == '.' {
		end := digits(data, i+1)
		if end == i+1 {
			return -1
		}
		i = end
	}
	if i < n && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < n && (data[i] == '+' || data[i] == '-') {
			i++
		}
		end := digits(data, i)
		if end == i {
			return -1
		}
		i = end
	}
	return i
}

func digits(data []byte, i int) int {
	for i < len(data) && data[i] >= '0' && data[i] <= '9' {
		i++
	}
	return i
}
