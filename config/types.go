// Package config holds Tollgate's configuration as plain data types, the strict
// YAML loader that keeps the position of every key, and the validation that
// reports every problem at once.
//
// Types here carry no behaviour beyond decoding and defaults: the data plane
// compiles them into its own immutable structures.
package config

// Config is the whole configuration file.
type Config struct {
	Server    Server     `yaml:"server" json:"server"`
	Admin     Admin      `yaml:"admin" json:"admin"`
	Store     string     `yaml:"store" json:"store"`
	Redis     string     `yaml:"redis" json:"redis"`
	Cluster   Cluster    `yaml:"cluster" json:"cluster"`
	Logging   Logging    `yaml:"logging" json:"logging"`
	Tracing   Tracing    `yaml:"tracing" json:"tracing"`
	Services  []Service  `yaml:"services" json:"services"`
	Routes    []Route    `yaml:"routes" json:"routes"`
	Consumers []Consumer `yaml:"consumers" json:"consumers"`
	Plans     []Plan     `yaml:"plans" json:"plans"`
	Policies  Policies   `yaml:"policies" json:"policies"`
}

// Server configures the listeners and the limits applied at the edge.
type Server struct {
	ProxyListen    string   `yaml:"proxy_listen" json:"proxy_listen"`
	AdminListen    string   `yaml:"admin_listen" json:"admin_listen"`
	TLS            *TLS     `yaml:"tls" json:"tls,omitempty"`
	Limits         Limits   `yaml:"limits" json:"limits"`
	TrustedProxies []string `yaml:"trusted_proxies" json:"trusted_proxies"`
	// HTTP2 accepts HTTP/2 besides HTTP/1.1 (default true): by ALPN on the
	// TLS listener, with prior knowledge (h2c) on the clear one.
	HTTP2 *bool `yaml:"http2" json:"http2,omitempty"`
	// Timeouts at the client edge. Zero means the default.
	ReadHeaderTimeout Duration `yaml:"read_header_timeout" json:"read_header_timeout"`
	IdleTimeout       Duration `yaml:"idle_timeout" json:"idle_timeout"`
	// DrainTimeout bounds how long SIGTERM waits for in-flight requests.
	DrainTimeout Duration `yaml:"drain_timeout" json:"drain_timeout"`
}

// TLS configures the TLS proxy listener.
type TLS struct {
	Listen       string        `yaml:"listen" json:"listen"`
	Certificates []Certificate `yaml:"certificates" json:"certificates"`
	ClientCA     string        `yaml:"client_ca" json:"client_ca"`
	// HTTP3 serves HTTP/3 (QUIC) on the UDP port of the same address.
	HTTP3 bool `yaml:"http3" json:"http3"`
}

// Certificate is a PEM certificate chain and its key, by file name.
type Certificate struct {
	Cert string `yaml:"cert" json:"cert"`
	Key  string `yaml:"key" json:"key"`
}

// Limits bounds what a client may send.
type Limits struct {
	MaxHeaderBytes        int   `yaml:"max_header_bytes" json:"max_header_bytes"`
	MaxBodyBytes          int64 `yaml:"max_body_bytes" json:"max_body_bytes"`
	MaxURIBytes           int   `yaml:"max_uri_bytes" json:"max_uri_bytes"`
	MaxConcurrentRequests int   `yaml:"max_concurrent_requests" json:"max_concurrent_requests"`
}

// Admin configures the admin API.
type Admin struct {
	Tokens []AdminToken `yaml:"tokens" json:"tokens"`
	// Pprof serves Go's profiler under /debug/pprof/ on the admin listener.
	Pprof bool `yaml:"pprof" json:"pprof"`
}

// AdminToken grants a role on the admin API.
type AdminToken struct {
	Name  string `yaml:"name" json:"name"`
	Token string `yaml:"token" json:"token"`
	Role  string `yaml:"role" json:"role"` // admin | viewer
}

// Cluster configures control plane to data plane communication.
type Cluster struct {
	Listen       string `yaml:"listen" json:"listen"`
	ControlPlane string `yaml:"control_plane" json:"control_plane"`
	Token        string `yaml:"token" json:"token"`
	CacheDir     string `yaml:"cache_dir" json:"cache_dir"`
}

