package xmladapter

import "github.com/tollgate/tollgate/dataplane/policy"

// upstreamEditor is what a call made from parameters and a fixed SOAP
// endpoint need of the exchange besides header, query and body edits: a
// new method (SOAP is POST), a body for a request that came without one,
// and the upstream path.
type upstreamEditor interface {
	// SetMethod replaces the method sent upstream.
	SetMethod(method string)
	// SetRequestBody sends b (copied) upstream as the body, with its
	// Content-Length, of a request that came without one.
	SetRequestBody(b []byte)
	// SetUpstreamPath replaces the path sent upstream (the route's path
	// after strip_path).
	SetUpstreamPath(path string)
}

// editorAvailable reports whether the exchange offers upstreamEditor;
// settings that need it are refused at load when it does not.
var editorAvailable = func() bool {
	_, ok := any((*policy.Exchange)(nil)).(upstreamEditor)
	return ok
}()

// editorOf returns x's upstreamEditor; only called when editorAvailable.
func editorOf(x *policy.Exchange) upstreamEditor { return any(x).(upstreamEditor) }
