package xmladapter

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/tollgate/tollgate/internal/jsonx"
)

// Namespaces the reader knows.
const (
	soap11NS = "http://schemas.xmlsoap.org/soap/envelope/"
	soap12NS = "http://www.w3.org/2003/05/soap-envelope"
	xsiNS    = "http://www.w3.org/2001/XMLSchema-instance"
	xmlNS    = "http://www.w3.org/XML/1998/namespace"
)

// none marks the end of a list of nodes.
const none = -1

// nodeKind is what a node of the tree is.
type nodeKind uint8

const (
	kindElement nodeKind = iota
	kindAttr
	// kindText is a run of an element's text that came after one of its
	// children (mixed content); the text before the first child is the
	// element's own.
	kindText
)

// node is an element, an attribute or a run of text of the tree. Children
// (attributes first, then elements and text runs, in document order) are
// linked by index; text lives in the tree's arena.
type node struct {
	name  string // the JSON name: the local name, or "prefix:local"
	local string
	uri   string // namespace URI, for the elements SOAP is recognised by

	first, last, next  int32
	textStart, textEnd int32

	kind     nodeKind
	isNil    bool // xsi:nil="true"
	hasAttrs bool
	hasElems bool
	hasRuns  bool // text runs among the children

	// While the element's parent is written: the group of same-name
	// siblings this one heads (an offset into tree.kids and a length).
	group, groupLen int32
}

// binding is a namespace declaration in scope; prev is the binding of
// the same prefix it hides, or none.
type binding struct {
	prefix, uri string
	depth       int
	prev        int32
}

// tree is an XML document read for conversion, with the working memory of
// its reading and writing. Trees are pooled.
type tree struct {
	nodes    []node
	text     []byte
	bindings []binding
	scope    map[string]int32 // prefix to its binding in scope
	stack    []int32          // open elements
	open     []xml.Name       // their names as written, for end tag checks
	kids     []int32          // children being grouped, per level
	path     []byte           // the path of the element being written
	mixed    []byte           // the text runs of a mixed element, joined
	reader   bytes.Reader
}

var treePool = sync.Pool{New: func() any { return new(tree) }}

// maxPooledTree keeps a rare huge document from pinning its memory.
const maxPooledTree = 64 << 10

func getTree() *tree { return treePool.Get().(*tree) }

func putTree(t *tree) {
	if cap(t.nodes) > maxPooledTree || cap(t.text) > 4*maxPooledTree {
		return
	}
	clear(t.nodes[:cap(t.nodes)]) // drop the strings for the collector
	clear(t.bindings)
	clear(t.open)
	clear(t.scope)
	t.nodes, t.text, t.bindings, t.open = t.nodes[:0], t.text[:0], t.bindings[:0], t.open[:0]
	t.stack, t.kids, t.path, t.mixed = t.stack[:0], t.kids[:0], t.path[:0], t.mixed[:0]
	t.reader.Reset(nil)
	treePool.Put(t)
}

// xmlLimits bound what reading a document may cost besides its size.
type xmlLimits struct {
	depth    int // deepest element nesting; the top element is at depth 1
	elements int // elements and attributes
}

// problem is why an answer could not be converted, for the log.
type problem string

func (p problem) Error() string { return string(p) }

var (
	errDoctype   = problem("it has a DOCTYPE or another <! declaration, which is refused (no DTD, no entities)")
	errTooDeep   = problem("it nests deeper than max_depth")
	errTooMany   = problem("it has more elements and attributes than max_elements")
	errNoRoot    = problem("it has no element")
	errTwoRoots  = problem("it has more than one top element")
	errOutside   = problem("it has text outside its top element")
	errUnclosed  = problem("it ends before its elements are closed")
	errMismatch  = problem("an end tag does not match its start tag")
	errNotSOAP   = problem("it is not a SOAP envelope (Envelope and Body in a SOAP 1.1 or 1.2 namespace)")
	errMalformed = problem("it is not well-formed XML")
)

var utf8BOM = []byte("\xEF\xBB\xBF")

