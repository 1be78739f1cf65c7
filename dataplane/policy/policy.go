// Package policy is the data plane's policy engine: the phases policies run
// in, the request view they see, the registry policy packages add themselves
// to, and the per-route chain compiled with each configuration snapshot.
//
// A policy package registers once (Register, from its init function) with
// its phase, its settings type and a build function. The settings are
// decoded strictly at load time, so a bad key is reported with the file's
// line and column like any other configuration error; the build function
// runs when a snapshot is compiled and returns the policy's handler for one
// route. The phase, not the order of keys in the file, decides when a policy
// runs, so rate limiting can never run before authentication by mistake.
//
// Handlers see an Exchange, one view of the request whatever protocol it
// came in on (HTTP/1.1, HTTP/2, h2c or WebSocket), and answer nil to let it
// go on or a *Reject to answer it with the gateway's JSON error.
package policy

import (
	"fmt"
	"log/slog"
	"reflect"
	"sync"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/observe/metrics"
)

// Phase orders policies within a request. Policies of one phase run in the
// order of their names, so a configuration always runs the same way.
type Phase uint8

// The phases, in the order they run.
const (
	// Identify looks at who is calling before any credential: the client
	// address (ip-restriction, bans) and CORS preflights, which carry no
	// credentials by design.
	Identify Phase = iota
	// Authenticate finds the consumer. Several authentication policies on a
	// route mean "any of them".
	Authenticate
	// Authorize decides whether the consumer may call the route (acl).
	Authorize
	// Protect checks the request itself (sizes, JSON shape).
	Protect
	// Limit counts the request against rate limits and quotas.
	Limit
	// Transform edits the request on its way upstream.
	Transform
	// Proxy wraps the upstream call (cache, load shedding).
	Proxy
)

var phaseNames = [...]string{"identify", "authenticate", "authorize", "protect", "limit", "transform", "proxy"}

func (p Phase) String() string {
	if int(p) < len(phaseNames) {
		return phaseNames[p]
	}
	return fmt.Sprintf("phase(%d)", p)
}

// Handler is a policy instance of any phase but Authenticate.
type Handler interface {
	// Handle lets the request go on (nil) or answers it (a Reject).
	Handle(x *Exchange) *Reject
}

// Authenticator is a policy instance of the Authenticate phase.
type Authenticator interface {
	// Authenticate returns the consumer whose credential the request
	// carries. A request without a credential of this kind gets (nil, nil),
	// so that another authentication policy of the route may accept it; a
	// credential that is wrong gets a Reject.
	Authenticate(x *Exchange) (*Consumer, *Reject)
}

// Optional interfaces a handler or authenticator may implement as well.
type (
	// Responder edits the response head before it goes to the client,
	// whether it came from the upstream or from the gateway itself.
	Responder interface {
		Respond(x *Exchange)
	}
	// Finisher is told when the exchange ends, after the last byte of the
	// response (to release what Handle took, such as a concurrency slot).
	Finisher interface {
		Finish(x *Exchange)
	}
	// AuthFailureObserver is told when a request presented a credential that
	// authentication refused (threat protection counts these to ban).
	AuthFailureObserver interface {
		AuthFailed(x *Exchange)
	}
	// Sanitizer removes from the request what only the gateway may set
	// (the headers a policy fills from a credential, such as jwt's
	// claims_to_headers). Sanitize runs before any phase, for every
	// request of the route, so a client's copy never survives because
	// another policy accepted the request.
	Sanitizer interface {
		Sanitize(x *Exchange)
	}
	// Challenger is implemented by authenticators whose scheme has an
	// HTTP challenge: a request with no credential at all gets a 401 with
	// every challenge of the route's authenticators in WWW-Authenticate
	// (RFC 9110 section 11.6.1).
	Challenger interface {
		Challenge() string
	}
	// Anonymous is implemented by authenticators whose settings name a
	// consumer to use when no authentication policy of the route accepts
	// the request (AuthSettings does).
	Anonymous interface {
		AnonymousConsumer() string
	}
)

// AuthSettings are the settings every authentication policy shares. Embed it
// in a policy's settings with `yaml:",inline"`.
type AuthSettings struct {
	// Anonymous names a consumer given to requests that carry no valid
	// credential for any authentication policy of the route, instead of 401.
	Anonymous string `yaml:"anonymous"`
}

// AnonymousConsumer implements Anonymous.
func (s AuthSettings) AnonymousConsumer() string { return s.Anonymous }

// Validator is implemented by settings types that check more than their
// shape; paths are relative to the policy.
type Validator interface {
	Validate() []config.FieldError
}

// Build is what a policy's build function gets besides its settings: the
// scope it is built for and the long-lived parts it may use.
type Build struct {
	Route   string // the route's name
	Service string // the route's service, "" for mock routes
	// Consumers are the consumers of the configuration being compiled,
	// Plans its plans by name.
	Consumers *Directory
	Plans     map[string]*config.Plan
	// State keeps what must outlive a reload (counters, bans, caches).
	State *State
	// Shared keeps what all routes of one snapshot may share (credential
	// indexes), built once per snapshot.
	Shared  *Shared
	Logger  *slog.Logger
	Metrics *metrics.Metrics
	// RouteMetrics are the route's own series (rate limited requests).
	RouteMetrics *metrics.RouteMetrics
	// Redis is the configuration's redis URL, "" when none is set.
	Redis string
}

type definition struct {
	name  string
	phase Phase
	// build decodes settings and builds the instance (a Handler, or an
	// Authenticator in the Authenticate phase). anonymous is the settings'
	// anonymous consumer, for settings embedding AuthSettings.
	build func(settings any, b *Build) (inst any, anonymous string, err error)
}

var registry struct {
	sync.RWMutex
	defs map[string]*definition
}

// Register adds a policy. S is its settings type (decoded strictly, with
// Validate run when S implements Validator); build returns its instance for
// one route. Policy packages call Register from init, once per name.
func Register[S any](name string, phase Phase, build func(settings *S, b *Build) (any, error)) {
	decode := func(raw any) (*S, []config.FieldError) {
		s := new(S)
		if raw == nil {
			raw = map[string]any{}
		}
		errs := config.DecodeSettings(raw, s)
		if len(errs) == 0 {
			if v, ok := any(s).(Validator); ok {
				errs = v.Validate()
			}
		}
		return s, errs
	}
	config.RegisterPolicy(name, func(raw any) []config.FieldError {
		_, errs := decode(raw)
		return errs
	})
	d := &definition{name: name, phase: phase, build: func(raw any, b *Build) (any, string, error) {
		s, errs := decode(raw)
		if len(errs) > 0 {
			return nil, "", fmt.Errorf("%s: %v", name, errs[0])
		}
		inst, err := build(s, b)
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", name, err)
		}
		anonymous := ""
		if an, ok := any(s).(Anonymous); ok {
			anonymous = an.AnonymousConsumer()
		}
		return inst, anonymous, nil
	}}
	registry.Lock()
	defer registry.Unlock()
	if registry.defs == nil {
		registry.defs = map[string]*definition{}
	}
	registry.defs[name] = d
}

func lookup(name string) (*definition, bool) {
	registry.RLock()
	defer registry.RUnlock()
	d, ok := registry.defs[name]
	return d, ok
}

func compareDefs(a, b *definition) int {
	if a.phase != b.phase {
		return int(a.phase) - int(b.phase)
	}
	switch {
	case a.name < b.name:
		return -1
	case a.name > b.name:
		return 1
	}
	return 0
}

// typeName names an instance's type in programming errors.
func typeName(v any) string { return reflect.TypeOf(v).String() }
