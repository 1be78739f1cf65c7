package controlplane

import (
	"reflect"
	"testing"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/controlplane/store"
	"github.com/tollgate/tollgate/controlplane/store/memory"
)

// Validating only what a change touches finds exactly what validating the
// whole configuration finds, for changes of every kind: broken entities,
// references to deleted ones, keys shared between consumers.
func TestValidateChangeFindsWhatWholeValidationFinds(t *testing.T) {
	base := config.Default()
	start := []store.Op{
		apiPut(store.Services, "users", config.Service{Name: "users", Targets: []config.Target{{URL: "http://127.0.0.1:9001"}}}),
		apiPut(store.Services, "orders", config.Service{Name: "orders", Targets: []config.Target{{URL: "http://127.0.0.1:9002"}}}),
		apiPut(store.Routes, "users-api", config.Route{Name: "users-api", Paths: []string{"/users"}, Service: "users"}),
		apiPut(store.Routes, "orders-api", config.Route{Name: "orders-api", Paths: []string{"/orders"}, Service: "orders"}),
		apiPut(store.Plans, "gold", config.Plan{Name: "gold"}),
		apiPut(store.Consumers, "alice", config.Consumer{Name: "alice", Plan: "gold", Credentials: config.Credentials{KeyAuth: []config.KeyCredential{{Key: "alice-key"}}}}),
		apiPut(store.Consumers, "bob", config.Consumer{Name: "bob", Groups: []string{"staff"}}),
		apiPut(store.Keys, "k1", Key{ID: "k1", Consumer: "bob", SHA256: "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"}),
	}
	changes := map[string][]store.Op{
		"a good route":                {apiPut(store.Routes, "new", config.Route{Name: "new", Paths: []string{"/new"}, Service: "users"})},
		"a route to no service":       {apiPut(store.Routes, "new", config.Route{Name: "new", Paths: []string{"/new"}, Service: "nobody"})},
		"a route with a bad path":     {apiPut(store.Routes, "users-api", config.Route{Name: "users-api", Paths: []string{"users"}, Service: "users"})},
		"a service routes still use":  {{Kind: store.Services, Name: "orders", Delete: true}},
		"a broken service":            {apiPut(store.Services, "orders", config.Service{Name: "orders"})},
		"a plan consumers still use":  {{Kind: store.Plans, Name: "gold", Delete: true}},
		"a consumer's empty group":    {apiPut(store.Consumers, "bob", config.Consumer{Name: "bob", Groups: []string{" "}})},
		"a consumer with bob's key":   {apiPut(store.Consumers, "carol", config.Consumer{Name: "carol", Credentials: config.Credentials{KeyAuth: []config.KeyCredential{{SHA256: "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"}}}})},
		"a consumer with alice's key": {apiPut(store.Consumers, "carol", config.Consumer{Name: "carol", Credentials: config.Credentials{KeyAuth: []config.KeyCredential{{Key: "alice-key"}}}})},
		"a consumer keys belong to":   {{Kind: store.Consumers, Name: "bob", Delete: true}},
		"a key of nobody":             {apiPut(store.Keys, "k2", Key{ID: "k2", Consumer: "nobody", SHA256: "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25c"})},
		"a key like alice's":          {apiPut(store.Keys, "k2", Key{ID: "k2", Consumer: "bob", SHA256: "c7d3fa9e0ea0e3e5b6e0b33c0bde2d5ef3e88ea8d2e1ad4e0b2b0c0f1b4e5a6d"})},
		"a consumer with a bad plan":  {apiPut(store.Consumers, "dave", config.Consumer{Name: "dave", Plan: "silver"})},
		"a good consumer":             {apiPut(store.Consumers, "dave", config.Consumer{Name: "dave", Plan: "gold"})},
		"a route and its service":     {apiPut(store.Services, "pay", config.Service{Name: "pay", Targets: []config.Target{{URL: "http://127.0.0.1:9003"}}}), apiPut(store.Routes, "pay", config.Route{Name: "pay", Paths: []string{"/pay"}, Service: "pay"})},
		"a route put then deleted":    {apiPut(store.Routes, "x", config.Route{Name: "x"}), {Kind: store.Routes, Name: "x", Delete: true}},
	}
	valid := map[string]bool{"a good route": true, "a good consumer": true, "a route and its service": true,
		"a route put then deleted": true, "a key like alice's": true}
	for name, ops := range changes {
		t.Run(name, func(t *testing.T) {
			s := newEntitySet()
			for _, op := range start {
				if err := s.apply(op); err != nil {
					t.Fatal(err)
				}
			}
			if problems := validate(s, base); len(problems) > 0 {
				t.Fatalf("the starting set is not valid: %v", problems)
			}
			for _, op := range ops {
				if err := s.apply(op); err != nil {
					t.Fatal(err)
				}
			}
			whole, changed := validate(s, base), validateChange(s, base, ops)
			if wantValid := valid[name]; wantValid != (len(whole) == 0) {
				t.Errorf("valid: %v, want %v (%v)", len(whole) == 0, wantValid, whole)
			}
			if !reflect.DeepEqual(whole, changed) {
				t.Errorf("whole validation: %v\nchange validation: %v", whole, changed)
			}
		})
	}
}

// A refused change leaves the entities exactly as they were, and the next
// one is checked against them.
func TestARefusedChangeLeavesNothingBehind(t *testing.T) {
	c := newController(t, memory.New())
	if _, err := c.ApplyFile(ctx, parse(t, fileV1)); err != nil {
		t.Fatal(err)
	}
	before, v := c.Config()
	_, err := c.Change(ctx, store.Change{Actor: "t", Ops: []store.Op{
		apiPut(store.Consumers, "bob", config.Consumer{Name: "bob"}),
		{Kind: store.Routes, Name: "old", Delete: true},
		apiPut(store.Routes, "users-api", config.Route{Name: "users-api", Paths: []string{"/users"}, Service: "nobody"}),
	}})
	if err == nil {
		t.Fatal("a route to an unknown service was accepted")
	}
	after, v2 := c.Config()
	if v2 != v || !reflect.DeepEqual(before, after) {
		t.Fatalf("the refused change left something: version %d -> %d\n%+v\n%+v", v, v2, before, after)
	}
	if c.Source(store.Consumers, "bob") != "" {
		t.Fatal("the refused change's consumer stayed")
	}
}
