package xmladapter

import (
	"bytes"

	"github.com/tollgate/tollgate/dataplane/policy/threatprotection/jsonscan"
)

// EditorAvailable reports whether calls made from parameters and
// endpoints are possible in this build.
var EditorAvailable = editorAvailable

// XMLToJSON converts an answer as the response settings s say; fault
// reports a SOAP Fault (and out is then nil).
func XMLToJSON(body []byte, s *ResponseSettings) (out []byte, fault bool, err error) {
	var f fieldErrors
	c := compileResponse(s, s.From, &f)
	if len(f.errs) > 0 {
		return nil, false, f.errs[0]
	}
	t := getTree()
	defer putTree(t)
	out, flt, err := c.convert(t, body, nil)
	return out, flt != nil, err
}

// JSONToXML converts a JSON body (checked as the policy checks it) to the
// plain XML document of root "r".
func JSONToXML(body []byte) ([]byte, error) {
	if p, _ := jsonscan.Scan(body, jsonscan.Limits{Depth: DefaultMaxDepth}); p != jsonscan.OK {
		return nil, conversionError("not JSON")
	}
	r := &requestConv{root: compileRoot("r", "", ""), maxDepth: DefaultMaxDepth}
	r.setHeaders("")
	var w xmlWriter
	err := r.write(&w, bytes.TrimSpace(body), nil)
	return w.out, err
}
