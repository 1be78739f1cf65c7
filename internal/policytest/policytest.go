// Package policytest holds what the tests of policy packages share: a
// stand-in authentication policy, so a policy that needs a consumer can be
// tested without depending on a real authentication policy.
package policytest

import (
	"sync"

	"github.com/tollgate/tollgate/dataplane/policy"
)

// ConsumerPolicy is the name of the stand-in authentication policy.
const ConsumerPolicy = "test-consumer"

// ConsumerHeader names the consumer a request comes from.
const ConsumerHeader = "X-Test-Consumer"

var once sync.Once

// RegisterConsumerPolicy registers (once per test binary) the
// "test-consumer" authentication policy: the consumer is the one
// X-Test-Consumer names; a name no consumer has is refused with 401, and a
// request without the header carries no credential (so `anonymous`
// applies).
func RegisterConsumerPolicy() {
	once.Do(func() {
		policy.Register(ConsumerPolicy, policy.Authenticate, func(s *policy.AuthSettings, b *policy.Build) (any, error) {
			return consumerAuth{AuthSettings: *s, consumers: b.Consumers}, nil
		})
	})
}

type consumerAuth struct {
	policy.AuthSettings
	consumers *policy.Directory
}

func (a consumerAuth) Authenticate(x *policy.Exchange) (*policy.Consumer, *policy.Reject) {
	name := x.Header(ConsumerHeader)
	if len(name) == 0 {
		return nil, nil
	}
	if c, ok := a.consumers.Get(string(name)); ok {
		return c, nil
	}
	return nil, policy.Unauthorized
}
