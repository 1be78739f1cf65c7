package main

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver, to make the test's schema

	"github.com/tollgate/tollgate/internal/testutil"
)

// TestClusterProcesses runs a control plane on PostgreSQL and two data
// planes as real processes: a route added through the admin API serves on
// both; both keep serving with the control plane killed; a data plane
// restarted meanwhile serves from its cache; a data plane with a wrong
// token is refused and says so; the nodes are listed with their version.
func TestClusterProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("runs four processes")
	}
	pg := freshPostgresSchema(t)
	dir := t.TempDir()
	cpAdmin, cluster := freePort(t), freePort(t)
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cpFile := write("cp.yaml", fmt.Sprintf(`server: {admin_listen: %q}
admin: {tokens: [{name: ops, token: adm, role: admin}]}
store: %q
cluster: {listen: %q, token: s3cret}
routes:
  - {name: hello, paths: [/hello], mock: {body: hello}}
`, cpAdmin, pg, cluster))
	dpFile := func(name, token string) (file, proxy, admin string) {
		proxy, admin = freePort(t), freePort(t)
		file = write(name+".yaml", fmt.Sprintf(`server: {proxy_listen: %q, admin_listen: %q}
logging: {access_log: "off"}
cluster: {control_plane: "http://%s", token: %q, cache_dir: %q}
`, proxy, admin, cluster, token, filepath.Join(dir, name+"-cache")))
		return file, "http://" + proxy, "http://" + admin
	}

	cp := startProcess(t, "cp", cpFile)
	testutil.Eventually(t, 20*time.Second, "control plane up", func() bool { return httpStatus("http://"+cpAdmin+"/healthz") == 200 })
	dp1File, dp1, _ := dpFile("dp1", "s3cret")
	dp2File, dp2, dp2Admin := dpFile("dp2", "s3cret")
	startProcess(t, "dp", dp1File)
	dp2Proc := startProcess(t, "dp", dp2File)
	for _, dp := range []string{dp1, dp2} {
		testutil.Eventually(t, 20*time.Second, "data plane serving the file's route", func() bool { return httpStatus(dp+"/hello") == 200 })
	}

	// A route added through the admin API serves on both within a second.
	req, _ := http.NewRequest(http.MethodPost, "http://"+cpAdmin+"/api/routes", strings.NewReader(`{"name":"orders","paths":["/orders"],"mock":{"body":"orders"}}`))
	req.Header.Set("Authorization", "Bearer adm")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("POST /api/routes: %d", resp.StatusCode)
	}
	for _, dp := range []string{dp1, dp2} {
		testutil.Eventually(t, time.Second, "the new route on "+dp, func() bool { return httpStatus(dp+"/orders") == 200 })
	}

	// Both nodes are listed with the version they serve.
	testutil.Eventually(t, 5*time.Second, "both nodes listed at version 2", func() bool {
		nodes := clusterNodes(t, cpAdmin)
		return len(nodes) == 2 && nodes[0].Status == "connected" && nodes[1].Status == "connected" &&
			nodes[0].ConfigVersion == 2 && nodes[1].ConfigVersion == 2 && nodes[0].ID != nodes[1].ID
	})

	// A data plane with a wrong token is refused, and says so.
	badFile, _, _ := dpFile("bad", "wrong")
	bad := startProcess(t, "dp", badFile)
	testutil.Eventually(t, 10*time.Second, "the refusal logged", func() bool {
		return strings.Contains(bad.logs(), "refused the cluster token (401 Unauthorized)")
	})
	if !strings.Contains(cp.logs(), "invalid cluster token") {
		t.Errorf("the control plane did not log the refusal:\n%s", cp.logs())
	}
	if n := len(clusterNodes(t, cpAdmin)); n != 2 {
		t.Errorf("%d nodes listed, want 2 (the refused one is not)", n)
	}

	// The control plane dies: both keep serving.
	cp.kill(t)
	for _, dp := range []string{dp1, dp2} {
		for _, path := range []string{"/hello", "/orders"} {
			if s := httpStatus(dp + path); s != 200 {
				t.Errorf("%s%s with the control plane down: %d", dp, path, s)
			}
		}
	}

	// A data plane restarted while the control plane is down serves from
	// its cache.
	dp2Proc.stop(t)
	startProcess(t, "dp", dp2File)
	testutil.Eventually(t, 20*time.Second, "restarted data plane up", func() bool { return httpStatus(dp2Admin+"/healthz") == 200 })
	if s := httpStatus(dp2 + "/orders"); s != 200 {
		t.Errorf("restarted data plane, from its cache: %d", s)
	}
}

type clusterNode struct {
	ID            string `json:"id"`
	Status        string `json:"status"`
	ConfigVersion int64  `json:"config_version"`
}

func clusterNodes(t *testing.T, admin string) []clusterNode {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+admin+"/api/cluster/nodes", nil)
	req.Header.Set("Authorization", "Bearer adm")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var out struct{ Data []clusterNode }
	json.NewDecoder(resp.Body).Decode(&out)
	return out.Data
}

// process is a running tollgate command whose stderr is kept.
type process struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	stderr bytes.Buffer
	done   chan error
}

func (p *process) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.Write(b)
}

func (p *process) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

func startProcess(t *testing.T, command, file string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(binary, command, "-c", file), done: make(chan error, 1)}
	p.cmd.Stderr = p
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("tollgate %s -c %s:\n%s", command, filepath.Base(file), p.logs())
		}
	})
	return p
}

func (p *process) kill(t *testing.T) {
	t.Helper()
	p.cmd.Process.Kill()
	<-p.done
	p.done <- nil // for the cleanup
}

func (p *process) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
		p.done <- nil
	case <-time.After(10 * time.Second):
		t.Fatal("did not stop after SIGTERM")
	}
}

// freshPostgresSchema returns the URL of a schema of its own in the test
// database ($TOLLGATE_TEST_PG), dropped at the end; it skips when nothing
// answers, unless CI=true.
func freshPostgresSchema(t *testing.T) string {
	t.Helper()
	base := os.Getenv("TOLLGATE_TEST_PG")
	if base == "" {
		base = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", u.Host, time.Second); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL at %s does not answer: %v", u.Host, err)
		}
		t.Skipf("PostgreSQL at %s does not answer (%v); set TOLLGATE_TEST_PG", u.Host, err)
	} else {
		c.Close()
	}
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	schema := fmt.Sprintf("tollgate_cluster_%d", time.Now().UnixNano())
	if _, err := db.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		db.Exec("DROP SCHEMA " + schema + " CASCADE")
		db.Close()
	})
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