// Logging configures the access log.
type Logging struct {
	AccessLog string `yaml:"access_log" json:"access_log"` // stdout | stderr | FILE | off
	Format    string `yaml:"format" json:"format"`         // json
}

// Tracing configures OpenTelemetry export.
type Tracing struct {
	OTLPEndpoint string   `yaml:"otlp_endpoint" json:"otlp_endpoint"`
	SampleRatio  *float64 `yaml:"sample_ratio" json:"sample_ratio,omitempty"`
}

// Service is a named group of upstream targets with its balancing and
// resilience settings.
type Service struct {
	Name           string          `yaml:"name" json:"name"`
	Targets        []Target        `yaml:"targets" json:"targets"`
	Balancing      string          `yaml:"balancing" json:"balancing"` // round_robin | least_requests | consistent_hash | random
	HashOn         string          `yaml:"hash_on" json:"hash_on"`     // ip | consumer | header:NAME
	Timeouts       Timeouts        `yaml:"timeouts" json:"timeouts"`
	Retries        Retries         `yaml:"retries" json:"retries"`
	HealthCheck    HealthCheck     `yaml:"health_check" json:"health_check"`
	CircuitBreaker *CircuitBreaker `yaml:"circuit_breaker" json:"circuit_breaker,omitempty"`
	Policies       Policies        `yaml:"policies" json:"policies"`
}

// Target is one upstream address.
type Target struct {
	URL    string `yaml:"url" json:"url"` // http, https or h2c
	Weight *int   `yaml:"weight" json:"weight,omitempty"`
}

// Timeouts for calls to a service's targets.
type Timeouts struct {
	Connect  Duration `yaml:"connect" json:"connect"`
	Response Duration `yaml:"response" json:"response"`
}

// Retries for calls to a service.
type Retries struct {
	Attempts *int `yaml:"attempts" json:"attempts,omitempty"`
}

// HealthCheck holds the active and passive health check settings.
type HealthCheck struct {
	Active  *ActiveHealthCheck  `yaml:"active" json:"active,omitempty"`
	Passive *PassiveHealthCheck `yaml:"passive" json:"passive,omitempty"`
}

// ActiveHealthCheck probes each target periodically.
type ActiveHealthCheck struct {
	Path               string   `yaml:"path" json:"path"`
	Interval           Duration `yaml:"interval" json:"interval"`
	Timeout            Duration `yaml:"timeout" json:"timeout"`
	HealthyThreshold   int      `yaml:"healthy_threshold" json:"healthy_threshold"`
	UnhealthyThreshold int      `yaml:"unhealthy_threshold" json:"unhealthy_threshold"`
}

// PassiveHealthCheck marks a target unhealthy from the answers of real traffic.
type PassiveHealthCheck struct {
	UnhealthyStatuses  []int    `yaml:"unhealthy_statuses" json:"unhealthy_statuses"`
	UnhealthyThreshold int      `yaml:"unhealthy_threshold" json:"unhealthy_threshold"`
	Cooldown           Duration `yaml:"cooldown" json:"cooldown"`
}

// CircuitBreaker opens when too many calls to a service fail.
type CircuitBreaker struct {
	ErrorRatio  float64  `yaml:"error_ratio" json:"error_ratio"`
	MinRequests int      `yaml:"min_requests" json:"min_requests"`
	Window      Duration `yaml:"window" json:"window"`
	OpenFor     Duration `yaml:"open_for" json:"open_for"`
}

// Route matches requests and sends them to a service, an aggregation or a mock.
type Route struct {
	Name      string            `yaml:"name" json:"name"`
	Hosts     []string          `yaml:"hosts" json:"hosts"`
	Paths     []string          `yaml:"paths" json:"paths"`
	Methods   []string          `yaml:"methods" json:"methods"`
	Headers   map[string]string `yaml:"headers" json:"headers"`
	Service   string            `yaml:"service" json:"service"`
	StripPath bool              `yaml:"strip_path" json:"strip_path"`
	// PreserveHost sends the client's Host header upstream instead of the
	// target's host.
	PreserveHost bool            `yaml:"preserve_host" json:"preserve_host"`
	WebSocket    *bool           `yaml:"websocket" json:"websocket,omitempty"`
	Priority     int             `yaml:"priority" json:"priority"`
	Policies     Policies        `yaml:"policies" json:"policies"`
	Aggregate    []AggregateCall `yaml:"aggregate" json:"aggregate"`
	Mock         *Mock           `yaml:"mock" json:"mock,omitempty"`
}

