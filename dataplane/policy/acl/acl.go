// Package acl is the acl policy: it lets an authenticated consumer call a
// route, or not, by the groups the consumer belongs to.
//
// It runs in the Authorize phase, after authentication has named the
// consumer. A deny group wins over an allow group; a non-empty allow list
// refuses every consumer in none of its groups. A request that reaches it
// without a consumer is refused with 401: the route has no authentication
// policy (or lets requests through without one), which the settings of this
// policy alone cannot tell at load time, and letting such a request pass
// would turn a misconfiguration into an open door.
package acl

import (
	"fmt"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/dataplane/policy"
)

// Name is the policy's name in configurations.
const Name = "acl"

func init() {
	policy.Register(Name, policy.Authorize, build)
}

// Settings are the policy's settings: consumer group names.
type Settings struct {
	Allow []string `yaml:"allow"`
	Deny  []string `yaml:"deny"`
	// HideGroupsHeader keeps X-Consumer-Groups from the upstream.
	HideGroupsHeader bool `yaml:"hide_groups_header"`
}

// Validate requires a list, and refuses empty names and a group both
// allowed and denied (deny would always win: surely a slip).
func (s *Settings) Validate() []config.FieldError {
	if len(s.Allow) == 0 && len(s.Deny) == 0 {
		return []config.FieldError{{Msg: "at least one of allow or deny is required"}}
	}
	var errs []config.FieldError
	allowed := make(map[string]bool, len(s.Allow))
	for i, g := range s.Allow {
		if g == "" {
			errs = append(errs, config.FieldError{Path: fmt.Sprintf("allow[%d]", i), Msg: "group name must not be empty"})
		}
		allowed[g] = true
	}
	for i, g := range s.Deny {
		path := fmt.Sprintf("deny[%d]", i)
		switch {
		case g == "":
			errs = append(errs, config.FieldError{Path: path, Msg: "group name must not be empty"})
		case allowed[g]:
			errs = append(errs, config.FieldError{Path: path, Msg: fmt.Sprintf("group %q is both allowed and denied", g)})
		}
	}
	return errs
}

func build(s *Settings, _ *policy.Build) (any, error) {
	return &acl{allow: s.Allow, deny: s.Deny, hideGroups: s.HideGroupsHeader}, nil
}

type acl struct {
	allow, deny []string
	hideGroups  bool
}

func (a *acl) Handle(x *policy.Exchange) *policy.Reject {
	c := x.Consumer
	if c == nil {
		return policy.Unauthorized
	}
	if a.hideGroups {
		x.HideConsumerGroups()
	}
	for _, g := range a.deny {
		if c.InGroup(g) {
			return policy.Forbidden
		}
	}
	if len(a.allow) == 0 {
		return nil
	}
	for _, g := range a.allow {
		if c.InGroup(g) {
			return nil
		}
	}
	return policy.Forbidden
}
