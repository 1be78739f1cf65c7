// Package store keeps the cache policy's stored responses: in memory, as a
// byte-bounded LRU sharded by key, and in Redis, shared by every gateway
// that uses the same Redis and key prefix.
//
// A stored response is an Entry, immutable once made, so a hit hands out
// the same Entry (and its body bytes, and its ready-made answer) to any
// number of concurrent requests without copying.
//
// Entries are found in two steps, as HTTP's Vary asks: a resource (route,
// host, path and query) records the request header names its responses
// vary on; the request's values of those names (and, when the policy says
// so, its consumer) make the variant. In Redis the resource's names and
// each variant are keys of their own, named by hashes of their parts so
// that a route's or a path's keys can be found by pattern for a purge; an
// entry carries its full resource and variant, checked when it is read, so
// a hash collision is a miss and never a wrong answer.
package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"

	"github.com/tollgate/tollgate/dataplane/policy"
)

// Field is one stored response header (several lines joined by ", ").
type Field struct{ Name, Value string }

// Entry is a stored response.
type Entry struct {
	// Resource and Variant are the keys the entry is stored under (see
	// ResourceKey).
	Resource, Variant string
	Status            int
	Header            []Field
	Body              []byte
	// AgeBase is when the response would have had age 0 (when it arrived,
	// less the Age it arrived with); Expires when it stops being fresh.
	// Both in Unix nanoseconds.
	AgeBase, Expires int64
	// Shared lets the entry answer requests carrying Authorization (the
	// response said public, s-maxage or must-revalidate).
	Shared bool

	// Answer is the policy's answer made of the entry, shared by every hit;
	// NotModified its 304 for a matching conditional request.
	Answer, NotModified *policy.Reject
	// ETag and LastModified are the validators conditional requests are
	// compared with ("" when the response had none).
	ETag, LastModified string
	size               int64
}

// entryOverhead approximates the memory an entry costs besides its bytes
// (structs, map slots, list links), so that many small entries are bounded
// too.
const entryOverhead = 256

// Seal computes what an entry derives from its fields (answers,
// validators, size); call it once the fields are set, before sharing it.
func (e *Entry) Seal() *Entry {
	if e.Body == nil {
		e.Body = []byte{}
	}
	e.Answer = &policy.Reject{Status: e.Status, Body: e.Body}
	e.NotModified = &policy.Reject{Status: 304}
	e.size = entryOverhead + int64(len(e.Resource)+len(e.Variant)+len(e.Body))
	for _, f := range e.Header {
		e.size += int64(len(f.Name) + len(f.Value))
		switch {
		case strings.EqualFold(f.Name, "ETag"):
			e.ETag = f.Value
		case strings.EqualFold(f.Name, "Last-Modified"):
			e.LastModified = f.Value
		}
	}
	return e
}

// Size is the memory the entry counts for in the LRU.
func (e *Entry) Size() int64 { return e.size }

// Fresh reports whether the entry may still answer at now (Unix ns).
func (e *Entry) Fresh(now int64) bool { return now < e.Expires }

// Age is the entry's age at now, in whole seconds.
func (e *Entry) Age(now int64) int64 { return max(0, (now-e.AgeBase)/1e9) }

// encoding: magic and version, then status (uint16), flags, AgeBase,
// Expires (int64 each), resource, variant, the header count and each
// name and value (uvarint lengths), and the body to the end.
const (
	magic0, magic1, version = 'T', 'C', 1
	flagShared              = 1
)

// Encode appends the entry's binary form to dst.
func (e *Entry) Encode(dst []byte) []byte {
	dst = append(dst, magic0, magic1, version)
	dst = binary.BigEndian.AppendUint16(dst, uint16(e.Status))
	var flags byte
	if e.Shared {
		flags |= flagShared
	}
	dst = append(dst, flags)
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.AgeBase))
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.Expires))
	dst = appendString(dst, e.Resource)
	dst = appendString(dst, e.Variant)
	dst = binary.AppendUvarint(dst, uint64(len(e.Header)))
	for _, f := range e.Header {
		dst = appendString(dst, f.Name)
		dst = appendString(dst, f.Value)
	}
	return append(dst, e.Body...)
}

func appendString(dst []byte, s string) []byte {
	return append(binary.AppendUvarint(dst, uint64(len(s))), s...)
}

var errCorrupt = errors.New("cache entry: not a stored response of this version")

// Decode reads an entry written by Encode; the body keeps pointing into b.
func Decode(b []byte) (*Entry, error) {
	const fixed = 3 + 2 + 1 + 8 + 8
	if len(b) < fixed || b[0] != magic0 || b[1] != magic1 || b[2] != version {
		return nil, errCorrupt
	}
	e := &Entry{Status: int(binary.BigEndian.Uint16(b[3:]))}
	e.Shared = b[5]&flagShared != 0
	e.AgeBase = int64(binary.BigEndian.Uint64(b[6:]))
	e.Expires = int64(binary.BigEndian.Uint64(b[14:]))
	r := reader{b: b[fixed:]}
	e.Resource = r.string()
	e.Variant = r.string()
	n := r.uvarint()
	if n > uint64(len(r.b)) { // each header takes at least a byte
		return nil, errCorrupt
	}
	e.Header = make([]Field, 0, n)
	for range n {
		e.Header = append(e.Header, Field{Name: r.string(), Value: r.string()})
	}
	if r.bad {
		return nil, errCorrupt
	}
	e.Body = r.b
	return e.Seal(), nil
}

type reader struct {
	b   []byte
	bad bool
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.bad = true
		r.b = nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) string() string {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.bad = true
		r.b = nil
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

// ResourceKey appends a resource's key to dst: the route, the host in
// lower case and the request target (path and query), separated by NUL,
// which none of them can hold.
func ResourceKey(dst []byte, route string, host, target []byte) []byte {
	dst = append(dst, route...)
	dst = append(dst, 0)
	for _, c := range host {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	dst = append(dst, 0)
	return append(dst, target...)
}

// splitResource returns the parts of a resource key.
func splitResource(key string) (route, host, target string) {
	route, rest, _ := strings.Cut(key, "\x00")
	host, target, _ = strings.Cut(rest, "\x00")
	return route, host, target
}

// Scope selects stored resources for a purge: every one (Route ""), a
// route's, or one request target of a route, for one host or, with Host
// "", whatever host it was asked for.
type Scope struct {
	Route, Host, Target string
}

// matches reports whether a resource key is in the scope.
func (s Scope) matches(key string) bool {
	if s.Route == "" {
		return true
	}
	route, host, target := splitResource(key)
	if route != s.Route {
		return false
	}
	if s.Target == "" {
		return true
	}
	return target == s.Target && (s.Host == "" || host == strings.ToLower(s.Host))
}

// encodeNames is the value of a resource's names key in Redis: the
// resource key, NUL, and the names separated by NUL.
func encodeNames(resource string, names []string) []byte {
	b := append([]byte(resource), 0)
	return append(b, strings.Join(names, "\x00")...)
}

// decodeNames reads a names value, reporting whether it belongs to the
// resource.
func decodeNames(b []byte, resource string) ([]string, bool) {
	if len(b) < len(resource)+1 || string(b[:len(resource)]) != resource || b[len(resource)] != 0 {
		return nil, false
	}
	rest := b[len(resource)+1:]
	if len(rest) == 0 {
		return []string{}, true
	}
	parts := bytes.Split(rest, []byte{0})
	names := make([]string, len(parts))
	for i, p := range parts {
		names[i] = string(p)
	}
	return names, true
}
