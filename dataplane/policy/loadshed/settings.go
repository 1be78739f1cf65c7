package loadshed

import (
	"fmt"
	"strconv"
	"time"

	"github.com/tollgate/tollgate/config"
)

// Defaults of the settings.
const (
	DefaultQueueTimeout   = time.Second
	DefaultMode           = "static"
	DefaultMinConcurrent  = 1
	DefaultAdjustInterval = time.Second
)

// Bounds that keep a typing mistake from becoming a setting.
const (
	maxConcurrentCeiling = 1_000_000
	minAdjustInterval    = 10 * time.Millisecond
)

// Settings are the policy's settings.
type Settings struct {
	// MaxConcurrent is the most requests of the route in flight upstream at
	// once; in adaptive mode it is the ceiling of the limit.
	MaxConcurrent int `yaml:"max_concurrent"`
	// QueueTimeout is how long a request may wait for a free slot. Unset:
	// DefaultQueueTimeout; 0: no waiting, a request finding no slot is
	// refused at once.
	QueueTimeout *config.Duration `yaml:"queue_timeout"`
	// QueueSize is how many requests may wait at once; beyond it they are
	// refused at once. Unset: MaxConcurrent.
	QueueSize *int `yaml:"queue_size"`
	// Mode is static (the limit is MaxConcurrent) or adaptive (the limit
	// follows the upstream's latency, between MinConcurrent and
	// MaxConcurrent).
	Mode string `yaml:"mode"`
	// TargetLatency is the 90th percentile latency adaptive mode aims for.
	TargetLatency config.Duration `yaml:"target_latency"`
	// MinConcurrent is the floor of the adaptive limit.
	MinConcurrent int `yaml:"min_concurrent"`
	// AdjustInterval is how often the adaptive limit is reconsidered.
	AdjustInterval config.Duration `yaml:"adjust_interval"`
}

// Validate reports every setting the policy cannot work with.
func (s *Settings) Validate() []config.FieldError {
	var errs []config.FieldError
	add := func(path, format string, args ...any) {
		errs = append(errs, config.FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	switch {
	case s.MaxConcurrent == 0:
		add("max_concurrent", "max_concurrent is required: the most requests of the route in flight upstream at once")
	case s.MaxConcurrent < 0 || s.MaxConcurrent > maxConcurrentCeiling:
		add("max_concurrent", "must be between 1 and %d, got %d", maxConcurrentCeiling, s.MaxConcurrent)
	}
	if q := s.QueueSize; q != nil {
		switch {
		case *q < 0 || *q > maxConcurrentCeiling:
			add("queue_size", "must be between 0 and %d, got %d", maxConcurrentCeiling, *q)
		case *q > 0 && s.QueueTimeout != nil && *s.QueueTimeout == 0:
			add("queue_size", "has no effect with queue_timeout 0 (no request waits); remove one of them")
		}
	}
	switch s.Mode {
	case "", "static":
		for _, f := range []struct {
			name string
			set  bool
		}{
			{"target_latency", s.TargetLatency != 0},
			{"min_concurrent", s.MinConcurrent != 0},
			{"adjust_interval", s.AdjustInterval != 0},
		} {
			if f.set {
				add(f.name, "only used with mode: adaptive")
			}
		}
	case "adaptive":
		if s.TargetLatency <= 0 {
			add("target_latency", "target_latency is required in adaptive mode: the 90th percentile latency to keep the upstream at (e.g. 200ms)")
		}
		if s.MinConcurrent < 0 || (s.MaxConcurrent > 0 && s.MinConcurrent > s.MaxConcurrent) {
			add("min_concurrent", "must be between 1 and max_concurrent (%d), got %d", s.MaxConcurrent, s.MinConcurrent)
		}
		if d := s.AdjustInterval.D(); d != 0 && d < minAdjustInterval {
			add("adjust_interval", "must be at least %s", minAdjustInterval)
		}
	default:
		add("mode", "must be static or adaptive, got %q", s.Mode)
	}
	return errs
}

// withDefaults returns the settings with every default filled in.
func (s Settings) withDefaults() Settings {
	if s.QueueTimeout == nil {
		d := config.Duration(DefaultQueueTimeout)
		s.QueueTimeout = &d
	}
	if s.QueueSize == nil {
		n := s.MaxConcurrent
		if *s.QueueTimeout == 0 {
			n = 0
		}
		s.QueueSize = &n
	}
	if s.Mode == "" {
		s.Mode = DefaultMode
	}
	if s.Mode == "adaptive" {
		if s.MinConcurrent == 0 {
			s.MinConcurrent = min(DefaultMinConcurrent, s.MaxConcurrent)
		}
		if s.AdjustInterval == 0 {
			s.AdjustInterval = config.Duration(DefaultAdjustInterval)
		}
	}
	return s
}

// limits are the settings (with defaults) as the limiter uses them.
func (s *Settings) limits() limits {
	l := limits{
		max:          int64(s.MaxConcurrent),
		queueSize:    *s.QueueSize,
		queueTimeout: s.QueueTimeout.D(),
	}
	if s.Mode == "adaptive" {
		l.adaptive = true
		l.min = int64(s.MinConcurrent)
		l.target = s.TargetLatency.D()
		l.interval = s.AdjustInterval.D()
	}
	return l
}

// key identifies the limiter these settings make, within a route.
func (s *Settings) key() string {
	return fmt.Sprintf("%d/%d/%s/%s/%s/%d/%s", s.MaxConcurrent, *s.QueueSize, s.QueueTimeout,
		s.Mode, s.TargetLatency, s.MinConcurrent, s.AdjustInterval)
}

// retryAfter is the Retry-After of a refusal: queue_timeout in whole
// seconds, rounded up, at least 1. A client coming back sooner would find
// the requests that were waiting with it still in the way.
func (s *Settings) retryAfter() string {
	secs := (s.QueueTimeout.D() + time.Second - 1) / time.Second
	return strconv.FormatInt(max(1, int64(secs)), 10)
}
