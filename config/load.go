package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// Load reads the file at path, expands ${ENV_VAR} and ${ENV_VAR:-default} in
// string values, decodes it strictly, applies defaults and validates it. On
// failure the error is an Errors value listing every problem found.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, Errors{{File: path, Msg: err.Error()}}
	}
	return Parse(path, data)
}

// Parse is Load for a file already in memory; filename is used in messages.
func Parse(filename string, data []byte) (*Config, error) {
	return parse(filename, data, os.LookupEnv)
}

func parse(filename string, data []byte, lookup func(string) (string, bool)) (*Config, error) {
	root, err := parseYAML(filename, data)
	if err != nil {
		return nil, err
	}
	d := newDecoder(filename, lookup)
	cfg := &Config{}
	if root != nil {
		d.collectAnchors(root)
		d.decode(root, reflect.ValueOf(cfg).Elem(), "", nodePos(root))
	}
	cfg.ApplyDefaults()
	for _, fe := range cfg.Validate() {
		if d.wasDropped(fe.Path) {
			continue
		}
		p := d.positionOf(fe.Path)
		d.errs = append(d.errs, &Error{File: filename, Line: p.line, Col: p.col, Path: fe.Path, Msg: fe.Msg})
	}
	if len(d.errs) > 0 {
		d.errs.sort()
		return nil, d.errs
	}
	return cfg, nil
}

// parseYAML returns the body of the single document in data, or nil for an
// empty file.
func parseYAML(filename string, data []byte) (root ast.Node, err error) {
	defer func() {
		// The YAML parser is third-party code fed with user input: a crash
		// in it must become an error, not take the gateway down.
		if r := recover(); r != nil {
			root, err = nil, Errors{{File: filename, Msg: fmt.Sprintf("invalid YAML: %v", r)}}
		}
	}()
	// Duplicate keys are reported by the decoder, all of them, not only the
	// first one as the parser would.
	f, err := parser.ParseBytes(data, 0, parser.AllowDuplicateMapKey())
	if err != nil {
		return nil, syntaxError(filename, err)
	}
	var bodies []ast.Node
	for _, doc := range f.Docs {
		if doc != nil && doc.Body != nil {
			bodies = append(bodies, doc.Body)
		}
	}
	switch len(bodies) {
	case 0:
		return nil, nil
	case 1:
		return bodies[0], nil
	}
	p := nodePos(bodies[1])
	return nil, Errors{{File: filename, Line: p.line, Col: p.col, Msg: "only one YAML document is allowed per file"}}
}

func syntaxError(filename string, err error) error {
	e := &Error{File: filename, Msg: err.Error()}
	var ye yaml.Error
	if errors.As(err, &ye) {
		e.Msg = ye.GetMessage()
		if tk := ye.GetToken(); tk != nil && tk.Position != nil {
			e.Line, e.Col = tk.Position.Line, tk.Position.Column
		}
	}
	return Errors{e}
}

// positionOf finds the position of path, or of its nearest ancestor that
// has one (a missing field is reported where its parent is written).
func (d *decoder) positionOf(path string) pos {
	for {
		if p, ok := d.positions[path]; ok {
			return p
		}
		parent, ok := parentPath(path)
		if !ok {
			return pos{}
		}
		path = parent
	}
}

func parentPath(path string) (string, bool) {
	if path == "" {
		return "", false
	}
	if strings.HasSuffix(path, "]") {
		if i := strings.LastIndexByte(path, '['); i >= 0 {
			return path[:i], true
		}
	}
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return "", true
	}
	return path[:i], true
}

func (d *decoder) wasDropped(path string) bool {
	for _, p := range d.dropped {
		if path == p || strings.HasPrefix(path, p+".") || strings.HasPrefix(path, p+"[") {
			return true
		}
	}
	return false
}
