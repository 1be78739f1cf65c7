package app

import (
	"bytes"
	"go/build"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

// h2specModule is h2spec, the HTTP/2 conformance suite, at the newest
// version the Go module proxy serves (later tags lack the /v2 module path).
// Its Go package cannot run it as a library without adding it and its own
// dependencies to go.mod, so the test runs its command.
const h2specModule = "github.com/summerwind/h2spec/cmd/h2spec@v2.2.1+incompatible"

// TestH2Spec runs the whole of h2spec against the clear listener (h2c with
// prior knowledge, beside HTTP/1.1 on the same port) and the TLS one (h2 by
// ALPN): every case must pass.
func TestH2Spec(t *testing.T) {
	if testing.Short() {
		t.Skip("h2spec takes seconds")
	}
	bin := h2specBinary(t)
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "hello from the backend\n")
	}))
	defer be.Close()
	a, _ := startTLSApp(t, be.URL)
	for _, l := range []struct {
		name, addr string
		flags      []string
	}{
		{"h2c", a.ProxyAddr(), nil},
		{"tls", a.TLSAddr(), []string{"-t", "-k"}},
	} {
		t.Run(l.name, func(t *testing.T) {
			host, port, _ := net.SplitHostPort(l.addr)
			// -o: seconds to wait for each expected frame; generous for a
			// loaded machine and the race detector.
			args := append([]string{"-h", host, "-p", port, "-o", "5"}, l.flags...)
			out, err := exec.Command(bin, args...).CombinedOutput()
			m := h2specSummary.FindSubmatch(out)
			if m == nil {
				t.Fatalf("h2spec %v: %v, no summary in its output:\n%s", args, err, out)
			}
			t.Logf("%s", m[0])
			if failed, _ := strconv.Atoi(string(m[2])); failed > 0 || err != nil {
				if i := bytes.Index(out, []byte("Failures:")); i >= 0 {
					out = out[i:]
				}
				t.Errorf("h2spec on the %s listener: %v\n%s", l.name, err, out)
			}
		})
	}
}

var h2specSummary = regexp.MustCompile(`(\d+) tests, \d+ passed, \d+ skipped, (\d+) failed`)

// h2specBinary finds h2spec ($H2SPEC, $PATH, $GOPATH/bin, or an earlier
// install in the user cache) or installs it there with the go command.
// Without it the test is skipped, and fails in CI.
func h2specBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("H2SPEC"); p != "" {
		return p
	}
	if p, err := exec.LookPath("h2spec"); err == nil {
		return p
	}
	if p := filepath.Join(build.Default.GOPATH, "bin", "h2spec"); isFile(p) {
		return p
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "tollgate", "h2spec-v2.2.1")
	bin := filepath.Join(dir, "h2spec")
	if isFile(bin) {
		return bin
	}
	goCmd, err := exec.LookPath("go")
	if err == nil {
		cmd := exec.Command(goCmd, "install", h2specModule)
		cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=")
		var out []byte
		if out, err = cmd.CombinedOutput(); err == nil && isFile(bin) {
			return bin
		}
		err = &installError{err: err, out: out}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("h2spec is not installed and could not be: %v", err)
	}
	t.Skipf("h2spec is not installed and could not be: %v", err)
	return ""
}

type installError struct {
	err error
	out []byte
}

func (e *installError) Error() string { return e.err.Error() + "\n" + string(e.out) }

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}
