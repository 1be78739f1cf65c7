// Package transform holds the request-transform and response-transform
// policies: header, query, status and JSON body edits of the request on its
// way upstream and of the response on its way to the client.
//
// Everything that can be decided at load time is: header names are checked
// (the headers the gateway controls, such as Host, X-Forwarded-*,
// X-Consumer-* and hop-by-hop ones, are refused with the reason), value
// templates ("{consumer}", "{header.X-User-Id}") are compiled into literal
// pieces and request values, JSON pointers are split, and values to add to
// a body are turned into JSON text with holes for their templates. A request
// then costs appends into pooled buffers; header and query edits allocate
// nothing.
//
// Templates read the request as it reached the policy: a value may name a
// header the same policy removes or renames. request-transform runs in the
// transform phase, after authentication, so "{consumer}" and the headers an
// authentication policy sets (jwt's claims_to_headers) are there to read.
//
// Query edits work on the raw query string: parameters that are neither
// removed nor replaced keep their exact bytes and order, and added values
// are percent-encoded so that no value can add a parameter of its own.
//
// JSON bodies are edited as a tree that points into the body's bytes
// (document): values the edits do not touch are written back as they came.
// The request body is read whole (Exchange.ReadBody, bounded by
// max_body_bytes) and sent on with its new Content-Length. Response bodies
// are only edited when the gateway holds them in memory anyway: streamed
// answers stay streamed.
package transform
