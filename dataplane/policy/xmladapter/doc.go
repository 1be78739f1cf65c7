// Package xmladapter is the xml-adapter policy: it puts a JSON API in front
// of an XML or SOAP backend. JSON request bodies (and, for bodiless calls,
// query and path parameters) become the XML the backend expects, wrapped in
// a SOAP 1.1 or 1.2 envelope when it speaks SOAP; its XML answers become
// JSON, and a SOAP Fault becomes the gateway's JSON error.
//
// The conversion is a fixed, documented mapping rather than a schema:
// members are elements, arrays repeated elements, "@name" members
// attributes and "#text" the text of an element that also has attributes
// or children. JSON member order is kept, so the XML sent is the same for
// the same body. Values are strings on the way back unless `types` says a
// path holds numbers or booleans, because XML itself does not say.
//
// Requests are converted in Handle (transform phase), with the body read
// whole by Exchange.ReadBody and replaced with its new Content-Length.
// Answers are converted in Respond, and only when the gateway holds them in
// memory: Handle asks for that with Exchange.BufferResponse(max_body_bytes),
// and an answer larger than that, without a length, compressed or not XML
// at all goes out untouched (and the reason is logged), because a JSON API
// is better served by the backend's own answer than by a made-up error.
//
// XML is read with encoding/xml's token API (RawToken) into a small tree of
// nodes in one slice, never into structs by reflection; the tree is needed
// because whether an element becomes an array is only known once all its
// siblings are seen. The reader refuses a DOCTYPE (so no entity can ever be
// declared, let alone expanded), and bounds the nesting depth and the count
// of elements and attributes besides the size already bounded by
// max_body_bytes: a hostile or broken backend costs at most that.
//
// Answering SOAP from a bodiless GET needs more than header and body edits:
// the upstream method and body change, and a SOAP service usually lives at
// one path (endpoint). Those edits are made through the exchange when it
// offers them (upstreamEditor); otherwise settings needing them are refused
// at load, never silently ignored.
package xmladapter
