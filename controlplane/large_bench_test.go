package controlplane_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/controlplane"
	"github.com/tollgate/tollgate/controlplane/store"
	"github.com/tollgate/tollgate/controlplane/store/memory"
	"github.com/tollgate/tollgate/dataplane/engine"
	_ "github.com/tollgate/tollgate/dataplane/policy/keyauth"
)

// largeFile is a configuration of 10,000 routes over 10 services and
// 100,000 consumers with a key each, one route using key-auth.
func largeFile(routes, consumers int) *config.Config {
	cfg := config.Default()
	for i := range 10 {
		cfg.Services = append(cfg.Services, config.Service{Name: fmt.Sprintf("svc%d", i),
			Targets: []config.Target{{URL: fmt.Sprintf("http://127.0.0.1:%d", 1+i)}}})
	}
	cfg.Routes = append(cfg.Routes, config.Route{Name: "live", Paths: []string{"/live"}, Mock: &config.Mock{Body: "live"},
		Policies: config.Policies{"key-auth": map[string]any{}}})
	for i := range routes {
		cfg.Routes = append(cfg.Routes, config.Route{Name: fmt.Sprintf("route-%05d", i), Methods: []string{"GET", "POST"},
			Paths: []string{fmt.Sprintf("/api/v1/resource-%05d", i)}, Service: fmt.Sprintf("svc%d", i%10), StripPath: i%2 == 0})
	}
	for i := range consumers {
		cfg.Consumers = append(cfg.Consumers, config.Consumer{Name: fmt.Sprintf("c%07d", i), Groups: []string{"partners"},
			Credentials: config.Credentials{KeyAuth: []config.KeyCredential{{Key: fmt.Sprintf("key-%07d", i)}}}})
	}
	cfg.ApplyDefaults()
	return cfg
}

// BenchmarkLargeChange times one admin API write (a new mock route) to a
// controller holding 10,000 routes and 100,000 consumers, checked by an
// engine as the control plane does.
func BenchmarkLargeChange(b *testing.B) {
	ctx := context.Background()
	c, err := controlplane.New(ctx, memory.New(), config.Default())
	if err != nil {
		b.Fatal(err)
	}
	eng := engine.New(engine.Options{})
	defer eng.Close()
	c.SetCheck(eng.Check)
	if _, err := c.ApplyFile(ctx, largeFile(10_000, 100_000)); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		body := fmt.Sprintf(`{"name":"bench-%06d","paths":["/bench/%d"],"mock":{"body":"ok"}}`, i, i)
		if _, err := c.Change(ctx, store.Change{Actor: "bench", Ops: []store.Op{{Kind: store.Routes, Name: fmt.Sprintf("bench-%06d", i), Source: store.SourceAPI, Body: []byte(body)}}}); err != nil {
			b.Fatal(err)
		}
	}
}
