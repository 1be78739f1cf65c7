package introspection

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/dataplane/policy"
)

// maxAnswerBytes bounds the endpoint's answer read into memory.
const maxAnswerBytes = 1 << 20

// result is what the endpoint said about one token. It is shared by every
// request carrying the token while it is cached: read-only once made.
type result struct {
	active   bool
	fetched  time.Time // when the endpoint answered
	expires  time.Time // when the cache may drop it
	tokenExp time.Time // the token's exp; zero when the answer has none
	// claims are the answer's top-level fields as header values.
	claims map[string]string
	scopes []string
	// stranger is the consumer made for identity, the user named by the
	// field the fetching route looks at, for when no consumer is configured
	// under that name.
	identity string
	stranger *policy.Consumer
}

// newTransport is the HTTP transport of one endpoint's client, with its own
// bounds on connecting (a call's own deadline bounds the rest).
func newTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
}

// basicAuth is the Authorization header for the gateway's credentials. As
// RFC 6749 section 2.3.1 asks, both are form-encoded first.
func basicAuth(clientID, secret string) string {
	cred := url.QueryEscape(clientID) + ":" + url.QueryEscape(secret)
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(cred))
}

// errEndpoint is an endpoint failure: the token could not be checked.
var errEndpoint = errors.New("introspection endpoint")

// introspect asks the endpoint about token (RFC 7662 section 2.1).
func (p *instance) introspect(token string) (*result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
	defer cancel()
	form := "token=" + url.QueryEscape(token) + "&token_type_hint=access_token"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.endpoint, strings.NewReader(form))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errEndpoint, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", p.authorization)
	resp, err := p.shared.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errEndpoint, err)
	}
	defer resp.Body.Close()
	body := io.LimitReader(resp.Body, maxAnswerBytes)
	defer io.Copy(io.Discard, body) //nolint:errcheck // draining only keeps the connection reusable
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return nil, fmt.Errorf("%w refused the gateway's credentials (status %d): check client_id and client_secret", errEndpoint, resp.StatusCode)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("%w answered status %d", errEndpoint, resp.StatusCode)
	}
	var answer map[string]any
	dec := json.NewDecoder(body)
	dec.UseNumber()
	if err := dec.Decode(&answer); err != nil {
		return nil, fmt.Errorf("%w answered no JSON object: %v", errEndpoint, err)
	}
	active, ok := answer["active"].(bool)
	if !ok {
		return nil, fmt.Errorf("%w answered without a boolean \"active\"", errEndpoint)
	}
	return p.newResult(answer, active, time.Now()), nil
}

// newResult keeps what requests need of an answer, and sets how long the
// cache keeps it by the settings of p, the route that asked.
func (p *instance) newResult(answer map[string]any, active bool, now time.Time) *result {
	r := &result{active: active, fetched: now}
	if !active {
		r.expires = now.Add(p.negativeTTL)
		return r
	}
	r.expires = now.Add(p.cacheTTL)
	if n, ok := answer["exp"].(json.Number); ok {
		if f, err := n.Float64(); err == nil {
			r.tokenExp = time.Unix(int64(f), 0)
			if r.tokenExp.Before(r.expires) {
				r.expires = r.tokenExp
			}
		}
	}
	r.claims = make(map[string]string, len(answer))
	for k, v := range answer {
		if s, ok := headerValue(v); ok {
			r.claims[k] = s
		}
	}
	r.scopes = scopesOf(answer["scope"])
	if r.identity = identityOf(r.claims, p.claim); r.identity != "" {
		r.stranger = policy.NewConsumer(&config.Consumer{Name: r.identity})
	}
	return r
}

// identityOf names the token's user: the field claim, else sub, else
// client_id (tokens of the client credentials grant have no user).
func identityOf(claims map[string]string, claim string) string {
	if v := claims[claim]; v != "" {
		return v
	}
	if v := claims["sub"]; v != "" {
		return v
	}
	return claims["client_id"]
}

// scopesOf reads the scope field: a space-separated string (RFC 7662), or a
// list as some servers send.
func scopesOf(v any) []string {
	switch s := v.(type) {
	case string:
		return strings.Fields(s)
	case []any:
		out := make([]string, 0, len(s))
		for _, e := range s {
			if str, ok := e.(string); ok {
				out = append(out, str)
			}
		}
		return out
	}
	return nil
}

// headerValue renders a field of the answer as a header value: strings as
// they are, lists joined with ", ", objects as JSON. Control characters
// become spaces so that no value can split a header.
func headerValue(v any) (string, bool) {
	var s string
	switch x := v.(type) {
	case nil:
		return "", false
	case string:
		s = x
	case json.Number:
		s = x.String()
	case bool:
		s = strconv.FormatBool(x)
	case []any:
		parts := make([]string, 0, len(x))
		for _, e := range x {
			if p, ok := headerValue(e); ok {
				parts = append(parts, p)
			}
		}
		s = strings.Join(parts, ", ")
	default:
		b, err := json.Marshal(x)
		if err != nil {
			return "", false
		}
		s = string(b)
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s), true
}
