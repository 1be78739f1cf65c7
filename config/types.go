// Package config holds Tollgate's configuration as plain data types, the strict
// YAML loader that keeps the position of every key, and the validation that
// reports every problem at once.
//
// Types here carry no behaviour beyond decoding and defaults: the data plane
// compiles them into its own immutable structures.
package config

// Config is the whole configuration file.
type Config struct {
	Server    Server     `yaml:"server" json:"server,omitzero"`
	Admin     Admin      `yaml:"admin" json:"admin,omitzero"`
	Store     string     `yaml:"store" json:"store,omitempty"`
	Redis     string     `yaml:"redis" json:"redis,omitempty"`
	Cluster   Cluster    `yaml:"cluster" json:"cluster,omitzero"`
	Logging   Logging    `yaml:"logging" json:"logging,omitzero"`
	Tracing   Tracing    `yaml:"tracing" json:"tracing,omitzero"`
	Services  []Service  `yaml:"services" json:"services,omitempty"`
	Routes    []Route    `yaml:"routes" json:"routes,omitempty"`
	Consumers []Consumer `yaml:"consumers" json:"consumers,omitempty"`
	Plans     []Plan     `yaml:"plans" json:"plans,omitempty"`
	Policies  Policies   `yaml:"policies" json:"policies,omitempty"`
}

// Server configures the listeners and the limits applied at the edge.
type Server struct {
	ProxyListen    string   `yaml:"proxy_listen" json:"proxy_listen,omitempty"`
	AdminListen    string   `yaml:"admin_listen" json:"admin_listen,omitempty"`
	TLS            *TLS     `yaml:"tls" json:"tls,omitempty"`
	Limits         Limits   `yaml:"limits" json:"limits,omitzero"`
	TrustedProxies []string `yaml:"trusted_proxies" json:"trusted_proxies,omitempty"`
	// HTTP2 accepts HTTP/2 besides HTTP/1.1 (default true): by ALPN on the
	// TLS listener, with prior knowledge (h2c) on the clear one.
	HTTP2 *bool `yaml:"http2" json:"http2,omitempty"`
	// Timeouts at the client edge. Zero means the default.
	ReadHeaderTimeout Duration `yaml:"read_header_timeout" json:"read_header_timeout,omitempty"`
	IdleTimeout       Duration `yaml:"idle_timeout" json:"idle_timeout,omitempty"`
	// DrainTimeout bounds how long SIGTERM waits for in-flight requests.
	DrainTimeout Duration `yaml:"drain_timeout" json:"drain_timeout,omitempty"`
}

// TLS configures the TLS proxy listener.
type TLS struct {
	Listen       string        `yaml:"listen" json:"listen,omitempty"`
	Certificates []Certificate `yaml:"certificates" json:"certificates,omitempty"`
	ClientCA     string        `yaml:"client_ca" json:"client_ca,omitempty"`
	// HTTP3 serves HTTP/3 (QUIC) on the UDP port of the same address.
	HTTP3 bool `yaml:"http3" json:"http3,omitempty"`
	// ACME obtains and renews certificates for its domains from an ACME CA;
	// the certificates above, if any, serve the other names.
	ACME *ACME `yaml:"acme" json:"acme,omitempty"`
}

// ACME is where the TLS listener's automatic certificates come from.
type ACME struct {
	Email   string   `yaml:"email" json:"email,omitempty"`
	Domains []string `yaml:"domains" json:"domains,omitempty"`
	// CA is the ACME directory URL (default: Let's Encrypt's production one).
	CA string `yaml:"ca" json:"ca,omitempty"`
	// CARoot is a PEM file trusted for the CA's own HTTPS (a private CA).
	CARoot string `yaml:"ca_root" json:"ca_root,omitempty"`
	// Storage is the directory keeping accounts, keys and certificates
	// (default "acme" beside the configuration file).
	Storage string `yaml:"storage" json:"storage,omitempty"`
}

// Certificate is a PEM certificate chain and its key, by file name.
type Certificate struct {
	Cert string `yaml:"cert" json:"cert,omitempty"`
	Key  string `yaml:"key" json:"key,omitempty"`
}

