package router

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"
)

// MaxParams bounds the captures of one path pattern (template segments or
// named regex groups) so a Match carries them inline, without allocating.
const MaxParams = 8

type patternKind uint8

const (
	kindPrefix patternKind = iota // prefix or template, kept in the segment trie
	kindExact                     // "=/path", kept in a hash map
	kindRegex                     // "~re", tried in order
)

// pattern is one compiled entry of Route.Paths.
type pattern struct {
	kind patternKind
	raw  string // as written, for errors and Match.Pattern

	exact string // kindExact: normalized path

	segs          []segment // kindPrefix: literal or param segments
	trailingSlash bool      // kindPrefix: "/users/" needs a slash after "users"
	// wholePath marks an exact template ("=/orders/{id}"): kept in the
	// trie like a template, but it matches only when the path ends there.
	wholePath bool

	re         *regexp.Regexp // kindRegex
	anchored   bool           // kindRegex: starts with ^ or \A, so PrefixLen is the match length
	groupIndex []int          // kindRegex: submatch index of each named group

	paramNames []string
}

type segment struct {
	literal string // "" for a param segment
	param   bool
}

func parsePattern(raw string) (*pattern, error) {
	switch {
	case raw == "":
		return nil, errors.New("empty path")
	case raw[0] == '=' && strings.ContainsAny(raw, "{}"):
		p, err := parseTemplate(raw[1:])
		if err != nil {
			return nil, err
		}
		p.raw, p.wholePath = raw, true
		return p, nil
	case raw[0] == '=':
		p, err := NormalizePathString(raw[1:])
		if err != nil {
			return nil, err
		}
		return &pattern{kind: kindExact, raw: raw, exact: p}, nil
	case raw[0] == '~':
		return parseRegex(raw)
	default:
		return parseTemplate(raw)
	}
}

func parseRegex(raw string) (*pattern, error) {
	expr := raw[1:]
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, err
	}
	tree, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return nil, err
	}
	p := &pattern{kind: kindRegex, raw: raw, re: re, anchored: startsAtBeginning(tree)}
	for i, name := range re.SubexpNames() {
		if name != "" {
			p.paramNames = append(p.paramNames, name)
			p.groupIndex = append(p.groupIndex, i)
		}
	}
	if len(p.paramNames) > MaxParams {
		return nil, fmt.Errorf("more than %d named groups", MaxParams)
	}
	return p, nil
}

// startsAtBeginning reports whether every match of the expression starts at
// position 0 of the path.
func startsAtBeginning(re *syntax.Regexp) bool {
	for {
		switch re.Op {
		case syntax.OpBeginText:
			return true
		case syntax.OpConcat, syntax.OpCapture:
			if len(re.Sub) == 0 {
				return false
			}
			re = re.Sub[0]
		default:
			return false
		}
	}
}

// parseTemplate parses a prefix, with optional "{name}" segments. The
// pattern is normalized like a request path, so "/a/%7Eb" and "/a/~b" are
// the same pattern.
func parseTemplate(raw string) (*pattern, error) {
	norm, err := NormalizePathString(raw)
	if err != nil {
		return nil, err
	}
	p := &pattern{kind: kindPrefix, raw: raw}
	body := norm[1:]
	if strings.HasSuffix(body, "/") {
		p.trailingSlash = true
		body = body[:len(body)-1]
	}
	if body == "" {
		return p, nil
	}
	for s := range strings.SplitSeq(body, "/") {
		if !strings.ContainsAny(s, "{}") {
			p.segs = append(p.segs, segment{literal: s})
			continue
		}
		if len(s) < 3 || s[0] != '{' || s[len(s)-1] != '}' || !isParamName(s[1:len(s)-1]) {
			return nil, fmt.Errorf("segment %q: a parameter is a whole segment {name}, name of letters, digits and _", s)
		}
		name := s[1 : len(s)-1]
		for _, n := range p.paramNames {
			if n == name {
				return nil, fmt.Errorf("parameter {%s} appears twice", name)
			}
		}
		p.paramNames = append(p.paramNames, name)
		p.segs = append(p.segs, segment{param: true})
	}
	if len(p.paramNames) > MaxParams {
		return nil, fmt.Errorf("more than %d parameters", MaxParams)
	}
	return p, nil
}

func isParamName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '_' && !('a' <= c && c <= 'z') && !('A' <= c && c <= 'Z') && !(i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return s != ""
}
