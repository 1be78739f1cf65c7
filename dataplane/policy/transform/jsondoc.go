package transform

import (
	"sync"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/tollgate/tollgate/internal/jsonx"
)

// document is a JSON body as a tree of nodes that point into the body's
// bytes: only the containers along an edited path are looked at, and every
// value the edits do not touch is written back exactly as it came (numbers
// keep their precision, strings their escapes). The nodes live in one
// slice, linked by index, and documents are pooled, so editing a body
// allocates nothing once the pool is warm.
//
// The tree is only built from bytes already checked to be JSON (jsonscan),
// within a nesting bound, so the parser does not check again.
type document struct {
	src   []byte // the body
	arena []byte // values added by the edits, as JSON text
	nodes []node
	root  int32
	key   []byte // scratch for decoding escaped keys
}

type kind uint8

const (
	kindScalar kind = iota // string, number, true, false, null
	kindObject
	kindArray
)

// span is a piece of the body (or of the arena).
type span struct {
	lo, hi int32
	arena  bool
}

type node struct {
	kind  kind
	key   span  // a member's name, as its JSON string with quotes
	raw   span  // a scalar's text
	first int32 // a container's first child, -1 for none
	next  int32 // the next member or item, -1 for none
}

const none = -1

var documentPool = sync.Pool{New: func() any { return &document{nodes: make([]node, 0, 64)} }}

// maxPooledNodes keeps a huge document's node slice out of the pool.
const maxPooledNodes = 1 << 14

func getDocument(src []byte) *document {
	d := documentPool.Get().(*document)
	d.src = src
	d.root, _ = d.parse(src, false, 0)
	return d
}

func putDocument(d *document) {
	if cap(d.nodes) > maxPooledNodes || cap(d.arena) > maxPooledScratch {
		return
	}
	d.src, d.arena, d.nodes, d.key = nil, d.arena[:0], d.nodes[:0], d.key[:0]
	documentPool.Put(d)
}

func (d *document) bytes(s span) []byte {
	if s.arena {
		return d.arena[s.lo:s.hi]
	}
	return d.src[s.lo:s.hi]
}

func (d *document) newNode(k kind) int32 {
	d.nodes = append(d.nodes, node{kind: k, first: none, next: none})
	return int32(len(d.nodes) - 1)
}

// parse builds the value starting at or after pos in buf (d.src or
// d.arena) and returns it with the offset just past it.
func (d *document) parse(buf []byte, arena bool, pos int) (int32, int) {
	pos = skipSpace(buf, pos)
	switch buf[pos] {
	case '{':
		n := d.newNode(kindObject)
		last := int32(none)
		pos = skipSpace(buf, pos+1)
		for buf[pos] != '}' {
			kend := stringEnd(buf, pos)
			key := span{int32(pos), int32(kend), arena}
			pos = skipSpace(buf, kend) + 1 // past ':'
			var v int32
			v, pos = d.parse(buf, arena, pos)
			d.nodes[v].key = key
			last = d.link(n, last, v)
			pos = skipSpace(buf, pos)
			if buf[pos] == ',' {
				pos = skipSpace(buf, pos+1)
			}
		}
		return n, pos + 1
	case '[':
		n := d.newNode(kindArray)
		last := int32(none)
		pos = skipSpace(buf, pos+1)
		for buf[pos] != ']' {
			var v int32
			v, pos = d.parse(buf, arena, pos)
			last = d.link(n, last, v)
			pos = skipSpace(buf, pos)
			if buf[pos] == ',' {
				pos = skipSpace(buf, pos+1)
			}
		}
		return n, pos + 1
	case '"':
		end := stringEnd(buf, pos)
		n := d.newNode(kindScalar)
		d.nodes[n].raw = span{int32(pos), int32(end), arena}
		return n, end
	}
	end := pos
	for end < len(buf) && !isDelimiter(buf[end]) {
		end++
	}
	n := d.newNode(kindScalar)
	d.nodes[n].raw = span{int32(pos), int32(end), arena}
	return n, end
}

// link puts v after last (the container's last child so far, or none) and
// returns v.
func (d *document) link(container, last, v int32) int32 {
	if last == none {
		d.nodes[container].first = v
	} else {
		d.nodes[last].next = v
	}
	return v
}

// unlink takes c, which follows prev (none: c is the first), out of its
// container.
func (d *document) unlink(container, prev, c int32) {
	if prev == none {
		d.nodes[container].first = d.nodes[c].next
	} else {
		d.nodes[prev].next = d.nodes[c].next
	}
	d.nodes[c].next = none
}

