package config

import (
	"strings"
	"time"
)

// Default values, in one place so that the documentation and the code agree.
const (
	DefaultProxyListen       = ":8000"
	DefaultAdminListen       = "127.0.0.1:8001"
	DefaultTLSListen         = ":8443"
	DefaultMaxHeaderBytes    = 16384
	DefaultMaxBodyBytes      = 10485760
	DefaultMaxURIBytes       = 8192
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout       = 60 * time.Second
	DefaultDrainTimeout      = 30 * time.Second
	DefaultStore             = "sqlite://tollgate.db"
	DefaultClusterListen     = ":8005"
	DefaultCacheDir          = "dp-cache"
	DefaultAccessLog         = "stdout"
	DefaultLogFormat         = "json"
	DefaultSampleRatio       = 1.0
	DefaultBalancing         = "round_robin"
	DefaultWeight            = 1
	DefaultConnectTimeout    = 2 * time.Second
	DefaultResponseTimeout   = 30 * time.Second
	// DefaultRetryAttempts counts every try, the first included.
	DefaultRetryAttempts = 2

	DefaultHealthPath                = "/healthz"
	DefaultHealthInterval            = 5 * time.Second
	DefaultHealthTimeout             = 2 * time.Second
	DefaultHealthyThreshold          = 2
	DefaultUnhealthyThreshold        = 3
	DefaultPassiveUnhealthyThreshold = 5
	DefaultPassiveCooldown           = 30 * time.Second

	DefaultBreakerErrorRatio  = 0.5
	DefaultBreakerMinRequests = 20
	DefaultBreakerWindow      = 10 * time.Second
	DefaultBreakerOpenFor     = 30 * time.Second

	DefaultMockStatus = 200
)

// DefaultPassiveUnhealthyStatuses are the upstream statuses that count as
// failures for passive health checks.
func DefaultPassiveUnhealthyStatuses() []int { return []int{502, 503, 504} }

// Default returns a configuration with every default applied and no
// services, routes or consumers.
func Default() *Config {
	c := &Config{}
	c.ApplyDefaults()
	return c
}

// ApplyDefaults fills every unset field with its default and normalises
// values that are compared case-insensitively (methods, hosts). It is
// idempotent. Zero durations and counts mean "unset".
func (c *Config) ApplyDefaults() {
	s := &c.Server
	setString(&s.ProxyListen, DefaultProxyListen)
	setString(&s.AdminListen, DefaultAdminListen)
	if s.TLS != nil {
		setString(&s.TLS.Listen, DefaultTLSListen)
	}
	setInt(&s.Limits.MaxHeaderBytes, DefaultMaxHeaderBytes)
	setInt(&s.Limits.MaxURIBytes, DefaultMaxURIBytes)
	if s.Limits.MaxBodyBytes == 0 {
		s.Limits.MaxBodyBytes = DefaultMaxBodyBytes
	}
	setDuration(&s.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	setDuration(&s.IdleTimeout, DefaultIdleTimeout)
	setDuration(&s.DrainTimeout, DefaultDrainTimeout)

	setString(&c.Store, DefaultStore)
	setString(&c.Cluster.Listen, DefaultClusterListen)
	setString(&c.Cluster.CacheDir, DefaultCacheDir)
	setString(&c.Logging.AccessLog, DefaultAccessLog)
	setString(&c.Logging.Format, DefaultLogFormat)
	if c.Tracing.SampleRatio == nil {
		r := DefaultSampleRatio
		c.Tracing.SampleRatio = &r
	}

	for i := range c.Services {
		c.Services[i].applyDefaults()
	}
	for i := range c.Routes {
		c.Routes[i].applyDefaults()
	}
}

func (s *Service) applyDefaults() {
	setString(&s.Balancing, DefaultBalancing)
	for i := range s.Targets {
		if s.Targets[i].Weight == nil {
			w := DefaultWeight
			s.Targets[i].Weight = &w
		}
	}
	setDuration(&s.Timeouts.Connect, DefaultConnectTimeout)
	setDuration(&s.Timeouts.Response, DefaultResponseTimeout)
	if s.Retries.Attempts == nil {
		a := DefaultRetryAttempts
		s.Retries.Attempts = &a
	}
	if a := s.HealthCheck.Active; a != nil {
		setString(&a.Path, DefaultHealthPath)
		setDuration(&a.Interval, DefaultHealthInterval)
		setDuration(&a.Timeout, DefaultHealthTimeout)
		setInt(&a.HealthyThreshold, DefaultHealthyThreshold)
		setInt(&a.UnhealthyThreshold, DefaultUnhealthyThreshold)
	}
	if p := s.HealthCheck.Passive; p != nil {
		if len(p.UnhealthyStatuses) == 0 {
			p.UnhealthyStatuses = DefaultPassiveUnhealthyStatuses()
		}
		setInt(&p.UnhealthyThreshold, DefaultPassiveUnhealthyThreshold)
		setDuration(&p.Cooldown, DefaultPassiveCooldown)
	}
	if b := s.CircuitBreaker; b != nil {
		if b.ErrorRatio == 0 {
			b.ErrorRatio = DefaultBreakerErrorRatio
		}
		setInt(&b.MinRequests, DefaultBreakerMinRequests)
		setDuration(&b.Window, DefaultBreakerWindow)
		setDuration(&b.OpenFor, DefaultBreakerOpenFor)
	}
}

func (r *Route) applyDefaults() {
	for i, m := range r.Methods {
		r.Methods[i] = strings.ToUpper(m)
	}
	for i, h := range r.Hosts {
		r.Hosts[i] = strings.ToLower(h)
	}
	if r.WebSocket == nil {
		t := true
		r.WebSocket = &t
	}
	if r.Mock != nil && r.Mock.Status == 0 {
		r.Mock.Status = DefaultMockStatus
	}
}

func setString(p *string, def string) {
	if *p == "" {
		*p = def
	}
}

func setInt(p *int, def int) {
	if *p == 0 {
		*p = def
	}
}

func setDuration(p *Duration, def time.Duration) {
	if *p == 0 {
		*p = Duration(def)
	}
}
