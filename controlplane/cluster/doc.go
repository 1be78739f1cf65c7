// Package cluster carries the configuration from a control plane
// (`tollgate cp`) to its data planes (`tollgate dp`).
//
// The wire format is newline-delimited JSON over one long-lived HTTP
// response (HTTP/2 over TLS, HTTP/1.1 chunked in clear): a data plane opens
// GET /cluster/v1/stream with its bearer token, its node id and the version
// and epoch of what it already holds, and reads Messages:
//
//	{"type":"snapshot","version":12,"epoch":"v1@...","globals":{...},"entities":[...]}
//	{"type":"delta","version":13,"from":12,"ops":[{"kind":"routes","name":"r","body":{...},"version":13}]}
//	{"type":"heartbeat","version":13}
//
// A data plane that holds nothing, or a version of another store history
// (epoch), gets a snapshot; any other gets a delta from its version: after
// the first snapshot only the store's ops travel. The control plane side
// (Server) follows the Controller's announcements, not a timer: each change
// is read from the store once (Store.Since), encoded once into a log every
// stream reads from, and written to each stream as soon as it is there, so
// a change reaches data planes within milliseconds and a slow data plane
// holds up no other. The data plane reports the version it serves and its
// health (POST /cluster/v1/report); the server keeps the registry of nodes
// the admin API lists.
//
// The data plane side (Client) applies messages to a controlplane.Replica,
// assembles the configuration (its own file's server, logging and tracing
// settings with the control plane's entities, global policies and Redis URL)
// and hands it to the engine off the stream's goroutine, coalescing bursts.
// What the engine accepted is written to the cache directory (the last
// snapshot as received plus a journal of the deltas since, each file
// replaced atomically), so a data plane restarted while the control plane is
// away serves its last good configuration. It reconnects with a jittered
// exponential backoff and, reconnecting, gets only what it missed.
package cluster
