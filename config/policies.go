package config

// Policies maps a policy name to its settings as decoded from YAML or JSON
// (a map[string]any, or nil). A nil value on a route or service switches off a
// policy inherited from a wider scope. Each policy decodes and validates its
// own settings; the loader keeps the position of every key so that those
// errors can name FILE:LINE:COL.
type Policies map[string]any
