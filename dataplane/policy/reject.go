package policy

// Reject is a policy's answer in place of the upstream's: the gateway's
// JSON error with this status, code and message. Rejects that do not vary
// per request are best made once and shared, so refusing costs no
// allocation. Extra response headers (WWW-Authenticate, Retry-After) are
// set on the exchange with SetAnswerHeader before returning the Reject.
//
// A Reject with an empty Code is the policy's own answer: Status, the
// headers set with SetAnswerHeader and Body (none for a CORS preflight's
// 204; a stored response for a cache hit).
type Reject struct {
	Status  int
	Code    string
	Message string
	// Close asks for the client connection to be closed after the answer
	// (a body that was not read).
	Close bool
	// Body is the answer's body when Code is empty.
	Body []byte
}

// Error lets a Reject travel as an error.
func (r *Reject) Error() string { return r.Code + ": " + r.Message }

// Common rejects.
var (
	// Unauthorized is the answer when no authentication policy of a route
	// accepted the request and none said why.
	Unauthorized = &Reject{Status: 401, Code: "unauthorized", Message: "authentication required"}
	// Forbidden is a generic refusal of an authenticated request.
	Forbidden = &Reject{Status: 403, Code: "forbidden", Message: "access denied"}
)
