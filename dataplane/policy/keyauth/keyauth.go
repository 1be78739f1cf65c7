package keyauth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"

	"golang.org/x/net/http/httpguts"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/dataplane/policy"
)

// Name is the policy's name in configurations, and the credential it
// reports on the exchange.
const Name = "key-auth"

// DefaultName is where the key is looked for, as header and query
// parameter, unless the settings say otherwise.
const DefaultName = "apikey"

// challenge answers a wrong key (RFC 9110 asks a 401 to name a scheme).
const challenge = `Key realm="tollgate"`

var invalidKey = &policy.Reject{Status: 401, Code: "invalid_credentials", Message: "invalid API key"}

func init() {
	policy.Register(Name, policy.Authenticate, func(s *Settings, b *policy.Build) (any, error) {
		return New(s, b)
	})
}

// Settings are the policy's settings.
type Settings struct {
	policy.AuthSettings `yaml:",inline"`
	// Header and Query name the request header and the query parameter the
	// key is read from, the header first. Unset means DefaultName; "" turns
	// that source off.
	Header *string `yaml:"header"`
	Query  *string `yaml:"query"`
	// HideCredentials removes the key header and query parameter from the
	// request sent upstream once the key is accepted.
	HideCredentials bool `yaml:"hide_credentials"`
}

// Validate implements policy.Validator.
func (s *Settings) Validate() []config.FieldError {
	var errs []config.FieldError
	header, query := s.sources()
	if header == "" && query == "" {
		errs = append(errs, config.FieldError{Path: "header", Msg: "header and query are both empty: the key could not be sent anywhere"})
	}
	if header != "" && !httpguts.ValidHeaderFieldName(header) {
		errs = append(errs, config.FieldError{Path: "header", Msg: fmt.Sprintf("%q is not a valid header name", header)})
	}
	return errs
}

func (s *Settings) sources() (header, query string) {
	header, query = DefaultName, DefaultName
	if s.Header != nil {
		header = *s.Header
	}
	if s.Query != nil {
		query = *s.Query
	}
	return header, query
}

// Authenticator is the policy's instance for one route.
type Authenticator struct {
	anonymous     string
	index         index
	header, query string
	hide          bool
	// challenge is false when the policy names an anonymous consumer: a
	// wrong key then goes on as that consumer, and a 2xx answer carrying a
	// challenge would be nonsense.
	challenge bool
}

// New builds the policy for the route b describes.
func New(s *Settings, b *policy.Build) (*Authenticator, error) {
	v, err := b.Shared.Get(Name+"/index", func() (any, error) { return buildIndex(b.Consumers) })
	if err != nil {
		return nil, err
	}
	a := &Authenticator{anonymous: s.Anonymous, index: v.(index), hide: s.HideCredentials, challenge: s.Anonymous == ""}
	a.header, a.query = s.sources()
	return a, nil
}

// AnonymousConsumer implements policy.Anonymous: the consumer given to
// requests no authentication policy of the route accepts ("" for none).
func (a *Authenticator) AnonymousConsumer() string { return a.anonymous }

// Authenticate implements policy.Authenticator.
func (a *Authenticator) Authenticate(x *policy.Exchange) (*policy.Consumer, *policy.Reject) {
	var key []byte
	if a.header != "" {
		key = x.Header(a.header)
	}
	if len(key) == 0 && a.query != "" {
		key = x.Query(a.query)
	}
	if len(key) == 0 {
		return nil, nil
	}
	digest := sha256.Sum256(key)
	e, ok := a.index[digest]
	// The map found e by the digest already; comparing again without a
	// data-dependent branch keeps the decision constant-time however the
	// index is laid out.
	if !ok || subtle.ConstantTimeCompare(e.digest[:], digest[:]) != 1 {
		if a.challenge {
			x.SetAnswerHeader("WWW-Authenticate", challenge)
		}
		return nil, invalidKey
	}
	if a.hide {
		a.hideKey(x)
	}
	x.Credential = Name
	return e.consumer, nil
}

// hideKey removes the key's header and query parameter (every one of that
// name, whichever the key was read from) from the request sent upstream.
func (a *Authenticator) hideKey(x *policy.Exchange) {
	if a.header != "" {
		x.DelRequestHeader(a.header)
	}
	if a.query != "" {
		var buf [512]byte // most queries fit: no allocation
		if q, removed := withoutParam(buf[:0], x.RawQuery(), a.query); removed {
			x.SetRawQuery(q)
		}
	}
}

// index maps the SHA-256 digest of each key to its consumer.
type index map[[sha256.Size]byte]entry

type entry struct {
	digest   [sha256.Size]byte
	consumer *policy.Consumer
}

func buildIndex(consumers *policy.Directory) (index, error) {
	idx := index{}
	for _, c := range consumers.All() {
		for _, cred := range c.Credentials.KeyAuth {
			var digest [sha256.Size]byte
			switch {
			case cred.Key != "":
				digest = sha256.Sum256([]byte(cred.Key))
			case cred.SHA256 != "":
				// A key known only by its hash (created through the admin
				// API): the index holds hashes anyway.
				if n, err := hex.Decode(digest[:], []byte(cred.SHA256)); err != nil || n != sha256.Size {
					return nil, fmt.Errorf("consumer %q: key-auth sha256 is not 64 hexadecimal digits", c.Name)
				}
			default:
				continue // refused by the configuration's validation
			}
			if prev, dup := idx[digest]; dup {
				if prev.consumer == c {
					continue // listed twice for one consumer: not ambiguous
				}
				return nil, fmt.Errorf("consumers %q and %q have the same API key", prev.consumer.Name, c.Name)
			}
			idx[digest] = entry{digest: digest, consumer: c}
		}
	}
	return idx, nil
}

// Challenge implements policy.Challenger.
func (a *Authenticator) Challenge() string { return challenge }
