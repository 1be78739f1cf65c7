// Package sizelimit is the request-size-limit policy: it caps the request
// body a route accepts.
//
// A body announced too large by Content-Length is refused at once, before a
// byte of it is read, and the connection is closed after the answer: the
// unread body would otherwise be taken for the next request. A body without
// a length (chunked, or HTTP/2 without content-length) cannot be judged in
// advance, so the policy hands the cap to the proxy (Exchange.LimitBody),
// which counts the bytes as they stream upstream and answers 413 the moment
// the cap is passed; the upstream never receives more than the cap.
package sizelimit

import (
	"fmt"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/dataplane/policy"
)

// Name is the policy's name in configurations.
const Name = "request-size-limit"

func init() {
	policy.Register(Name, policy.Protect, build)
}

// Settings are the policy's settings.
type Settings struct {
	// MaxBytes is the largest request body accepted, in bytes.
	MaxBytes int64 `yaml:"max_bytes"`
}

// Validate requires a positive limit.
func (s *Settings) Validate() []config.FieldError {
	if s.MaxBytes <= 0 {
		return []config.FieldError{{Path: "max_bytes", Msg: "max_bytes must be a positive number of bytes"}}
	}
	return nil
}

func build(s *Settings, _ *policy.Build) (any, error) {
	return &limit{
		max: s.MaxBytes,
		// One Reject per route, made here: refusing costs no allocation.
		tooLarge: &policy.Reject{
			Status:  413,
			Code:    "body_too_large",
			Message: fmt.Sprintf("request body too large (at most %d bytes)", s.MaxBytes),
			Close:   true,
		},
	}, nil
}

type limit struct {
	max      int64
	tooLarge *policy.Reject
}

func (l *limit) Handle(x *policy.Exchange) *policy.Reject {
	if int64(x.ContentLength()) > l.max {
		return l.tooLarge
	}
	// Set for a declared length within the cap as well: it costs nothing,
	// and the cap then holds whatever framing the body came with.
	x.LimitBody(l.max)
	return nil
}
