package upstream

import (
	"errors"
	"time"
)

// Failure classifies a transport-level failure of one attempt.
type Failure int

const (
	// None means the upstream answered (look at Outcome.Status).
	None Failure = iota
	// ConnectFailed means no connection: refused, dial error or dial timeout.
	// Nothing was sent, so any request may be retried.
	ConnectFailed
	// Reset means the connection broke after it was established.
	Reset
	// Timeout means the response did not arrive in time.
	Timeout
)

func (f Failure) String() string {
	switch f {
	case None:
		return "none"
	case ConnectFailed:
		return "connect_failed"
	case Reset:
		return "reset"
	case Timeout:
		return "timeout"
	}
	return "unknown"
}

// Outcome is what happened to one attempt on a target.
type Outcome struct {
	Status   int // HTTP status when the upstream answered
	Err      Failure
	Duration time.Duration
}

// serverError reports whether the breaker counts the outcome as a failure:
// a transport failure or a 5xx answer.
func (o Outcome) serverError() bool { return o.Err != None || o.Status >= 500 }

var (
	// ErrNoHealthyTarget means every target is unhealthy (or drained with
	// weight 0). The gateway answers 503 rather than sending traffic to
	// targets it knows to be failing.
	ErrNoHealthyTarget = errors.New("upstream: no healthy target")
	// ErrCircuitOpen means the service's circuit breaker refuses calls.
	ErrCircuitOpen = errors.New("upstream: circuit breaker open")
)
