package policy

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/tollgate/tollgate/config"
)

// Merge returns the policies in force for a route: the global ones, then
// its service's, then its own, each wider one overridden by a narrower one
// of the same name; a nil setting (YAML null) switches an inherited policy
// off.
func Merge(scopes ...config.Policies) config.Policies {
	out := config.Policies{}
	for _, ps := range scopes {
		for name, settings := range ps {
			if settings == nil {
				delete(out, name)
				continue
			}
			out[name] = settings
		}
	}
	return out
}

// Chain is the compiled policies of one route, run by the engine for every
// request the route matches. It is immutable and shared by all requests.
type Chain struct {
	names      []string // in run order
	identify   []Handler
	auth       []Authenticator
	anonymous  *Consumer
	after      []Handler // authorize to proxy, in phase order
	responders []Responder
	finishers  []Finisher
	authFailed []AuthFailureObserver
	sanitizers []Sanitizer
	// challenge is the WWW-Authenticate of a request with no credential.
	challenges []string
	challenge  string
}

// Compile builds the chain of the policies ps, for the route b names. It
// returns nil (and no error) when ps is empty: a route without policies
// pays nothing for the engine.
func Compile(ps config.Policies, b *Build) (*Chain, error) {
	if len(ps) == 0 {
		return nil, nil
	}
	defs := make([]*definition, 0, len(ps))
	for _, name := range slices.Sorted(maps.Keys(ps)) {
		d, ok := lookup(name)
		if !ok {
			return nil, fmt.Errorf("unknown policy %q", name)
		}
		defs = append(defs, d)
	}
	slices.SortStableFunc(defs, compareDefs)
	c := &Chain{}
	anonymous := ""
	for _, d := range defs {
		inst, settingsAnonymous, err := d.build(ps[d.name], b)
		if err != nil {
			return nil, err
		}
		c.names = append(c.names, d.name)
		switch d.phase {
		case Authenticate:
			a, ok := inst.(Authenticator)
			if !ok {
				return nil, fmt.Errorf("policy %s: %s is not an Authenticator", d.name, typeName(inst))
			}
			c.auth = append(c.auth, a)
			if an, ok := inst.(Anonymous); ok && anonymous == "" {
				anonymous = an.AnonymousConsumer()
			}
			if anonymous == "" {
				anonymous = settingsAnonymous
			}
			if ch, ok := inst.(Challenger); ok {
				c.challenges = append(c.challenges, ch.Challenge())
			}
		default:
			h, ok := inst.(Handler)
			if !ok {
				return nil, fmt.Errorf("policy %s: %s is not a Handler", d.name, typeName(inst))
			}
			if d.phase == Identify {
				c.identify = append(c.identify, h)
			} else {
				c.after = append(c.after, h)
			}
		}
		if r, ok := inst.(Responder); ok {
			c.responders = append(c.responders, r)
		}
		if f, ok := inst.(Finisher); ok {
			c.finishers = append(c.finishers, f)
		}
		if o, ok := inst.(AuthFailureObserver); ok {
			c.authFailed = append(c.authFailed, o)
		}
		if sz, ok := inst.(Sanitizer); ok {
			c.sanitizers = append(c.sanitizers, sz)
		}
	}
	c.challenge = strings.Join(c.challenges, ", ")
	if anonymous != "" {
		cons, ok := b.Consumers.Get(anonymous)
		if !ok {
			return nil, fmt.Errorf("anonymous consumer %q does not exist", anonymous)
		}
		c.anonymous = cons
	}
	return c, nil
}

// Names returns the policies of the chain in the order they run.
func (c *Chain) Names() []string { return c.names }

// Run runs the request phases. A non-nil Reject is the answer to send
// instead of calling the upstream.
func (c *Chain) Run(x *Exchange) *Reject {
	for _, sz := range c.sanitizers {
		sz.Sanitize(x)
	}
	for _, h := range c.identify {
		if r := h.Handle(x); r != nil {
			return r
		}
	}
	if len(c.auth) > 0 {
		if r := c.authenticate(x); r != nil {
			return r
		}
	}
	for _, h := range c.after {
		if r := h.Handle(x); r != nil {
			return r
		}
	}
	return nil
}

// authenticate accepts the request when any authentication policy does.
// When none does, the first refusal is the answer (a wrong credential says
// more than a missing one), unless the route has an anonymous consumer.
func (c *Chain) authenticate(x *Exchange) *Reject {
	var refused *Reject
	// Answer headers of a refusal (WWW-Authenticate) are dropped when
	// another policy accepts.
	mark := len(x.respHeaders)
	for _, a := range c.auth {
		cons, r := a.Authenticate(x)
		if cons != nil {
			x.Consumer = cons
			x.respHeaders = x.respHeaders[:mark]
			return nil
		}
		if refused == nil {
			refused = r
		}
	}
	if refused != nil {
		for _, o := range c.authFailed {
			o.AuthFailed(x)
		}
	}
	if c.anonymous != nil {
		x.Consumer, x.Credential = c.anonymous, "anonymous"
		return nil
	}
	if refused == nil {
		refused = Unauthorized
		if c.challenge != "" {
			x.SetAnswerHeader("WWW-Authenticate", c.challenge)
		}
	}
	return refused
}

// Respond runs the response phase on the response about to go out: the
// headers set with SetAnswerHeader, then each Responder, in the reverse of
// the request order, so that the policy nearest the upstream sees its
// answer first (a cache stores the upstream's own response, and a
// transformation applies to it whether it came from the upstream or the
// cache).
func (c *Chain) Respond(x *Exchange) {
	x.applyAnswerHeaders()
	for i := len(c.responders) - 1; i >= 0; i-- {
		c.responders[i].Respond(x)
	}
}

// Finish tells the Finishers the exchange is over.
func (c *Chain) Finish(x *Exchange) {
	for _, f := range c.finishers {
		f.Finish(x)
	}
}
