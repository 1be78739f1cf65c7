package openapi

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// Spec is a loaded and validated OpenAPI 3 document with its operations
// indexed. It is read-only once loaded and shared by every route naming it.
type Spec struct {
	// Location is the file or URL the document was first loaded from.
	Location string
	Doc      *openapi3.T
	// Operations are in document order.
	Operations []*Operation
	byRef      map[string]*Operation

	routerOnce sync.Once
	router     routers.Router
	routerErr  error
}

// Operation is one method of one path of a document.
type Operation struct {
	Method string // upper case, as routed
	Path   string // the path template as the document writes it
	// ID is the operationId, "" when the document gives none.
	ID        string
	PathItem  *openapi3.PathItem
	Operation *openapi3.Operation
}

// Ref names the operation in settings: its operationId, else
// "METHOD /path".
func (o *Operation) Ref() string {
	if o.ID != "" {
		return o.ID
	}
	return o.Method + " " + o.Path
}

// Parameters are the operation's parameters with those of its path item
// that it does not override, as OpenAPI merges them.
func (o *Operation) Parameters() openapi3.Parameters {
	params := slices.Clone(o.Operation.Parameters)
	for _, p := range o.PathItem.Parameters {
		if p.Value != nil && o.Operation.Parameters.GetByInAndName(p.Value.In, p.Value.Name) == nil {
			params = append(params, p)
		}
	}
	return params
}

func newSpec(location string, doc *openapi3.T) (*Spec, error) {
	s := &Spec{Location: location, Doc: doc, byRef: map[string]*Operation{}}
	if doc.Paths != nil {
		paths := doc.Paths.Keys()
		slices.SortFunc(paths, func(a, b string) int {
			return cmp.Or(cmp.Compare(line(doc.Paths.Value(a).Origin), line(doc.Paths.Value(b).Origin)), cmp.Compare(a, b))
		})
		for _, path := range paths {
			item := doc.Paths.Value(path)
			var ops []*Operation
			for method, op := range item.Operations() {
				ops = append(ops, &Operation{Method: strings.ToUpper(method), Path: path, ID: op.OperationID, PathItem: item, Operation: op})
			}
			slices.SortFunc(ops, func(a, b *Operation) int {
				return cmp.Or(cmp.Compare(line(a.Operation.Origin), line(b.Operation.Origin)), cmp.Compare(a.Method, b.Method))
			})
			s.Operations = append(s.Operations, ops...)
		}
	}
	for _, op := range s.Operations {
		s.byRef[op.Method+" "+op.Path] = op
		if op.ID != "" {
			if _, dup := s.byRef[op.ID]; dup {
				return nil, fmt.Errorf("operationId %q is used twice", op.ID)
			}
			s.byRef[op.ID] = op
		}
	}
	return s, nil
}

// line is where an element starts in its file, 0 when unknown.
func line(o *openapi3.Origin) int {
	if o == nil || o.Key == nil {
		return 0
	}
	return o.Key.Line
}

// Operation finds an operation by its operationId or as "METHOD /path"
// (the method in any case).
func (s *Spec) Operation(ref string) (*Operation, error) {
	if op := s.byRef[ref]; op != nil {
		return op, nil
	}
	if method, path, ok := strings.Cut(strings.TrimSpace(ref), " "); ok {
		if op := s.byRef[strings.ToUpper(method)+" "+strings.TrimSpace(path)]; op != nil {
			return op, nil
		}
	}
	msg := fmt.Sprintf("no operation %q in %q", ref, s.Location)
	if len(s.Operations) > 0 && len(s.Operations) <= 12 {
		refs := make([]string, len(s.Operations))
		for i, op := range s.Operations {
			refs[i] = op.Ref()
		}
		msg += " (operations: " + strings.Join(refs, ", ") + ")"
	}
	return nil, fmt.Errorf("%s", msg)
}

// Router is kin-openapi's router over the document's operations, built on
// first use. The document's servers are left out: a request's path is
// matched against the document's paths as written, as the gateway serves
// an API on its own host whatever the servers say.
func (s *Spec) Router() (routers.Router, error) {
	s.routerOnce.Do(func() {
		doc := *s.Doc
		doc.Servers = nil
		s.router, s.routerErr = legacy.NewRouter(&doc)
	})
	return s.router, s.routerErr
}