// Limits bounds what a client may send.
type Limits struct {
	MaxHeaderBytes        int   `yaml:"max_header_bytes" json:"max_header_bytes,omitempty"`
	MaxBodyBytes          int64 `yaml:"max_body_bytes" json:"max_body_bytes,omitempty"`
	MaxURIBytes           int   `yaml:"max_uri_bytes" json:"max_uri_bytes,omitempty"`
	MaxConcurrentRequests int   `yaml:"max_concurrent_requests" json:"max_concurrent_requests,omitempty"`
}

// Admin configures the admin API.
type Admin struct {
	Tokens []AdminToken `yaml:"tokens" json:"tokens,omitempty"`
	// Pprof serves Go's profiler under /debug/pprof/ on the admin listener.
	Pprof bool `yaml:"pprof" json:"pprof,omitempty"`
}

// AdminToken grants a role on the admin API.
type AdminToken struct {
	Name  string `yaml:"name" json:"name,omitempty"`
	Token string `yaml:"token" json:"token,omitempty"`
	Role  string `yaml:"role" json:"role,omitempty"` // admin | viewer
}

// Cluster configures control plane to data plane communication. Listen
// and TLS are the control plane's (tollgate cp); ControlPlane, CA, Cert,
// Key and CacheDir the data plane's (tollgate dp); Token both sides'.
type Cluster struct {
	Listen       string `yaml:"listen" json:"listen,omitempty"`
	ControlPlane string `yaml:"control_plane" json:"control_plane,omitempty"`
	Token        string `yaml:"token" json:"token,omitempty"`
	CacheDir     string `yaml:"cache_dir" json:"cache_dir,omitempty"`
	// TLS serves the cluster listener over TLS.
	TLS *ClusterTLS `yaml:"tls" json:"tls,omitempty"`
	// CA is a PEM file of the certificates that may sign the control
	// plane's (empty: the system's roots).
	CA string `yaml:"ca" json:"ca,omitempty"`
	// Cert and Key are the data plane's client certificate, for a control
	// plane that asks for one (tls.client_ca).
	Cert string `yaml:"cert" json:"cert,omitempty"`
	Key  string `yaml:"key" json:"key,omitempty"`
}

// ClusterTLS is the control plane's certificate for the cluster listener
// and, with ClientCA, the CA data plane certificates must be signed by.
type ClusterTLS struct {
	Cert     string `yaml:"cert" json:"cert,omitempty"`
	Key      string `yaml:"key" json:"key,omitempty"`
	ClientCA string `yaml:"client_ca" json:"client_ca,omitempty"`
}

// Logging configures the access log.
type Logging struct {
	AccessLog string `yaml:"access_log" json:"access_log,omitempty"` // stdout | stderr | FILE | off
	Format    string `yaml:"format" json:"format,omitempty"`         // json
}

// Tracing configures OpenTelemetry export.
type Tracing struct {
	OTLPEndpoint string   `yaml:"otlp_endpoint" json:"otlp_endpoint,omitempty"`
	SampleRatio  *float64 `yaml:"sample_ratio" json:"sample_ratio,omitempty"`
}

// Service is a named group of upstream targets with its balancing and
// resilience settings.
type Service struct {
	Name           string          `yaml:"name" json:"name,omitempty"`
	Targets        []Target        `yaml:"targets" json:"targets,omitempty"`
	Balancing      string          `yaml:"balancing" json:"balancing,omitempty"` // round_robin | least_requests | consistent_hash | random
	HashOn         string          `yaml:"hash_on" json:"hash_on,omitempty"`     // ip | consumer | header:NAME
	Timeouts       Timeouts        `yaml:"timeouts" json:"timeouts,omitzero"`
	Retries        Retries         `yaml:"retries" json:"retries,omitzero"`
	HealthCheck    HealthCheck     `yaml:"health_check" json:"health_check,omitzero"`
	CircuitBreaker *CircuitBreaker `yaml:"circuit_breaker" json:"circuit_breaker,omitempty"`
	// TLS is how the gateway verifies the service's https targets; nil
	// means the system's roots and each target's host name.
	TLS      *UpstreamTLS `yaml:"tls" json:"tls,omitempty"`
	Policies Policies     `yaml:"policies" json:"policies,omitempty"`
}

