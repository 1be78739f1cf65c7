package jwtauth

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
)

// keySet is one fetched JWKS, immutable once published.
type keySet struct {
	byKid map[string][]*verifyKey
	all   []*verifyKey
}

func (s *keySet) lookup(kid []byte) []*verifyKey {
	if s == nil {
		return nil
	}
	return s.byKid[string(kid)]
}

// jwks keeps the keys published at one URL. It lives in the policy State,
// so it outlives reloads and is shared by every route naming the same URL
// with the same intervals.
//
// Fetches happen in the background every refresh interval, and on demand
// when a token names a kid the set does not have. On-demand fetches are
// bounded: at most one starts per minGap, and requests arriving while one
// is running wait for it instead of starting their own, so a flood of
// tokens with made-up kids costs the identity provider one request per
// minGap at most.
type jwks struct {
	url     string
	refresh time.Duration
	minGap  time.Duration
	client  *http.Client
	log     *slog.Logger

	set atomic.Pointer[keySet]

	mu        sync.Mutex
	inflight  chan struct{} // closed when the running fetch ends; nil when none runs
	lastStart time.Time     // of the last fetch, for minGap
	fetched   bool          // a fetch has completed (well or not)

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

func jwksStateKey(url string, refresh, minGap time.Duration) string {
	return fmt.Sprintf("jwtauth.jwks %s %s %s", url, refresh, minGap)
}

// newJWKS starts the background refresh, whose first fetch runs at once.
func newJWKS(url string, refresh, minGap time.Duration, log *slog.Logger) *jwks {
	ctx, cancel := context.WithCancel(context.Background())
	j := &jwks{
		url: url, refresh: refresh, minGap: minGap, log: log,
		client: &http.Client{Timeout: jwksFetchTimeout},
		ctx:    ctx, cancel: cancel, done: make(chan struct{}),
	}
	// Claim the first fetch before anyone can look, so that the first
	// requests wait for it rather than finding no keys.
	j.begin(true)
	go j.run()
	return j
}

func (j *jwks) run() {
	defer close(j.done)
	j.fetch()
	t := time.NewTicker(j.refresh)
	defer t.Stop()
	for {
		select {
		case <-j.ctx.Done():
			return
		case <-t.C:
			if _, start := j.begin(true); start {
				j.fetch()
			}
		}
	}
}

// Close stops the background refresh and any fetch in progress.
func (j *jwks) Close() error {
	j.cancel()
	<-j.done
	return nil
}

// keys returns the current set, waiting for the first fetch if it has not
// ended yet.
func (j *jwks) keys() *keySet {
	if s := j.set.Load(); s != nil {
		return s
	}
	j.mu.Lock()
	wait, fetched := j.inflight, j.fetched
	j.mu.Unlock()
	if wait != nil && !fetched {
		j.await(wait)
	}
	return j.set.Load()
}

// refetch fetches the set again for a kid it did not have, within the
// bounds, and returns the set then in force.
func (j *jwks) refetch() *keySet {
	wait, start := j.begin(false)
	if start {
		j.fetch()
	} else if wait != nil {
		j.await(wait)
	}
	return j.set.Load()
}

// begin decides whether a fetch starts now (start true: the caller runs
// it and must call fetch) or whether one is running already (wait is its
// channel). A forced fetch (the periodic one) ignores minGap.
func (j *jwks) begin(force bool) (wait chan struct{}, start bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.inflight != nil {
		return j.inflight, false
	}
	now := time.Now()
	if !force && now.Sub(j.lastStart) < j.minGap {
		return nil, false
	}
	j.inflight, j.lastStart = make(chan struct{}), now
	return j.inflight, true
}

func (j *jwks) await(wait <-chan struct{}) {
	select {
	case <-wait:
	case <-j.ctx.Done():
	}
}

// fetch gets and publishes the set, then releases whoever waits. A failed
// fetch keeps the previous keys.
func (j *jwks) fetch() {
	set, err := j.get()
	if err != nil {
		if j.ctx.Err() == nil {
			j.log.Warn("jwt: fetching JWKS failed; keeping the keys held", "url", j.url, "err", err)
		}
	} else {
		j.set.Store(set)
	}
	j.mu.Lock()
	done := j.inflight
	j.inflight, j.fetched = nil, true
	j.mu.Unlock()
	close(done)
}

func (j *jwks) get() (*keySet, error) {
	req, err := http.NewRequestWithContext(j.ctx, http.MethodGet, j.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json, application/jwk-set+json")
	resp, err := j.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, jwksMaxBodyBytes+1))
	if err != nil {
		return nil, err
	}
	if len(body) > jwksMaxBodyBytes {
		return nil, fmt.Errorf("key set larger than %d bytes", jwksMaxBodyBytes)
	}
	return parseKeySet(body, j.log, j.url)
}

// parseKeySet keeps the set's signature keys this policy can use. Keys for
// encryption, symmetric keys (a published secret is no secret) and keys of
// unknown types are left out.
func parseKeySet(body []byte, log *slog.Logger, url string) (*keySet, error) {
	set, err := jwk.Parse(body, jwk.WithIgnoreParseError(true))
	if err != nil {
		return nil, err
	}
	ks := &keySet{byKid: map[string][]*verifyKey{}}
	for i := range set.Len() {
		k, ok := set.Key(i)
		if !ok {
			continue
		}
		if use, ok := k.KeyUsage(); ok && use != "sig" {
			continue
		}
		kid, _ := k.KeyID()
		raw, err := jwk.PublicRawKeyOf(k)
		if err != nil {
			log.Warn("jwt: JWKS key skipped", "url", url, "kid", kid, "err", err)
			continue
		}
		algs, _ := publicKeyAlgorithms(raw)
		if algs == 0 {
			continue // symmetric or of a type no JWS algorithm here verifies
		}
		if a, ok := k.Algorithm(); ok {
			named := parseAlgorithm(a.String())
			if !algs.has(named) {
				log.Warn("jwt: JWKS key skipped: its alg does not fit its type", "url", url, "kid", kid, "alg", a.String())
				continue
			}
			algs = setOf(named)
		}
		vk := &verifyKey{kid: kid, algs: algs, raw: raw}
		ks.all = append(ks.all, vk)
		if kid != "" {
			ks.byKid[kid] = append(ks.byKid[kid], vk)
		}
	}
	return ks, nil
}