// AggregateCall is one backend call of an aggregation route.
type AggregateCall struct {
	Key      string   `yaml:"key" json:"key"`
	Service  string   `yaml:"service" json:"service"`
	Path     string   `yaml:"path" json:"path"`
	Optional bool     `yaml:"optional" json:"optional"`
	Timeout  Duration `yaml:"timeout" json:"timeout"`
}

// Mock is a static response served by the gateway itself.
type Mock struct {
	Status  int               `yaml:"status" json:"status"`
	Headers map[string]string `yaml:"headers" json:"headers"`
	Body    string            `yaml:"body" json:"body"`
}

// Consumer is an identified client of the APIs.
type Consumer struct {
	Name        string      `yaml:"name" json:"name"`
	Groups      []string    `yaml:"groups" json:"groups"`
	Plan        string      `yaml:"plan" json:"plan"`
	Credentials Credentials `yaml:"credentials" json:"credentials"`
}

// Credentials are a consumer's means of authentication, by policy name.
type Credentials struct {
	KeyAuth   []KeyCredential   `yaml:"key-auth" json:"key-auth"`
	BasicAuth []BasicCredential `yaml:"basic-auth" json:"basic-auth"`
	JWT       []JWTCredential   `yaml:"jwt" json:"jwt"`
	MTLS      []MTLSCredential  `yaml:"mtls" json:"mtls"`
}

// KeyCredential is an API key, given as the key itself or as the hex
// SHA-256 of the key (keys created through the admin API are kept only so).
type KeyCredential struct {
	Key    string `yaml:"key" json:"key,omitempty"`
	SHA256 string `yaml:"sha256" json:"sha256,omitempty"`
}

// BasicCredential is a username and password.
type BasicCredential struct {
	Username string `yaml:"username" json:"username"`
	Password string `yaml:"password" json:"password"`
}

// JWTCredential identifies a consumer by the issuer of its tokens.
type JWTCredential struct {
	Issuer    string `yaml:"issuer" json:"issuer"`
	Secret    string `yaml:"secret" json:"secret"`
	PublicKey string `yaml:"public_key" json:"public_key"`
	Algorithm string `yaml:"algorithm" json:"algorithm"`
}

// MTLSCredential identifies a consumer by its client certificate.
type MTLSCredential struct {
	SubjectCN string `yaml:"subject_cn" json:"subject_cn"`
	SAN       string `yaml:"san" json:"san"`
}

// Plan is a commercial plan with its price and limits.
type Plan struct {
	Name      string         `yaml:"name" json:"name"`
	Price     *Price         `yaml:"price" json:"price,omitempty"`
	Quota     *Quota         `yaml:"quota" json:"quota,omitempty"`
	RateLimit *PlanRateLimit `yaml:"rate_limit" json:"rate_limit,omitempty"`
	Overage   *Overage       `yaml:"overage" json:"overage,omitempty"`
}

// Price of a plan per period, in the currency's minor unit.
type Price struct {
	Amount   int64  `yaml:"amount" json:"amount"`
	Currency string `yaml:"currency" json:"currency"`
	Period   string `yaml:"period" json:"period"` // day | week | month | year
}

// Quota is a number of requests per period.
type Quota struct {
	Requests int64  `yaml:"requests" json:"requests"`
	Period   string `yaml:"period" json:"period"`
}

// PlanRateLimit is a plan's rate limit.
type PlanRateLimit struct {
	Limit  int      `yaml:"limit" json:"limit"`
	Window Duration `yaml:"window" json:"window"`
}

// Overage is the price of requests beyond the quota.
type Overage struct {
	AmountPer1000 int64 `yaml:"amount_per_1000" json:"amount_per_1000"`
}
