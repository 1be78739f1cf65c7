package basicauth

import (
	"github.com/tollgate/tollgate/dataplane/policy"
)

// Name is the policy's name in configurations, and the credential it
// reports on the exchange.
const Name = "basic-auth"

// challenge answers refused credentials.
const challenge = `Basic realm="tollgate", charset="UTF-8"`

var (
	invalidCredentials = &policy.Reject{Status: 401, Code: "invalid_credentials", Message: "invalid username or password"}
	malformed          = &policy.Reject{Status: 401, Code: "invalid_credentials", Message: "malformed Basic credentials"}
)

func init() {
	policy.Register(Name, policy.Authenticate, func(s *Settings, b *policy.Build) (any, error) {
		return New(s, b)
	})
}

// Settings are the policy's settings.
type Settings struct {
	policy.AuthSettings `yaml:",inline"`
	// HideCredentials removes the Authorization header from the request
	// sent upstream once the credentials are accepted.
	HideCredentials bool `yaml:"hide_credentials"`
}

// Authenticator is the policy's instance for one route.
type Authenticator struct {
	anonymous string
	users     *users
	hide      bool
	// challenge is false when the policy names an anonymous consumer:
	// refused credentials then go on as that consumer.
	challenge bool
}

// New builds the policy for the route b describes. The credentials index
// is built once per snapshot, for all routes.
func New(s *Settings, b *policy.Build) (*Authenticator, error) {
	v, err := b.Shared.Get(Name+"/users", func() (any, error) {
		memo := &hashMemo{}
		if b.State != nil {
			memo = b.State.Get(Name+"/hashes", func() any { return &hashMemo{} }).(*hashMemo)
		}
		return buildUsers(b.Consumers, memo)
	})
	if err != nil {
		return nil, err
	}
	return &Authenticator{anonymous: s.Anonymous, users: v.(*users), hide: s.HideCredentials, challenge: s.Anonymous == ""}, nil
}

// AnonymousConsumer implements policy.Anonymous: the consumer given to
// requests no authentication policy of the route accepts ("" for none).
func (a *Authenticator) AnonymousConsumer() string { return a.anonymous }

// Authenticate implements policy.Authenticator.
func (a *Authenticator) Authenticate(x *policy.Exchange) (*policy.Consumer, *policy.Reject) {
	header := x.Header("Authorization")
	if len(header) == 0 {
		return nil, nil
	}
	var buf [MaxCredentialsLen]byte
	creds, err := ParseAuthorization(header, buf[:])
	switch err {
	case nil:
	case ErrNotBasic:
		return nil, nil // another policy's credentials
	default:
		return nil, a.refuse(x, malformed)
	}
	c := a.users.check(creds)
	if c == nil {
		return nil, a.refuse(x, invalidCredentials)
	}
	if a.hide {
		x.DelRequestHeader("Authorization")
	}
	x.Credential = Name
	return c, nil
}

func (a *Authenticator) refuse(x *policy.Exchange, r *policy.Reject) *policy.Reject {
	if a.challenge {
		x.SetAnswerHeader("WWW-Authenticate", challenge)
	}
	return r
}

// Challenge implements policy.Challenger.
func (a *Authenticator) Challenge() string { return challenge }