// parse reads body into the tree. Only what conversion needs is kept:
// elements, attributes (namespace declarations and xsi attributes only
// when names keep their prefixes) and text; comments and processing
// instructions are skipped.
func (t *tree) parse(body []byte, lim xmlLimits, stripNS bool) error {
	t.reader.Reset(bytes.TrimPrefix(body, utf8BOM))
	d := xml.NewDecoder(&t.reader) // a bytes.Reader is a ByteReader: no bufio copy
	d.Strict = true                // unknown entities are errors; none can be declared
	count, closed := 0, false
	for {
		tok, err := d.RawToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			return errors.Join(errMalformed, err)
		}
		switch tk := tok.(type) {
		case xml.StartElement:
			depth := len(t.stack)
			switch {
			case closed:
				return errTwoRoots
			case depth >= lim.depth:
				return errTooDeep
			}
			if count += 1 + len(tk.Attr); count > lim.elements {
				return errTooMany
			}
			t.declare(tk.Attr, depth)
			n := t.element(tk.Name, depth, stripNS)
			t.attributes(n, tk.Attr, stripNS)
			if depth > 0 {
				parent := t.stack[depth-1]
				t.link(parent, n)
				t.nodes[parent].hasElems = true
			}
			t.stack = append(t.stack, n)
			t.open = append(t.open, tk.Name)
		case xml.EndElement:
			depth := len(t.stack)
			if depth == 0 || t.open[depth-1] != tk.Name {
				return errMismatch
			}
			t.undeclare(depth - 1)
			t.stack, t.open = t.stack[:depth-1], t.open[:depth-1]
			closed = depth == 1
		case xml.CharData:
			if len(t.stack) == 0 {
				if !isSpace(tk) {
					return errOutside
				}
				continue
			}
			t.addText(t.stack[len(t.stack)-1], b2s(tk))
		case xml.Directive:
			return errDoctype
		}
	}
	switch {
	case len(t.stack) > 0:
		return errUnclosed
	case len(t.nodes) == 0:
		return errNoRoot
	}
	return nil
}

func (t *tree) newNode(name, local string) int32 {
	t.nodes = append(t.nodes, node{name: name, local: local, first: none, last: none, next: none})
	return int32(len(t.nodes) - 1)
}

// element adds an element named as written (prefix in Space).
func (t *tree) element(n xml.Name, depth int, stripNS bool) int32 {
	name := n.Local
	if !stripNS && n.Space != "" {
		name = n.Space + ":" + n.Local
	}
	i := t.newNode(name, n.Local)
	if depth <= 2 { // Envelope, Body and the Body's first child
		t.nodes[i].uri = t.resolve(n.Space)
	}
	return i
}

// attributes adds el's attributes. xsi:nil is read, not kept; namespace
// declarations and other xsi attributes are kept only with prefixes.
func (t *tree) attributes(el int32, attrs []xml.Attr, stripNS bool) {
	for _, a := range attrs {
		ns := a.Name.Space == "xmlns" || a.Name.Space == "" && a.Name.Local == "xmlns"
		if !ns && a.Name.Space != "" && t.resolve(a.Name.Space) == xsiNS {
			if a.Name.Local == "nil" {
				v := strings.TrimSpace(a.Value)
				t.nodes[el].isNil = v == "true" || v == "1"
				continue
			}
			ns = true
		}
		if ns && stripNS {
			continue
		}
		name := a.Name.Local
		if !stripNS && a.Name.Space != "" {
			name = a.Name.Space + ":" + a.Name.Local
		}
		i := t.newNode(name, a.Name.Local)
		t.nodes[i].kind = kindAttr
		t.addText(i, a.Value)
		t.link(el, i)
		t.nodes[el].hasAttrs = true
	}
}

func (t *tree) link(parent, child int32) {
	p := &t.nodes[parent]
	if p.last == none {
		p.first = child
	} else {
		t.nodes[p.last].next = child
	}
	p.last = child
}

// addText appends a run of text to a node's text. Runs of one element
// are contiguous until a child comes between them (mixed content); a run
// after a child is a text node of its own, so that reading never copies
// text twice.
func (t *tree) addText(n int32, data string) {
	nd := &t.nodes[n]
	end := int32(len(t.text))
	switch {
	case nd.textEnd == end && nd.textStart != nd.textEnd:
	case nd.hasElems:
		r := t.newNode("", "")
		t.nodes[r].kind = kindText
		t.link(n, r)
		t.nodes[n].hasRuns = true
		n = r
		fallthrough
	default:
		if nd := &t.nodes[n]; nd.textStart == nd.textEnd {
			nd.textStart = end
		}
	}
	t.text = append(t.text, data...)
	t.nodes[n].textEnd = int32(len(t.text))
}

// mixedText returns the element's text with its runs joined.
func (t *tree) mixedText(n int32) []byte {
	if !t.nodes[n].hasRuns {
		return t.textOf(n)
	}
	t.mixed = append(t.mixed[:0], t.textOf(n)...)
	for c := t.nodes[n].first; c != none; c = t.nodes[c].next {
		if t.nodes[c].kind == kindText {
			t.mixed = append(t.mixed, t.textOf(c)...)
		}
	}
	return t.mixed
}

