package transform

import "github.com/tollgate/tollgate/config"

// RoundTrip builds the document of a JSON text (already known valid) and
// writes it back, compact, with no edit.
func RoundTrip(body []byte) []byte {
	d := getDocument(body)
	defer putDocument(d)
	return d.write(nil, d.root)
}

// EditJSON applies json settings without templates to a JSON text (already
// known valid).
func EditJSON(body []byte, s *JSONSettings) ([]byte, []config.FieldError) {
	j, errs := compileJSON(s, DefaultMaxBodyBytes)
	if len(errs) > 0 {
		return nil, errs
	}
	d := getDocument(body)
	defer putDocument(d)
	sc := getScratch()
	defer putScratch(sc)
	j.edit(d, nil, sc)
	return d.write(nil, d.root), nil
}
