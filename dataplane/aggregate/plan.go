package aggregate

import (
	"fmt"
	"slices"
)

// Spec is one call of an aggregation as configured.
type Spec struct {
	Key  string
	Path string
}

// SpecError locates a problem in one call of an aggregation.
type SpecError struct {
	Call  int    // index in the specs
	Field string // "key" or "path"
	Err   error
}

func (e *SpecError) Error() string {
	return fmt.Sprintf("aggregate[%d].%s: %v", e.Call, e.Field, e.Err)
}
func (e *SpecError) Unwrap() error { return e.Err }

// Plan is a compiled aggregation: each call's template and the calls it
// waits for. It is immutable and shared by every request.
type Plan struct {
	calls []planned
	roots []int
}

type planned struct {
	tmpl       *Template
	deps       []int // calls whose answers the template reads, each once
	dependents []int
	referenced bool // another call reads fields of this call's answer
}

// Compile parses the templates of specs and orders the calls. isParam
// tells whether a name is a path parameter of the route (nil: any name is;
// a missing value is then found when the request is served). It refuses
// invalid or repeated keys, templates that do not parse, placeholders that
// name nothing, and calls that wait for each other in a cycle.
func Compile(specs []Spec, isParam func(string) bool) (*Plan, error) {
	p := &Plan{calls: make([]planned, len(specs))}
	keys := make(map[string]int, len(specs))
	for i, s := range specs {
		if !IsKey(s.Key) {
			return nil, &SpecError{i, "key", fmt.Errorf("%q is not a valid key (letters, digits, \"_\" and \"-\", not starting with a digit or \"-\"; not %q)", s.Key, ErrorsKey)}
		}
		if _, dup := keys[s.Key]; dup {
			return nil, &SpecError{i, "key", fmt.Errorf("duplicate key %q", s.Key)}
		}
		keys[s.Key] = i
	}
	for i, s := range specs {
		t, err := ParseTemplate(s.Path)
		if err != nil {
			return nil, &SpecError{i, "path", err}
		}
		c := &p.calls[i]
		c.tmpl = t
		for j := range t.parts {
			pt := &t.parts[j]
			switch pt.source {
			case Param:
				if isParam != nil && !isParam(pt.text) {
					return nil, &SpecError{i, "path", fmt.Errorf("placeholder {%s} is neither {consumer} nor a path parameter of the route", pt.text)}
				}
			case Field:
				dep, ok := keys[pt.text]
				switch {
				case !ok:
					return nil, &SpecError{i, "path", fmt.Errorf("placeholder {%s.%s}: no call has the key %q", pt.text, pt.field[0], pt.text)}
				case dep == i:
					return nil, &SpecError{i, "path", fmt.Errorf("placeholder {%s.%s} refers to its own call", pt.text, pt.field[0])}
				}
				pt.call = dep
				if !slices.Contains(c.deps, dep) {
					c.deps = append(c.deps, dep)
				}
			}
		}
	}
	for i := range p.calls {
		for _, d := range p.calls[i].deps {
			p.calls[d].dependents = append(p.calls[d].dependents, i)
			p.calls[d].referenced = true
		}
		if len(p.calls[i].deps) == 0 {
			p.roots = append(p.roots, i)
		}
	}
	if c := p.cycle(); c >= 0 {
		return nil, &SpecError{c, "path", fmt.Errorf("calls wait for each other in a cycle")}
	}
	return p, nil
}

// cycle returns a call on a dependency cycle, or -1.
func (p *Plan) cycle() int {
	const (
		unseen = iota
		visiting
		done
	)
	state := make([]uint8, len(p.calls))
	var visit func(int) int
	visit = func(i int) int {
		switch state[i] {
		case visiting:
			return i
		case done:
			return -1
		}
		state[i] = visiting
		for _, d := range p.calls[i].deps {
			if c := visit(d); c >= 0 {
				return c
			}
		}
		state[i] = done
		return -1
	}
	for i := range p.calls {
		if c := visit(i); c >= 0 {
			return c
		}
	}
	return -1
}

// Len is the number of calls.
func (p *Plan) Len() int { return len(p.calls) }

// Template is call i's path template.
func (p *Plan) Template(i int) *Template { return p.calls[i].tmpl }

// Deps lists the calls whose answers call i reads.
func (p *Plan) Deps(i int) []int { return p.calls[i].deps }

// Referenced reports whether another call reads fields of call i's answer,
// so that the answer must be decoded.
func (p *Plan) Referenced(i int) bool { return p.calls[i].referenced }

// State is where one call of one request stands.
type State uint8

const (
	Waiting   State = iota // for a call it depends on
	Started                // handed out by Start or Finish
	Succeeded              // finished with a usable answer
	Failed                 // finished without one
	Skipped                // not made: a call it depends on failed
)

// Schedule tracks the calls of one request: which may start, which must be
// skipped. It is not safe for concurrent use; reuse it with Reset.
type Schedule struct {
	plan    *Plan
	state   []State
	waiting []int // dependencies not finished yet
	ready   []int
	skipped []int
}

// Reset prepares s for a request on p.
func (s *Schedule) Reset(p *Plan) {
	n := len(p.calls)
	s.plan = p
	s.state = slices.Grow(s.state[:0], n)[:n]
	s.waiting = slices.Grow(s.waiting[:0], n)[:n]
	for i := range p.calls {
		s.state[i] = Waiting
		s.waiting[i] = len(p.calls[i].deps)
	}
}

// Start returns the calls that depend on nothing, marked started.
func (s *Schedule) Start() []int {
	s.ready = s.ready[:0]
	for _, i := range s.plan.roots {
		s.state[i] = Started
		s.ready = append(s.ready, i)
	}
	return s.ready
}

// Finish records the end of call i. It returns the calls that may start
// now (marked started) and those that never will because i, or a call they
// need, failed (marked skipped; skipping cascades). Both slices are valid
// until the next call of Start or Finish.
func (s *Schedule) Finish(i int, ok bool) (ready, skipped []int) {
	s.ready, s.skipped = s.ready[:0], s.skipped[:0]
	if !ok {
		s.state[i] = Failed
		s.skip(i)
		return s.ready, s.skipped
	}
	s.state[i] = Succeeded
	for _, d := range s.plan.calls[i].dependents {
		s.waiting[d]--
		if s.waiting[d] == 0 && s.state[d] == Waiting {
			s.state[d] = Started
			s.ready = append(s.ready, d)
		}
	}
	return s.ready, s.skipped
}

// skip marks every call waiting on i, directly or not, as skipped.
func (s *Schedule) skip(i int) {
	from := len(s.skipped)
	for _, d := range s.plan.calls[i].dependents {
		if s.state[d] == Waiting {
			s.state[d] = Skipped
			s.skipped = append(s.skipped, d)
		}
	}
	for _, d := range s.skipped[from:] {
		s.skip(d)
	}
}

// State returns where call i stands.
func (s *Schedule) State(i int) State { return s.state[i] }
