package cluster

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"github.com/tollgate/tollgate/controlplane/admin"
)

// Node statuses.
const (
	StatusConnected    = "connected"
	StatusDisconnected = "disconnected"
)

// registry is the control plane's list of data planes: connected while a
// stream of theirs is open, with what they last reported. A node gone for
// longer than retention is forgotten.
type registry struct {
	now       func() time.Time
	retention time.Duration

	mu    sync.Mutex
	nodes map[string]*nodeState
}

type nodeState struct {
	node    admin.Node
	streams int
}

func newRegistry(now func() time.Time, retention time.Duration) *registry {
	return &registry{now: now, retention: retention, nodes: map[string]*nodeState{}}
}

func (r *registry) get(id string) *nodeState {
	n := r.nodes[id]
	if n == nil {
		n = &nodeState{node: admin.Node{ID: id}}
		r.nodes[id] = n
	}
	return n
}

// connected records a stream opened by a data plane holding version.
func (r *registry) connected(id, hostname, address string, version int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.get(id)
	n.streams++
	n.node.Hostname, n.node.Address, n.node.LastContact = hostname, address, r.now()
	if version > n.node.ConfigVersion || n.node.ConfigVersion == 0 {
		n.node.ConfigVersion = version
	}
}

// disconnected records the end of a stream.
func (r *registry) disconnected(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n := r.nodes[id]; n != nil && n.streams > 0 {
		n.streams--
		n.node.LastContact = r.now()
	}
}

// report records what a data plane says of itself.
func (r *registry) report(rep Report, address string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.get(rep.ID)
	if rep.Hostname != "" {
		n.node.Hostname = rep.Hostname
	}
	n.node.Address, n.node.ConfigVersion, n.node.Health, n.node.LastContact = address, rep.Version, rep.Health, r.now()
}

// list returns the nodes by hostname, then id.
func (r *registry) list() []admin.Node {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	out := make([]admin.Node, 0, len(r.nodes))
	for id, n := range r.nodes {
		if n.streams == 0 && now.Sub(n.node.LastContact) > r.retention {
			delete(r.nodes, id)
			continue
		}
		node := n.node
		node.Status = StatusDisconnected
		if n.streams > 0 {
			node.Status = StatusConnected
		}
		out = append(out, node)
	}
	slices.SortFunc(out, func(a, b admin.Node) int {
		return cmp.Or(cmp.Compare(a.Hostname, b.Hostname), cmp.Compare(a.ID, b.ID))
	})
	return out
}

// counts returns how many nodes are connected and how many are not.
func (r *registry) counts() (connected, disconnected int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range r.nodes {
		if n.streams > 0 {
			connected++
		} else {
			disconnected++
		}
	}
	return connected, disconnected
}
