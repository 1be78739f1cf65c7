package engine

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/config"
)

// TestReloadUnderLoadLosesNoRequest applies a new configuration every few
// milliseconds while clients keep sending requests, and requires every single
// request to succeed, with both configurations really taking turns.
func TestReloadUnderLoadLosesNoRequest(t *testing.T) {
	var hitsA, hitsB atomic.Int64
	backend := func(hits *atomic.Int64, name string) *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			io.Copy(io.Discard, r.Body)
			io.WriteString(w, name)
		}))
		t.Cleanup(s.Close)
		return s
	}
	a, b := backend(&hitsA, "a"), backend(&hitsB, "b")
	configFor := func(i int) *config.Config {
		target := a.URL
		if i%2 == 1 {
			target = b.URL
		}
		cfg := oneRoute(config.Route{Name: fmt.Sprintf("r%d", i%2), Paths: []string{"/"}}, target)
		cfg.Services[0].Name = fmt.Sprintf("svc%d", i%2)
		cfg.Routes[0].Service = cfg.Services[0].Name
		cfg.ApplyDefaults()
		return cfg
	}
	gw := startGateway(t, configFor(0))

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.Get(gw.url + "/work")
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || (string(body) != "a" && string(body) != "b") {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("%d %q", resp.StatusCode, body))
					continue
				}
				ok.Add(1)
			}
		}()
	}
	reloads := 0
	deadline := time.Now().Add(1500 * time.Millisecond)
	for i := 1; time.Now().Before(deadline); i++ {
		if err := gw.Apply(configFor(i), int64(i+1)); err != nil {
			t.Fatalf("apply %d: %v", i, err)
		}
		reloads++
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	t.Logf("%d reloads, %d requests ok, %d failed", reloads, ok.Load(), failed.Load())
	if n := failed.Load(); n != 0 {
		t.Fatalf("%d requests failed during reloads; first: %v", n, firstErr.Load())
	}
	if hitsA.Load() == 0 || hitsB.Load() == 0 || reloads < 50 {
		t.Fatalf("reloads did not alternate the traffic (a=%d b=%d reloads=%d)", hitsA.Load(), hitsB.Load(), reloads)
	}
	if gw.Version() != int64(reloads+1) {
		t.Errorf("version %d after %d reloads", gw.Version(), reloads)
	}
}

func TestInvalidSnapshotKeepsServing(t *testing.T) {
	be := echoBackend(t)
	gw := startGateway(t, oneRoute(config.Route{Paths: []string{"/"}}, be.URL))
	bad := oneRoute(config.Route{Paths: []string{"~(unclosed"}}, be.URL)
	bad.ApplyDefaults()
	if err := gw.Apply(bad, 2); err == nil {
		t.Fatal("a route with an invalid regex was applied")
	}
	if gw.Version() != 1 {
		t.Errorf("version %d after a refused apply", gw.Version())
	}
	resp, err := http.Get(gw.url + "/still")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("after a refused apply: %d", resp.StatusCode)
	}
}
