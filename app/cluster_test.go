package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/tollgate/tollgate/dataplane/policy/sizelimit" // a global policy of the control plane's
	"github.com/tollgate/tollgate/internal/testutil"
)

const clusterToken = "cluster-secret"

// cpConfig is a control plane's file: admin token "adm", the cluster on
// clusterAddr ("127.0.0.1:0" for any port).
func cpConfig(store, clusterAddr, rest string) string {
	return fmt.Sprintf(`server: {admin_listen: "127.0.0.1:0"}
admin: {tokens: [{name: ops, token: adm, role: admin}]}
store: %q
cluster: {listen: %q, token: %q}
%s`, store, clusterAddr, clusterToken, rest)
}

// dpConfig is a data plane's file.
func dpConfig(cpURL, cacheDir, rest string) string {
	return fmt.Sprintf(`server: {proxy_listen: "127.0.0.1:0", admin_listen: "127.0.0.1:0"}
logging: {access_log: "off"}
cluster: {control_plane: %q, token: %q, cache_dir: %q}
%s`, cpURL, clusterToken, cacheDir, rest)
}

func startControlPlane(t testing.TB, dir, yaml string) *ControlPlane {
	t.Helper()
	path := filepath.Join(dir, "cp.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := NewControlPlane(Options{ConfigPath: path, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Shutdown(context.Background()) })
	return c
}

func startDataPlane(t testing.TB, dir, yaml string) *DataPlane {
	t.Helper()
	return startDataPlaneLogging(t, dir, yaml, io.Discard)
}

func startDataPlaneLogging(t testing.TB, dir, yaml string, logs io.Writer) *DataPlane {
	t.Helper()
	path := filepath.Join(dir, "dp.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := NewDataPlane(Options{ConfigPath: path, Logger: slog.New(slog.NewTextHandler(logs, nil))},
		DataPlaneOptions{MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Shutdown(context.Background()) })
	return d
}

// The data plane serves what the control plane has (the file's entities
// and global policies, and changes through the admin API), keeps serving
// while the control plane restarts, and says where it stands on /healthz.
func TestDataPlaneFollowsTheControlPlane(t *testing.T) {
	dir := t.TempDir()
	clusterAddr := testutil.ClosedPort(t)
	cpYAML := cpConfig("sqlite://cp.db", clusterAddr, `policies: {request-size-limit: {max_bytes: 10}}
routes:
  - {name: hello, paths: [/hello], mock: {body: hello}}
`)
	cp := startControlPlane(t, dir, cpYAML)
	dp := startDataPlane(t, t.TempDir(), dpConfig(cp.ClusterURL(), "cache", "routes: [{name: ignored, paths: [/x], mock: {}}]\n"))
	proxy, api := "http://"+dp.ProxyAddr(), "http://"+cp.AdminAddr()+"/api"
	testutil.Eventually(t, 5*time.Second, "the file's route on the data plane", func() bool { return status(t, proxy+"/hello") == 200 })
	if s := status(t, proxy+"/x"); s != 404 {
		t.Errorf("a route of the data plane's own file: %d, want 404 (entities come from the control plane)", s)
	}
	resp, err := http.Post(proxy+"/hello", "text/plain", strings.NewReader(strings.Repeat("x", 100)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Errorf("the control plane's global request-size-limit: %d, want 413", resp.StatusCode)
	}

	if code, body := adminDo(t, "POST", api+"/routes", "adm", `{"name":"orders","paths":["/orders"],"mock":{"body":"orders"}}`); code != 201 {
		t.Fatalf("create route: %d %s", code, body)
	}
	testutil.Eventually(t, time.Second, "the API's route on the data plane within a second", func() bool { return status(t, proxy+"/orders") == 200 })

	var health struct {
		Status       string
		ControlPlane string `json:"control_plane"`
		Version      int64  `json:"config_version"`
	}
	getJSON(t, "http://"+dp.AdminAddr()+"/healthz", &health)
	if health.Status != "ok" || health.ControlPlane != "connected" || health.Version != cp.Version() {
		t.Errorf("healthz %+v, control plane at %d", health, cp.Version())
	}
	if s := status(t, "http://"+dp.AdminAddr()+"/api/routes"); s != 404 {
		t.Errorf("a data plane serves an admin API: %d", s)
	}
	testutil.Eventually(t, 5*time.Second, "the node listed", func() bool {
		var nodes struct {
			Data []struct {
				ConfigVersion int64 `json:"config_version"`
				Status        string
			}
		}
		code, body := adminDo(t, "GET", api+"/cluster/nodes", "adm", "")
		json.Unmarshal([]byte(body), &nodes)
		return code == 200 && len(nodes.Data) == 1 && nodes.Data[0].Status == "connected" && nodes.Data[0].ConfigVersion == cp.Version()
	})

	// The control plane restarts; traffic goes on meanwhile.
	if err := cp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := status(t, proxy+"/orders"); s != 200 {
		t.Errorf("with the control plane down: %d", s)
	}
	cp2 := startControlPlane(t, dir, cpYAML)
	testutil.Eventually(t, 5*time.Second, "reconnected", func() bool { return dp.Status().Connected })
	code, _ := adminDo(t, "POST", "http://"+cp2.AdminAddr()+"/api/routes", "adm", `{"name":"after","paths":["/after"],"mock":{}}`)
	if code != 201 {
		t.Fatal(code)
	}
	testutil.Eventually(t, time.Second, "a change after the restart", func() bool { return status(t, proxy+"/after") == 200 })
	if s := status(t, proxy+"/orders"); s != 200 {
		t.Errorf("after the restart: %d", s)
	}
}

// A data plane needs to know its control plane.
func TestDataPlaneNeedsAControlPlane(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dp.yaml")
	os.WriteFile(path, []byte("cluster: {token: x}\n"), 0o600)
	_, err := NewDataPlane(Options{ConfigPath: path, Logger: slog.New(slog.DiscardHandler)})
	if err == nil || !strings.Contains(err.Error(), "cluster.control_plane") {
		t.Errorf("err %v", err)
	}
	path = filepath.Join(t.TempDir(), "cp.yaml")
	os.WriteFile(path, []byte("store: \"memory://\"\n"), 0o600)
	_, err = NewControlPlane(Options{ConfigPath: path, Logger: slog.New(slog.DiscardHandler)})
	if err == nil || !strings.Contains(err.Error(), "cluster.token") {
		t.Errorf("a control plane without a token: %v", err)
	}
}

// lockedBuffer is a log destination read while servers write to it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func getJSON(t testing.TB, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// Over TLS, the data plane checks the control plane's certificate against
// cluster.ca and presents its own when the control plane asks for one.
func TestClusterOverMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testutil.NewCA(t)
	cpCert, cpKey := ca.Issue(t, "cp", []string{"localhost"}, false)
	dpCert, dpKey := ca.Issue(t, "dp-1", nil, true)
	testutil.WriteFile(t, dir, "ca.pem", ca.CertPEM)
	testutil.WriteFile(t, dir, "cp.pem", cpCert)
	testutil.WriteFile(t, dir, "cp-key.pem", cpKey)
	testutil.WriteFile(t, dir, "dp.pem", dpCert)
	testutil.WriteFile(t, dir, "dp-key.pem", dpKey)
	cp := startControlPlane(t, dir, strings.Replace(cpConfig("memory://", "127.0.0.1:0", "routes: [{name: hello, paths: [/hello], mock: {}}]\n"),
		"cluster: {", "cluster: {tls: {cert: cp.pem, key: cp-key.pem, client_ca: ca.pem}, ", 1))
	_, port, _ := strings.Cut(cp.ClusterAddr(), ":")
	url := "https://localhost:" + port

	dp := startDataPlane(t, dir, strings.Replace(dpConfig(url, "cache", ""), "cluster: {", "cluster: {ca: ca.pem, cert: dp.pem, key: dp-key.pem, ", 1))
	testutil.Eventually(t, 5*time.Second, "served over mutual TLS", func() bool { return status(t, "http://"+dp.ProxyAddr()+"/hello") == 200 })

	// Without a client certificate, the handshake fails.
	logs := &lockedBuffer{}
	noCert := startDataPlaneLogging(t, t.TempDir(), strings.Replace(dpConfig(url, "cache", ""), "cluster: {", "cluster: {ca: "+filepath.Join(dir, "ca.pem")+", ", 1), logs)
	testutil.Eventually(t, 5*time.Second, "the failed attempt logged", func() bool { return strings.Contains(logs.String(), "control plane unreachable") })
	if st := noCert.Status(); st.Configured || st.Connected {
		t.Errorf("a data plane without a certificate got in: %+v", st)
	}
}