// UpstreamTLS is the verification of a service's https targets.
type UpstreamTLS struct {
	// CA is a PEM bundle trusted instead of the system's roots.
	CA string `yaml:"ca" json:"ca,omitempty"`
	// ServerName is sent as SNI and checked against the certificate instead
	// of the target's host.
	ServerName string `yaml:"server_name" json:"server_name,omitempty"`
	// InsecureSkipVerify accepts any certificate (tests, trusted networks).
	InsecureSkipVerify bool `yaml:"insecure_skip_verify" json:"insecure_skip_verify,omitempty"`
}

// Target is one upstream address.
type Target struct {
	URL    string `yaml:"url" json:"url,omitempty"` // http, https or h2c
	Weight *int   `yaml:"weight" json:"weight,omitempty"`
}

// Timeouts for calls to a service's targets.
type Timeouts struct {
	Connect  Duration `yaml:"connect" json:"connect,omitempty"`
	Response Duration `yaml:"response" json:"response,omitempty"`
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
	Path               string   `yaml:"path" json:"path,omitempty"`
	Interval           Duration `yaml:"interval" json:"interval,omitempty"`
	Timeout            Duration `yaml:"timeout" json:"timeout,omitempty"`
	HealthyThreshold   int      `yaml:"healthy_threshold" json:"healthy_threshold,omitempty"`
	UnhealthyThreshold int      `yaml:"unhealthy_threshold" json:"unhealthy_threshold,omitempty"`
}

// PassiveHealthCheck marks a target unhealthy from the answers of real traffic.
type PassiveHealthCheck struct {
	UnhealthyStatuses  []int    `yaml:"unhealthy_statuses" json:"unhealthy_statuses,omitempty"`
	UnhealthyThreshold int      `yaml:"unhealthy_threshold" json:"unhealthy_threshold,omitempty"`
	Cooldown           Duration `yaml:"cooldown" json:"cooldown,omitempty"`
}

// CircuitBreaker opens when too many calls to a service fail.
type CircuitBreaker struct {
	ErrorRatio  float64  `yaml:"error_ratio" json:"error_ratio,omitempty"`
	MinRequests int      `yaml:"min_requests" json:"min_requests,omitempty"`
	Window      Duration `yaml:"window" json:"window,omitempty"`
	OpenFor     Duration `yaml:"open_for" json:"open_for,omitempty"`
}

// Route matches requests and sends them to a service, an aggregation or a mock.
type Route struct {
	Name      string            `yaml:"name" json:"name,omitempty"`
	Hosts     []string          `yaml:"hosts" json:"hosts,omitempty"`
	Paths     []string          `yaml:"paths" json:"paths,omitempty"`
	Methods   []string          `yaml:"methods" json:"methods,omitempty"`
	Headers   map[string]string `yaml:"headers" json:"headers,omitempty"`
	Service   string            `yaml:"service" json:"service,omitempty"`
	StripPath bool              `yaml:"strip_path" json:"strip_path,omitempty"`
	// PreserveHost sends the client's Host header upstream instead of the
	// target's host.
	PreserveHost bool            `yaml:"preserve_host" json:"preserve_host,omitempty"`
	WebSocket    *bool           `yaml:"websocket" json:"websocket,omitempty"`
	Priority     int             `yaml:"priority" json:"priority,omitempty"`
	Policies     Policies        `yaml:"policies" json:"policies,omitempty"`
	Aggregate    []AggregateCall `yaml:"aggregate" json:"aggregate,omitempty"`
	Mock         *Mock           `yaml:"mock" json:"mock,omitempty"`
}

// AggregateCall is one backend call of an aggregation route.
type AggregateCall struct {
	Key      string   `yaml:"key" json:"key,omitempty"`
	Service  string   `yaml:"service" json:"service,omitempty"`
	Path     string   `yaml:"path" json:"path,omitempty"`
	Optional bool     `yaml:"optional" json:"optional,omitempty"`
	Timeout  Duration `yaml:"timeout" json:"timeout,omitempty"`
}