// insertAfter puts c after prev (none: first) in container.
func (d *document) insertAfter(container, prev, c int32) {
	if prev == none {
		d.nodes[c].next = d.nodes[container].first
		d.nodes[container].first = c
	} else {
		d.nodes[c].next = d.nodes[prev].next
		d.nodes[prev].next = c
	}
}

// member finds the member name of obj, and the node before it. A name the
// object holds more than once is collapsed to its last occurrence, the one
// most JSON parsers keep: an edit must change what the upstream will read.
func (d *document) member(obj int32, name string) (prev, found int32) {
	prev, found = none, none
	before := int32(none) // the node before c
	for c := d.nodes[obj].first; c != none; {
		next := d.nodes[c].next
		if d.keyIs(c, name) {
			if found != none {
				d.unlink(obj, prev, found)
				if before == found {
					before = prev
				}
			}
			prev, found = before, c
		}
		before = c
		c = next
	}
	return prev, found
}

// item finds the i-th item of arr and the node before it.
func (d *document) item(arr int32, i int) (prev, found int32) {
	prev = none
	for c := d.nodes[arr].first; c != none; c = d.nodes[c].next {
		if i == 0 {
			return prev, c
		}
		i--
		prev = c
	}
	return prev, none // prev: the last item
}

// lastChild returns a container's last child, or none.
func (d *document) lastChild(c int32) int32 {
	last := int32(none)
	for n := d.nodes[c].first; n != none; n = d.nodes[n].next {
		last = n
	}
	return last
}

// keyIs reports whether member c is named name.
func (d *document) keyIs(c int32, name string) bool {
	raw := d.bytes(d.nodes[c].key)
	raw = raw[1 : len(raw)-1]
	for _, ch := range raw {
		if ch == '\\' {
			d.key = unquoteJSON(d.key[:0], raw)
			return string(d.key) == name
		}
	}
	return string(raw) == name
}

// setKey names member c, with a key written into the arena.
func (d *document) setKey(c int32, name string) {
	lo := len(d.arena)
	d.arena = jsonx.AppendString(d.arena, name)
	d.nodes[c].key = span{int32(lo), int32(len(d.arena)), true}
}

// write appends the document, compact, to dst.
func (d *document) write(dst []byte, n int32) []byte {
	nd := &d.nodes[n]
	switch nd.kind {
	case kindObject:
		dst = append(dst, '{')
		for c := nd.first; c != none; c = d.nodes[c].next {
			if c != nd.first {
				dst = append(dst, ',')
			}
			dst = append(dst, d.bytes(d.nodes[c].key)...)
			dst = append(dst, ':')
			dst = d.write(dst, c)
		}
		return append(dst, '}')
	case kindArray:
		dst = append(dst, '[')
		for c := nd.first; c != none; c = d.nodes[c].next {
			if c != nd.first {
				dst = append(dst, ',')
			}
			dst = d.write(dst, c)
		}
		return append(dst, ']')
	}
	return append(dst, d.bytes(nd.raw)...)
}

func skipSpace(b []byte, pos int) int {
	for pos < len(b) && (b[pos] == ' ' || b[pos] == '\t' || b[pos] == '\n' || b[pos] == '\r') {
		pos++
	}
	return pos
}

// stringEnd returns the offset just past the string starting at pos.
func stringEnd(b []byte, pos int) int {
	for i := pos + 1; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

func isDelimiter(c byte) bool {
	return c == ',' || c == '}' || c == ']' || c == ' ' || c == '\t' || c == '\n' || c == '\r'
}

// unquoteJSON appends the decoded text of a JSON string's inside (valid
// JSON), as encoding/json decodes it: a lone surrogate becomes U+FFFD.
func unquoteJSON(dst, s []byte) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			dst = append(dst, c)
			continue
		}
		i++
		switch s[i] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := rune(hex4(s[i+1 : i+5]))
			i += 4
			if utf16.IsSurrogate(r) {
				r2 := utf8.RuneError
				if i+6 < len(s) && s[i+1] == '\\' && s[i+2] == 'u' {
					r2 = rune(hex4(s[i+3 : i+7]))
				}
				if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
					r = dec
					i += 6
				} else {
					r = utf8.RuneError
				}
			}
			dst = utf8.AppendRune(dst, r)
		default: // '"', '\\', '/'
			dst = append(dst, s[i])
		}
	}
	return dst
}

func hex4(b []byte) uint32 {
	var v uint32
	for _, c := range b[:4] {
		v = v<<4 | uint32(unhex(c))
	}
	return v
}
