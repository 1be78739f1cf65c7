package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/testutil"
)

var binary string

// TestMain builds the real binary once: these tests run it as a user would,
// with signals and exit codes.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tollgate-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "tollgate")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func TestVersion(t *testing.T) {
	out, err := exec.Command(binary, "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "tollgate ") {
		t.Fatalf("version: %q %v", out, err)
	}
}

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("services:\n  - name: a\n    targets: [{url: \"http://127.0.0.1:1\"}]\nroutes:\n  - name: r\n    paths: [\"/\"]\n    service: a\n"), 0o644)
	if out, err := exec.Command(binary, "validate", "-c", good).CombinedOutput(); err != nil {
		t.Fatalf("valid file: %v %s", err, out)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("services:\n  - name: a\n    targets: [{url: \"http://127.0.0.1:1\"}]\n    balancng: random\nroutes:\n  - name: r\n    paths: [\"/\"]\n    service: b\n"), 0o644)
	cmd := exec.Command(binary, "validate", "-c", bad)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("invalid file: exit %v, want 1", err)
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	want := []*regexp.Regexp{
		regexp.MustCompile(`^` + regexp.QuoteMeta(bad) + `:4:5: .*balancng.*balancing`),
		regexp.MustCompile(`^` + regexp.QuoteMeta(bad) + `:8:5: .*service "b"`),
	}
	if len(lines) != len(want) {
		t.Fatalf("want %d lines, got:\n%s", len(want), stderr.String())
	}
	for i, re := range want {
		if !re.MatchString(lines[i]) {
			t.Errorf("line %d = %q, want %s", i+1, lines[i], re)
		}
	}
}

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestSignals runs the gateway, reloads it with SIGHUP, and stops it with
// SIGTERM while a request is in flight: the request must complete and the
// process must exit 0.
func TestSignals(t *testing.T) {
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/slow") {
			entered <- struct{}{}
			<-release
		}
		io.WriteString(w, "ok "+r.URL.Path)
	}))
	defer be.Close()
	proxyAddr, adminAddr := freePort(t), freePort(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "tollgate.yaml")
	write := func(prefix string) {
		cfg := fmt.Sprintf("server: {proxy_listen: %q, admin_listen: %q}\nlogging: {access_log: \"off\"}\nservices:\n  - name: be\n    targets: [{url: %q}]\nroutes:\n  - name: r\n    paths: [%q]\n    service: be\n", proxyAddr, adminAddr, be.URL, prefix)
		// Kept in a sibling file and renamed so that only SIGHUP, not the
		// watcher's timing, decides when it is read.
		os.WriteFile(cfgPath+".next", []byte(cfg), 0o644)
		os.Rename(cfgPath+".next", cfgPath)
	}
	write("/one")
	cmd := exec.Command(binary, "run", "-c", cfgPath)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer cmd.Process.Kill()

	proxy := "http://" + proxyAddr
	testutil.Eventually(t, 10*time.Second, "gateway up", func() bool { return httpStatus(proxy+"/one") == 200 })

	write("/two")
	cmd.Process.Signal(syscall.SIGHUP)
	testutil.Eventually(t, 5*time.Second, "reloaded route", func() bool { return httpStatus(proxy+"/two") == 200 })

	result := make(chan string, 1)
	go func() {
		resp, err := http.Get(proxy + "/two/slow")
		if err != nil {
			result <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		result <- fmt.Sprintf("%d %s", resp.StatusCode, b)
	}()
	<-entered
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		t.Fatalf("exited (%v) before the in-flight request finished\n%s", err, stderr.String())
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	if r := <-result; r != "200 ok /two/slow" {
		t.Errorf("in-flight request during SIGTERM: %s", r)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("did not exit after SIGTERM")
	}
	if !strings.Contains(stderr.String(), `"configuration reloaded"`) {
		t.Errorf("no reload logged:\n%s", stderr.String())
	}
}

func httpStatus(url string) int {
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Get(url)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestQuickstart runs `tollgate run` in an empty directory: it must serve the
// demo API on the default proxy port and say what to try.
func TestQuickstart(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:8000", "127.0.0.1:8001"} {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			t.Skipf("%s is in use on this machine; the quickstart needs the default ports", addr)
		}
	}
	cmd := exec.Command(binary, "run")
	cmd.Dir = t.TempDir()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	first, _ := bufio.NewReader(stdout).ReadString('\n')
	go io.Copy(io.Discard, stdout)
	if !strings.Contains(first, "quickstart") {
		t.Errorf("first line %q does not mention the quickstart", first)
	}
	testutil.Eventually(t, 10*time.Second, "demo API", func() bool { return httpStatus("http://127.0.0.1:8000/demo/hello") == 200 })
	resp, err := http.Get("http://127.0.0.1:8000/demo/hello")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body["message"] == nil {
		t.Errorf("demo answer %v %v", body, err)
	}
	if resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("Content-Type %q", resp.Header.Get("Content-Type"))
	}
}
