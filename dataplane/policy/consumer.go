package policy

import (
	"strings"

	"github.com/tollgate/tollgate/config"
)

// Consumer is an identified client of the APIs, as authentication finds it.
// Consumers are built once per snapshot and shared by every request: treat
// them as read-only.
type Consumer struct {
	Name   string
	Groups []string
	Plan   string
	// Credentials are the consumer's credentials from the configuration,
	// for authentication policies to index.
	Credentials config.Credentials

	name   []byte // Name, for the upstream header
	groups []byte // Groups joined with ", ", for the upstream header
}

// NewConsumer makes a consumer from its configuration.
func NewConsumer(c *config.Consumer) *Consumer {
	return &Consumer{
		Name: c.Name, Groups: c.Groups, Plan: c.Plan, Credentials: c.Credentials,
		name: []byte(c.Name), groups: []byte(strings.Join(c.Groups, ", ")),
	}
}

// InGroup reports whether the consumer belongs to group.
func (c *Consumer) InGroup(group string) bool {
	for _, g := range c.Groups {
		if g == group {
			return true
		}
	}
	return false
}

// HeaderName and HeaderGroups are the values of X-Consumer-Name and
// X-Consumer-Groups.
func (c *Consumer) HeaderName() []byte   { return c.name }
func (c *Consumer) HeaderGroups() []byte { return c.groups }

// Directory is the consumers of one snapshot, by name.
type Directory struct {
	byName map[string]*Consumer
	all    []*Consumer
}

// NewDirectory indexes the configuration's consumers.
func NewDirectory(cs []config.Consumer) *Directory {
	d := &Directory{byName: make(map[string]*Consumer, len(cs)), all: make([]*Consumer, 0, len(cs))}
	for i := range cs {
		c := NewConsumer(&cs[i])
		d.byName[c.Name] = c
		d.all = append(d.all, c)
	}
	return d
}

// Get returns the consumer named name.
func (d *Directory) Get(name string) (*Consumer, bool) {
	c, ok := d.byName[name]
	return c, ok
}

// All returns every consumer, in configuration order.
func (d *Directory) All() []*Consumer { return d.all }
