// Package aggregate holds the pure parts of aggregation routes, a route whose
// answer is one JSON object built from several backend calls: the call path
// templates ("/orders?user={profile.id}"), the order in which calls may run,
// and the merging of their answers.
//
// Everything here is decided when a configuration is compiled (Compile
// parses the templates and builds the dependency graph, refusing cycles) or
// is a small step of one request (Schedule says which calls may start once
// another finished, Template.Expand builds a call's path, AppendAnswer
// writes the combined answer). Sending the calls is the engine's job, so this
// package does no I/O and can be tested on its own.
package aggregate
