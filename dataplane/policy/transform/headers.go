package transform

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"unsafe"

	"github.com/tollgate/tollgate/dataplane/policy"
)

// headerEdits are the header settings, compiled: names checked, templates
// parsed, everything in a fixed order.
type headerEdits struct {
	remove []string
	rename []headerRename // by old name
	add    []headerAdd    // by name
}

type headerRename struct{ from, to string }

type headerAdd struct {
	name  string
	value template
}

func (e *headerEdits) empty() bool {
	return len(e.remove) == 0 && len(e.rename) == 0 && len(e.add) == 0
}

func compileHeaders(s *HeaderSettings) (headerEdits, error) {
	var e headerEdits
	e.remove = slices.Clone(s.RemoveHeaders)
	for _, from := range slices.Sorted(maps.Keys(s.RenameHeaders)) {
		e.rename = append(e.rename, headerRename{from: from, to: s.RenameHeaders[from]})
	}
	for _, name := range slices.Sorted(maps.Keys(s.AddHeaders)) {
		t, err := compileTemplate(s.AddHeaders[name])
		if err != nil {
			return headerEdits{}, err
		}
		e.add = append(e.add, headerAdd{name: name, value: t})
	}
	return e, nil
}

// scratch is per-request working memory, pooled: the rendered values and
// where each ends.
type scratch struct {
	buf   []byte // rendered values
	ends  []int  // where each rendered value ends in buf
	tmp   []byte // a header's values being moved, a query being rebuilt
	lines []int  // where each value ends in tmp
	out   []byte // an edited body
}

var scratchPool = sync.Pool{New: func() any { return &scratch{buf: make([]byte, 0, 512)} }}

func getScratch() *scratch { return scratchPool.Get().(*scratch) }

// maxPooledScratch keeps a rare huge body edit from pinning its memory.
const maxPooledScratch = 256 << 10

func putScratch(s *scratch) {
	if cap(s.buf) > maxPooledScratch || cap(s.tmp) > maxPooledScratch || cap(s.out) > maxPooledScratch {
		return
	}
	s.buf, s.ends, s.tmp, s.lines, s.out = s.buf[:0], s.ends[:0], s.tmp[:0], s.lines[:0], s.out[:0]
	scratchPool.Put(s)
}

// renderAdds renders every added value into s before anything changes, so
// that templates read the headers as they reached the policy (a value may
// name a header that is removed or renamed).
func (e *headerEdits) renderAdds(x *policy.Exchange, s *scratch) {
	for i := range e.add {
		start := len(s.buf)
		s.buf = e.add[i].value.render(s.buf, x)
		sanitizeHeaderValue(s.buf[start:])
		s.ends = append(s.ends, len(s.buf))
	}
}

// added returns the i-th value rendered by renderAdds.
func (s *scratch) added(i int) []byte {
	start := 0
	if i > 0 {
		start = s.ends[i-1]
	}
	return s.buf[start:s.ends[i]]
}

// applyRequest edits the request headers: remove, rename, then add. An
// added value that renders empty removes the header, so that a client's own
// copy never goes upstream in its place.
func (e *headerEdits) applyRequest(x *policy.Exchange, s *scratch) {
	e.renderAdds(x, s)
	for _, name := range e.remove {
		x.DelRequestHeader(name)
	}
	for _, r := range e.rename {
		vals := x.HeaderValues(r.from)
		if len(vals) == 0 {
			continue
		}
		// Several lines become one list, as a proxy may combine them
		// (RFC 9110 section 5.3); cookies are joined the way Cookie lists them.
		sep := ", "
		if strings.EqualFold(r.from, "Cookie") || strings.EqualFold(r.to, "Cookie") {
			sep = "; "
		}
		s.tmp = s.tmp[:0]
		for i, v := range vals {
			if i > 0 {
				s.tmp = append(s.tmp, sep...)
			}
			s.tmp = append(s.tmp, v...)
		}
		x.DelRequestHeader(r.from)
		x.SetRequestHeader(r.to, b2s(s.tmp))
	}
	for i := range e.add {
		if v := s.added(i); len(v) > 0 {
			x.SetRequestHeader(e.add[i].name, b2s(v))
		} else {
			x.DelRequestHeader(e.add[i].name)
		}
	}
}

// applyResponse edits the headers of the response about to go out, in the
// same order as applyRequest; a renamed header keeps each of its lines.
func (e *headerEdits) applyResponse(x *policy.Exchange, s *scratch) {
	e.renderAdds(x, s)
	for _, name := range e.remove {
		x.DelResponseHeader(name)
	}
	for _, r := range e.rename {
		vals := x.ResponseHeaderValues(r.from)
		if len(vals) == 0 {
			continue
		}
		// Copied first: the values live in the header being edited.
		s.tmp, s.lines = s.tmp[:0], s.lines[:0]
		for _, v := range vals {
			s.tmp = append(s.tmp, v...)
			s.lines = append(s.lines, len(s.tmp))
		}
		x.DelResponseHeader(r.from)
		x.DelResponseHeader(r.to)
		prev := 0
		for _, end := range s.lines {
			x.AddResponseHeader(r.to, b2s(s.tmp[prev:end]))
			prev = end
		}
	}
	for i := range e.add {
		if v := s.added(i); len(v) > 0 {
			x.SetResponseHeader(e.add[i].name, b2s(v))
		} else {
			x.DelResponseHeader(e.add[i].name)
		}
	}
}

// sanitizeHeaderValue turns control characters (a CR or LF decoded from a
// query parameter) into spaces: a value must not end its header line.
func sanitizeHeaderValue(v []byte) {
	for i, c := range v {
		if c < ' ' && c != '\t' || c == 0x7f {
			v[i] = ' '
		}
	}
}

// checkHeaderName refuses a name that is not a header name, or a header
// the gateway itself controls.
func checkHeaderName(name string, request bool) error {
	if !isToken(name) {
		return fmt.Errorf("%q is not a header name", name)
	}
	if why := gatewayControlled(name, request); why != "" {
		return fmt.Errorf("header %q cannot be changed by a transform: %s", name, why)
	}
	return nil
}

var hopByHop = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "TE", "Trailer", "Transfer-Encoding", "Upgrade",
}

// gatewayControlled says why the gateway keeps a header to itself, or ""
// when a transform may change it.
func gatewayControlled(name string, request bool) string {
	l := strings.ToLower(name)
	switch {
	case l == "host":
		return "the gateway sets it for the upstream target"
	case strings.HasPrefix(l, "x-forwarded-") || l == "forwarded" || l == "x-real-ip":
		return "the gateway sets it from the client connection"
	case strings.HasPrefix(l, "x-consumer-") || strings.HasPrefix(l, "x-authenticated-"):
		return "it names the authenticated consumer, which only the gateway may say"
	case l == "x-request-id":
		return "the gateway sets it to trace the request"
	case l == "content-length":
		return "the gateway sets it from the body"
	case slices.ContainsFunc(hopByHop, func(h string) bool { return strings.EqualFold(h, name) }):
		return "it is a hop-by-hop header, which describes one connection"
	case request && strings.Contains(name, "_"):
		return "the gateway drops request headers with '_' (some backends read them as '-')"
	}
	return ""
}

// isToken reports whether s is an HTTP token (a header name).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// b2s views bytes as a string without copying, for header setters that copy
// the value.
func b2s(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
