package cluster

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/controlplane/store"
	"github.com/tollgate/tollgate/internal/jsonx"
)

// Paths served on the cluster listener.
const (
	// StreamPath is the long-lived GET whose response carries the
	// configuration as newline-delimited JSON messages.
	StreamPath = "/cluster/v1/stream"
	// ReportPath takes a data plane's Report (POST, JSON).
	ReportPath = "/cluster/v1/report"
)

// Headers of the stream request (the data plane's identity and what it has)
// and of its response.
const (
	HeaderNodeID   = "Tollgate-Node-Id"
	HeaderHostname = "Tollgate-Node-Hostname"
	// HeaderVersion and HeaderEpoch name the configuration the data plane
	// holds (from its cache or an earlier connection): with the control
	// plane's epoch, the stream starts with a delta from that version.
	HeaderVersion = "Tollgate-Config-Version"
	HeaderEpoch   = "Tollgate-Config-Epoch"
	// HeaderHeartbeat (response) is the heartbeat period in milliseconds:
	// a data plane that hears nothing for three periods reconnects.
	HeaderHeartbeat = "Tollgate-Heartbeat-Ms"
)

// ContentType of the stream.
const ContentType = "application/x-ndjson"

// Message types.
const (
	// TypeSnapshot carries every entity at Version, the epoch and the
	// globals: the data plane replaces what it has.
	TypeSnapshot = "snapshot"
	// TypeDelta carries the ops that take the entities from From to
	// Version (none when only the globals changed), and the globals when
	// they changed (always in the first message of a stream).
	TypeDelta = "delta"
	// TypeHeartbeat says the stream is alive and the version is current.
	TypeHeartbeat = "heartbeat"
)

// Message is one line of the stream.
type Message struct {
	Type     string         `json:"type"`
	Version  int64          `json:"version"`
	From     int64          `json:"from,omitempty"`
	Epoch    string         `json:"epoch,omitempty"`
	Globals  *Globals       `json:"globals,omitempty"`
	Entities []store.Entity `json:"entities,omitempty"`
	Ops      []store.Op     `json:"ops,omitempty"`
}

// Globals are the control plane file's settings that travel with the
// entities: the global policies, and the Redis URL (used by a data plane
// whose own file sets none).
type Globals struct {
	Policies config.Policies `json:"policies,omitempty"`
	Redis    string          `json:"redis,omitempty"`
}

// Report is what a data plane says of itself after each configuration it
// applies and at every heartbeat.
type Report struct {
	ID       string `json:"id"`
	Hostname string `json:"hostname,omitempty"`
	Version  int64  `json:"version"`
	Health   string `json:"health"`
}

// Health values of a Report.
const (
	HealthOK = "ok"
	// A Report's Health is otherwise "error: " and what went wrong.
)

// DecodeMessage parses one message and checks what its type needs.
func DecodeMessage(line []byte) (*Message, error) {
	var m Message
	if err := json.Unmarshal(line, &m); err != nil {
		return nil, fmt.Errorf("cluster message: %w", err)
	}
	switch m.Type {
	case TypeSnapshot:
		if m.Globals == nil {
			return nil, fmt.Errorf("cluster message: snapshot without globals")
		}
	case TypeDelta:
		if m.Version < m.From {
			return nil, fmt.Errorf("cluster message: delta from %d back to %d", m.From, m.Version)
		}
	case TypeHeartbeat:
	default:
		return nil, fmt.Errorf("cluster message: unknown type %q", m.Type)
	}
	return &m, nil
}

// The encoders below write messages by hand: entity bodies are already
// JSON (as the store keeps them) and go out as they are, so a snapshot of
// a large configuration costs one pass over its bytes.

// encodeGlobals returns the JSON of g, compared byte for byte to tell
// whether the globals changed.
func encodeGlobals(g Globals) ([]byte, error) { return json.Marshal(g) }

func appendSnapshot(b []byte, version int64, epoch string, globals []byte, entities []store.Entity) []byte {
	b = append(b, `{"type":"snapshot","version":`...)
	b = strconv.AppendInt(b, version, 10)
	b = append(b, `,"epoch":`...)
	b = jsonx.AppendString(b, epoch)
	b = append(b, `,"globals":`...)
	b = append(b, globals...)
	b = append(b, `,"entities":[`...)
	for i, e := range entities {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendEntity(b, e.Kind, e.Name, e.Source, e.Version, false, e.Body)
	}
	return append(b, "]}\n"...)
}

// appendDelta writes a delta; globals is nil when they did not change.
func appendDelta(b []byte, from, version int64, globals []byte, ops []store.Op) []byte {
	b = append(b, `{"type":"delta","version":`...)
	b = strconv.AppendInt(b, version, 10)
	b = append(b, `,"from":`...)
	b = strconv.AppendInt(b, from, 10)
	if globals != nil {
		b = append(b, `,"globals":`...)
		b = append(b, globals...)
	}
	b = append(b, `,"ops":[`...)
	for i, op := range ops {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendEntity(b, op.Kind, op.Name, op.Source, op.Version, op.Delete, op.Body)
	}
	return append(b, "]}\n"...)
}

func appendHeartbeat(b []byte, version int64) []byte {
	b = append(b, `{"type":"heartbeat","version":`...)
	b = strconv.AppendInt(b, version, 10)
	return append(b, "}\n"...)
}

// appendEntity writes an entity or an op: the fields of store.Entity and
// store.Op, which share their names.
func appendEntity(b []byte, kind store.Kind, name string, src store.Source, version int64, del bool, body []byte) []byte {
	b = append(b, `{"kind":`...)
	b = jsonx.AppendString(b, string(kind))
	b = append(b, `,"name":`...)
	b = jsonx.AppendString(b, name)
	if src != "" {
		b = append(b, `,"source":`...)
		b = jsonx.AppendString(b, string(src))
	}
	if version != 0 {
		b = append(b, `,"version":`...)
		b = strconv.AppendInt(b, version, 10)
	}
	if del {
		b = append(b, `,"delete":true`...)
	} else if len(body) > 0 {
		b = append(b, `,"body":`...)
		b = appendBody(b, body)
	}
	return append(b, '}')
}

// appendBody keeps a message on one line: a body the store kept indented
// is compacted.
func appendBody(b, body []byte) []byte {
	if bytes.IndexByte(body, '\n') < 0 && bytes.IndexByte(body, '\r') < 0 {
		return append(b, body...)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, body); err != nil {
		return append(b, "null"...) // cannot happen: the store holds decoded documents
	}
	return append(b, buf.Bytes()...)
}
