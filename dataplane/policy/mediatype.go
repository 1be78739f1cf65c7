package policy

import "bytes"

var (
	mediaApplication = []byte("application/")
	mediaJSON        = []byte("json")
	mediaJSONSuffix  = []byte("+json")
	encodingIdentity = []byte("identity")
)

// IsJSON reports whether a Content-Type is application/json or
// application/*+json, whatever its parameters and case: the bodies
// policies that read JSON look into.
func IsJSON(contentType []byte) bool {
	ct := contentType
	if i := bytes.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = bytes.TrimSpace(ct)
	if len(ct) <= len(mediaApplication) || !bytes.EqualFold(ct[:len(mediaApplication)], mediaApplication) {
		return false
	}
	sub := ct[len(mediaApplication):]
	return bytes.EqualFold(sub, mediaJSON) ||
		len(sub) > len(mediaJSONSuffix) && bytes.EqualFold(sub[len(sub)-len(mediaJSONSuffix):], mediaJSONSuffix)
}

// IdentityEncoded reports whether a Content-Encoding leaves the body as
// it is (none, or "identity"): a body a policy can read or edit.
func IdentityEncoded(contentEncoding []byte) bool {
	return len(contentEncoding) == 0 || bytes.EqualFold(bytes.TrimSpace(contentEncoding), encodingIdentity)
}