func (t *tree) textOf(n int32) []byte {
	nd := &t.nodes[n]
	return t.text[nd.textStart:nd.textEnd]
}

// declare records the namespace declarations of an element at depth.
func (t *tree) declare(attrs []xml.Attr, depth int) {
	for _, a := range attrs {
		prefix := a.Name.Local
		switch {
		case a.Name.Space == "xmlns":
		case a.Name.Space == "" && a.Name.Local == "xmlns":
			prefix = ""
		default:
			continue
		}
		if t.scope == nil {
			t.scope = map[string]int32{}
		}
		prev, ok := t.scope[prefix]
		if !ok {
			prev = none
		}
		t.scope[prefix] = int32(len(t.bindings))
		t.bindings = append(t.bindings, binding{prefix: prefix, uri: a.Value, depth: depth, prev: prev})
	}
}

// undeclare drops the declarations of the element at depth, now closed,
// bringing back those they hid.
func (t *tree) undeclare(depth int) {
	i := len(t.bindings)
	for i > 0 && t.bindings[i-1].depth == depth {
		i--
		b := &t.bindings[i]
		if b.prev == none {
			delete(t.scope, b.prefix)
		} else {
			t.scope[b.prefix] = b.prev
		}
	}
	clear(t.bindings[i:])
	t.bindings = t.bindings[:i]
}

// resolve returns the namespace URI of a prefix ("" for the default).
func (t *tree) resolve(prefix string) string {
	if prefix == "xml" {
		return xmlNS
	}
	if i, ok := t.scope[prefix]; ok {
		return t.bindings[i].uri
	}
	return ""
}

// child returns the first child element of n with the local name, or none.
func (t *tree) child(n int32, local string) int32 {
	for c := t.nodes[n].first; c != none; c = t.nodes[c].next {
		if t.nodes[c].kind == kindElement && t.nodes[c].local == local {
			return c
		}
	}
	return none
}

// firstElement returns the first child element of n, or none.
func (t *tree) firstElement(n int32) int32 {
	for c := t.nodes[n].first; c != none; c = t.nodes[c].next {
		if t.nodes[c].kind == kindElement {
			return c
		}
	}
	return none
}

// valueType is what a text value is written as.
type valueType uint8

const (
	typeString valueType = iota
	typeNumber
	typeBoolean
)

// pathRule is what the settings say about one element or attribute path.
type pathRule struct {
	array bool
	typ   valueType
}

// pathRules are arrays and types, by path ("user/phones/phone",
// "user/@id", "price/#text").
type pathRules struct {
	byPath map[string]pathRule
	// arrays lists, by parent path, the children that are always arrays,
	// so that one that is absent is still written, as [].
	arrays map[string][]string
}

func (r *pathRules) at(path []byte) pathRule {
	if len(r.byPath) == 0 {
		return pathRule{}
	}
	return r.byPath[b2s(path)]
}

// writer writes a tree as JSON under the settings' rules.
type writer struct {
	t     *tree
	rules *pathRules
}

// pushPath appends a name (with a prefix byte such as '@', or 0) to the
// path and returns the mark to truncate back to.
func (w *writer) pushPath(prefix byte, name string) int {
	mark := len(w.t.path)
	if mark > 0 {
		w.t.path = append(w.t.path, '/')
	}
	if prefix != 0 {
		w.t.path = append(w.t.path, prefix)
	}
	w.t.path = append(w.t.path, name...)
	return mark
}

// value writes element n: a string (or the type its path has) when it has
// neither attributes nor children, else an object of "@" attributes,
// children (a name that repeats, or that arrays lists, becomes an array)
// and "#text".
func (w *writer) value(dst []byte, n int32) []byte {
	t := w.t
	nd := &t.nodes[n]
	var expected []string
	if len(w.rules.arrays) > 0 {
		expected = w.rules.arrays[b2s(t.path)]
	}
	if !nd.hasAttrs && !nd.hasElems && len(expected) == 0 {
		if nd.isNil {
			return append(dst, "null"...)
		}
		text := t.textOf(n)
		if isSpace(text) {
			text = nil
		}
		return w.scalar(dst, text, w.rules.at(t.path).typ)
	}

	dst = append(dst, '{')
	first := true
	for c := nd.first; c != none; c = t.nodes[c].next {
		if t.nodes[c].kind != kindAttr {
			continue
		}
		dst = appendKey(member(dst, &first), '@', t.nodes[c].name)
		mark := w.pushPath('@', t.nodes[c].name)
		dst = w.scalar(dst, t.textOf(c), w.rules.at(t.path).typ)
		t.path = t.path[:mark]
	}
	if nd.hasElems {
		dst = w.children(dst, n, &first)
	}
	for _, name := range expected {
		if !w.hasNamed(n, name) {
			dst = append(appendKey(member(dst, &first), 0, name), '[', ']')
		}
	}
	if nd.hasElems || nd.hasAttrs {
		if text := trimSpace(t.mixedText(n)); len(text) > 0 {
			dst = appendKey(member(dst, &first), 0, textKey)
			mark := w.pushPath(0, textKey)
			dst = w.scalar(dst, text, w.rules.at(t.path).typ)
			t.path = t.path[:mark]
		}
	}
	return append(dst, '}')
}

