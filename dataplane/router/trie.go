package router

import "slices"

// node is one segment depth of the prefix and template trie. A request walks
// it segment by segment, so the cost depends on the path's depth, not on
// the number of routes.
type node struct {
	literal map[string]*node
	param   *node // a "{name}" segment: any non-empty segment

	// Candidates whose pattern ends at this node, in trial order. endsSlash
	// holds patterns written with a trailing slash ("/users/"), which need
	// more path after the segment and are tried before the plain ones.
	ends      []*candidate
	endsSlash []*candidate
	// endsWhole holds exact templates ("=/orders/{id}"), which match only
	// a path that ends here; they are tried first.
	endsWhole []*candidate

	maxDepth int // deepest pattern end at or below this node, for pruning
}

func (n *node) insert(c *candidate) {
	for _, s := range c.pat.segs {
		if s.param {
			if n.param == nil {
				n.param = &node{}
			}
			n = n.param
			continue
		}
		if n.literal == nil {
			n.literal = map[string]*node{}
		}
		child := n.literal[s.literal]
		if child == nil {
			child = &node{}
			n.literal[s.literal] = child
		}
		n = child
	}
	switch {
	case c.pat.wholePath:
		n.endsWhole = append(n.endsWhole, c)
	case c.pat.trailingSlash:
		n.endsSlash = append(n.endsSlash, c)
	default:
		n.ends = append(n.ends, c)
	}
}

// finish sorts the candidates and records maxDepth; it returns n.maxDepth,
// or -1 when no pattern ends at or below n.
func (n *node) finish() int { return n.finishAt(0) }

func (n *node) finishAt(depth int) int {
	slices.SortFunc(n.ends, (*candidate).before)
	slices.SortFunc(n.endsSlash, (*candidate).before)
	slices.SortFunc(n.endsWhole, (*candidate).before)
	n.maxDepth = -1
	if len(n.ends)+len(n.endsSlash)+len(n.endsWhole) > 0 {
		n.maxDepth = depth
	}
	for _, child := range n.literal {
		n.maxDepth = max(n.maxDepth, child.finishAt(depth+1))
	}
	if n.param != nil {
		n.maxDepth = max(n.maxDepth, n.param.finishAt(depth+1))
	}
	return n.maxDepth
}

// search is the state of one walk; it lives on Match's stack. It holds the
// best candidate rather than a *Match, which would make Match's result escape.
type search struct {
	req  *Request
	path string

	caps  [MaxParams]span // captures along the current branch
	ncaps int

	best      *candidate
	bestDepth int
	bestEnd   int
	bestCaps  [MaxParams]span
}

func (n *node) match(req *Request, m *Match) bool {
	s := search{req: req, path: req.Path, bestDepth: -1}
	s.walk(n, 0, 0)
	if s.best == nil {
		return false
	}
	*m = Match{
		RouteID:   s.best.routeID,
		PrefixLen: s.bestEnd,
		Pattern:   s.best.pat.raw,
		path:      req.Path,
		names:     s.best.pat.paramNames,
		spans:     s.bestCaps,
		params:    len(s.best.pat.paramNames),
	}
	return true
}

// walk visits n, reached after consuming path[:pos] in depth segments
// (pos is len(path) or the index of the next '/'). Deeper patterns win, so
// children are searched before n's own candidates, literal before param so
// that the first match found at a depth is the one preferring literals.
func (s *search) walk(n *node, pos, depth int) {
	if n.maxDepth <= s.bestDepth {
		return
	}
	if pos < len(s.path) {
		start := pos + 1
		end := start
		for end < len(s.path) && s.path[end] != '/' {
			end++
		}
		if seg := s.path[start:end]; seg != "" {
			if child := n.literal[seg]; child != nil {
				s.walk(child, end, depth+1)
			}
			if n.param != nil && s.ncaps < MaxParams {
				s.caps[s.ncaps] = span{int32(start), int32(end)}
				s.ncaps++
				s.walk(n.param, end, depth+1)
				s.ncaps--
			}
		}
	}
	if depth <= s.bestDepth {
		return
	}
	if len(n.endsWhole) > 0 && s.takeWhole(n.endsWhole, pos, depth) {
		return
	}
	if pos < len(s.path) && s.take(n.endsSlash, pos, depth) {
		return
	}
	s.take(n.ends, pos, depth)
}

func (s *search) take(cs []*candidate, pos, depth int) bool {
	for _, c := range cs {
		if c.accepts(s.req) {
			s.best, s.bestDepth, s.bestEnd, s.bestCaps = c, depth, pos, s.caps
			return true
		}
	}
	return false
}

// takeWhole tries exact templates: the path must end at pos, or at the
// slash right after it for one written with a trailing slash.
func (s *search) takeWhole(cs []*candidate, pos, depth int) bool {
	for _, c := range cs {
		end := pos
		if c.pat.trailingSlash {
			if pos != len(s.path)-1 || s.path[pos] != '/' {
				continue
			}
			end = len(s.path)
		} else if pos != len(s.path) {
			continue
		}
		if c.accepts(s.req) {
			s.best, s.bestDepth, s.bestEnd, s.bestCaps = c, depth, end, s.caps
			return true
		}
	}
	return false
}
