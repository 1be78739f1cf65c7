package app

import (
	"encoding/json"
	"net"
	"net/http"
	"sort"
	"time"

	"github.com/tollgate/tollgate/config"
)

// Quickstart starts a small demo API on a loopback port and returns a
// configuration that serves it through the gateway on the default ports, so
// that `tollgate run` without a configuration file shows a working proxy.
// The returned stop function shuts the demo API down.
func Quickstart() (*config.Config, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	srv := &http.Server{Handler: demoAPI(), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)

	cfg := config.Default()
	cfg.Store = "memory://"
	cfg.Services = []config.Service{{
		Name:    "demo",
		Targets: []config.Target{{URL: "http://" + ln.Addr().String()}},
	}}
	cfg.Routes = []config.Route{
		{Name: "demo", Paths: []string{"/demo"}, Service: "demo", StripPath: true},
		{Name: "demo-mock", Paths: []string{"=/demo/mock"}, Mock: &config.Mock{
			Status: 200, Headers: map[string]string{"Content-Type": "application/json"},
			Body: `{"mock":true,"message":"answered by the gateway itself"}` + "\n",
		}},
	}
	cfg.ApplyDefaults()
	return cfg, func() { srv.Close() }, nil
}

// QuickstartHelp is printed when the quickstart starts.
const QuickstartHelp = `Tollgate is running with its built-in quickstart configuration.

  Proxy:    http://localhost:8000      Admin: http://127.0.0.1:8001

Try:
  curl -i http://localhost:8000/demo/hello        # proxied to the demo API
  curl -i http://localhost:8000/demo/echo?x=1     # shows what the upstream received
  curl -i http://localhost:8000/demo/mock         # answered by a mock route
  curl -i http://localhost:8000/nowhere           # the gateway's 404 error
  curl -s http://127.0.0.1:8001/metrics | grep tollgate_

Next: write a tollgate.yaml (see docs/configuration.md) and run
  tollgate run -c tollgate.yaml
`

func demoAPI() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{
			"message": "Hello from the Tollgate demo API",
			"time":    time.Now().UTC().Format(time.RFC3339),
		})
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		headers := map[string]string{}
		names := make([]string, 0, len(r.Header))
		for k := range r.Header {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			headers[k] = r.Header.Get(k)
		}
		writeJSON(w, map[string]any{
			"method": r.Method, "path": r.URL.Path, "query": r.URL.RawQuery,
			"host": r.Host, "headers": headers,
		})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