// hasNamed reports whether n has a child element with this JSON name.
func (w *writer) hasNamed(n int32, name string) bool {
	for c := w.t.nodes[n].first; c != none; c = w.t.nodes[c].next {
		if w.t.nodes[c].kind == kindElement && w.t.nodes[c].name == name {
			return true
		}
	}
	return false
}

// children writes n's child elements grouped by name, each group where
// its first element is: siblings of one name are sorted together (stably,
// so in document order), then each group is written when its head comes.
func (w *writer) children(dst []byte, n int32, first *bool) []byte {
	t := w.t
	base := len(t.kids)
	for c := t.nodes[n].first; c != none; c = t.nodes[c].next {
		if t.nodes[c].kind == kindElement {
			t.kids = append(t.kids, c)
		}
	}
	end := len(t.kids)
	if end-base > 1 {
		slices.SortStableFunc(t.kids[base:end], func(a, b int32) int {
			return strings.Compare(t.nodes[a].name, t.nodes[b].name)
		})
	}
	for i := base; i < end; {
		j := i + 1
		for j < end && t.nodes[t.kids[j]].name == t.nodes[t.kids[i]].name {
			j++
		}
		head := &t.nodes[t.kids[i]]
		head.group, head.groupLen = int32(i), int32(j-i)
		i = j
	}
	for c := t.nodes[n].first; c != none; c = t.nodes[c].next {
		head := &t.nodes[c]
		if head.kind != kindElement || head.groupLen == 0 {
			continue
		}
		group, count := int(head.group), int(head.groupLen)
		dst = appendKey(member(dst, first), 0, head.name)
		mark := w.pushPath(0, head.name)
		if count > 1 || w.rules.at(t.path).array {
			dst = append(dst, '[')
			for k := range count {
				if k > 0 {
					dst = append(dst, ',')
				}
				dst = w.value(dst, t.kids[group+k]) // t.kids may grow: index it afresh
			}
			dst = append(dst, ']')
		} else {
			dst = w.value(dst, t.kids[group])
		}
		t.path = t.path[:mark]
	}
	t.kids = t.kids[:base]
	return dst
}

// scalar writes text as its type says: a number or boolean when it reads
// as one, null when it is empty, else (and for strings) a JSON string.
func (w *writer) scalar(dst, text []byte, typ valueType) []byte {
	if typ != typeString {
		v := trimSpace(text)
		switch {
		case len(v) == 0:
			return append(dst, "null"...)
		case typ == typeNumber && isJSONNumber(v):
			return append(dst, v...)
		case typ == typeBoolean:
			switch string(v) {
			case "true", "1":
				return append(dst, "true"...)
			case "false", "0":
				return append(dst, "false"...)
			}
		}
	}
	return jsonx.AppendString(dst, b2s(text))
}

// member writes the comma before a member but the first.
func member(dst []byte, first *bool) []byte {
	if *first {
		*first = false
		return dst
	}
	return append(dst, ',')
}

// appendKey writes a member name (after a prefix byte such as '@', or 0)
// and its colon.
func appendKey(dst []byte, prefix byte, name string) []byte {
	start := len(dst)
	dst = jsonx.AppendString(dst, name)
	if prefix != 0 { // after the opening quote; names never start with an escape
		dst = append(dst, 0)
		copy(dst[start+2:], dst[start+1:])
		dst[start+1] = prefix
	}
	return append(dst, ':')
}

// isJSONNumber reports whether b is a number as JSON writes them.
func isJSONNumber(b []byte) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i == len(b) || b[i] < '0' || b[i] > '9' {
			return false
		}
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i == len(b) || b[i] < '0' || b[i] > '9' {
			return false
		}
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	}
	return i == len(b)
}
