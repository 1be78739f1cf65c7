package upstream

import (
	"testing"

	"github.com/tollgate/tollgate/config"
)

// A single target takes the lock-free path; it must still honour weight 0,
// health and the tried list exactly as the shared path does.
func TestRoundRobinSingleTarget(t *testing.T) {
	tests := []struct {
		name    string
		weight  int
		eject   bool
		tried   bool
		wantErr error
	}{
		{"healthy", 1, false, false, nil},
		{"heavy weight", 7, false, false, nil},
		{"already tried is reused", 1, false, true, nil},
		{"drained", 0, false, false, ErrNoHealthyTarget},
		{"ejected", 1, true, false, ErrNoHealthyTarget},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRegistry(t, RegistryOptions{Now: newClock().Now})
			s := svc("s", RoundRobin, tt.weight)
			s.HealthCheck.Passive = &config.PassiveHealthCheck{UnhealthyThreshold: 1}
			p := mustPool(t, r, s)
			only := p.Targets()[0]
			if tt.eject {
				eject(p, only)
			}
			var tried []*Target
			if tt.tried {
				tried = []*Target{only}
			}
			for range 3 {
				got, err := p.Pick(nil, tried)
				if err != tt.wantErr {
					t.Fatalf("Pick: err = %v, want %v", err, tt.wantErr)
				}
				if err == nil && got != only {
					t.Fatalf("Pick = %v, want the only target", got)
				}
			}
		})
	}
}