// Mock is a static response served by the gateway itself.
type Mock struct {
	Status  int               `yaml:"status" json:"status,omitempty"`
	Headers map[string]string `yaml:"headers" json:"headers,omitempty"`
	Body    string            `yaml:"body" json:"body,omitempty"`
	// OpenAPI names an OpenAPI document (file or URL) whose example for
	// Operation at Status is the answer, instead of Body; Headers are
	// added to the example's.
	OpenAPI   string `yaml:"openapi" json:"openapi,omitempty"`
	Operation string `yaml:"operation" json:"operation,omitempty"`
}

// Consumer is an identified client of the APIs.
type Consumer struct {
	Name        string      `yaml:"name" json:"name,omitempty"`
	Groups      []string    `yaml:"groups" json:"groups,omitempty"`
	Plan        string      `yaml:"plan" json:"plan,omitempty"`
	Credentials Credentials `yaml:"credentials" json:"credentials,omitzero"`
}

// Credentials are a consumer's means of authentication, by policy name.
type Credentials struct {
	KeyAuth   []KeyCredential   `yaml:"key-auth" json:"key-auth,omitempty"`
	BasicAuth []BasicCredential `yaml:"basic-auth" json:"basic-auth,omitempty"`
	JWT       []JWTCredential   `yaml:"jwt" json:"jwt,omitempty"`
	MTLS      []MTLSCredential  `yaml:"mtls" json:"mtls,omitempty"`
}

// KeyCredential is an API key, given as the key itself or as the hex
// SHA-256 of the key (keys created through the admin API are kept only so).
type KeyCredential struct {
	Key    string `yaml:"key" json:"key,omitempty"`
	SHA256 string `yaml:"sha256" json:"sha256,omitempty"`
}

// BasicCredential is a username and password.
type BasicCredential struct {
	Username string `yaml:"username" json:"username,omitempty"`
	Password string `yaml:"password" json:"password,omitempty"`
}

// JWTCredential identifies a consumer by the issuer of its tokens.
type JWTCredential struct {
	Issuer    string `yaml:"issuer" json:"issuer,omitempty"`
	Secret    string `yaml:"secret" json:"secret,omitempty"`
	PublicKey string `yaml:"public_key" json:"public_key,omitempty"`
	Algorithm string `yaml:"algorithm" json:"algorithm,omitempty"`
}

// MTLSCredential identifies a consumer by its client certificate.
type MTLSCredential struct {
	SubjectCN string `yaml:"subject_cn" json:"subject_cn,omitempty"`
	SAN       string `yaml:"san" json:"san,omitempty"`
}

// Plan is a commercial plan with its price and limits.
type Plan struct {
	Name      string         `yaml:"name" json:"name,omitempty"`
	Price     *Price         `yaml:"price" json:"price,omitempty"`
	Quota     *Quota         `yaml:"quota" json:"quota,omitempty"`
	RateLimit *PlanRateLimit `yaml:"rate_limit" json:"rate_limit,omitempty"`
	Overage   *Overage       `yaml:"overage" json:"overage,omitempty"`
}

// Price of a plan per period, in the currency's minor unit.
type Price struct {
	Amount   int64  `yaml:"amount" json:"amount,omitempty"`
	Currency string `yaml:"currency" json:"currency,omitempty"`
	Period   string `yaml:"period" json:"period,omitempty"` // day | week | month | year
}

// Quota is a number of requests per period.
type Quota struct {
	Requests int64  `yaml:"requests" json:"requests,omitempty"`
	Period   string `yaml:"period" json:"period,omitempty"`
}

// PlanRateLimit is a plan's rate limit.
type PlanRateLimit struct {
	Limit  int      `yaml:"limit" json:"limit,omitempty"`
	Window Duration `yaml:"window" json:"window,omitempty"`
}

// Overage is the price of requests beyond the quota.
type Overage struct {
	AmountPer1000 int64 `yaml:"amount_per_1000" json:"amount_per_1000,omitempty"`
}
