// Package openapi reads OpenAPI 3 documents for the gateway: it loads and
// validates them once (kin-openapi does the parsing), turns their
// operations into routes (tollgate import-openapi), and their examples into
// mock answers. The request-validation policy checks requests against the
// documents loaded here.
package openapi
