// Package archtest checks the dependency rules of the layout: the data plane
// receives compiled snapshots and never reaches into the control plane, a
// store or a database driver (Redis, for shared limits and caches, is
// allowed), and the configuration types stay free of runtime machinery.
package archtest

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/tollgate/tollgate/"

// rules maps a package pattern to the import path prefixes none of its
// dependencies (direct or not) may have.
var rules = map[string][]string{
	// Redis is allowed: cluster-wide rate limits and caches live in the
	// data plane.
	module + "dataplane/...": {
		module + "controlplane", module + "app", module + "cmd",
		"github.com/jackc/pgx", "modernc.org/sqlite",
	},
	module + "config": {
		module + "dataplane", module + "controlplane", module + "observe", module + "app",
		"github.com/valyala/fasthttp", "net/http",
	},
	module + "observe/...": {
		module + "dataplane", module + "controlplane", module + "app",
	},
	// The data plane compiles OpenAPI documents (request validation, mocks)
	// and the command line imports them: a library of its own.
	module + "openapi/...": {
		module + "dataplane", module + "controlplane", module + "observe", module + "app", module + "cmd",
		"github.com/valyala/fasthttp",
	},
}

func TestDependencyRules(t *testing.T) {
	for pattern, forbidden := range rules {
		out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", pattern).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", pattern, err, out)
		}
		deps := strings.Fields(string(out))
		if len(deps) == 0 {
			t.Fatalf("go list %s listed nothing", pattern)
		}
		for _, dep := range deps {
			for _, bad := range forbidden {
				if dep == bad || strings.HasPrefix(dep, bad+"/") || strings.HasPrefix(dep, bad) && strings.HasSuffix(bad, "/") {
					t.Errorf("%s depends on %s, which it must not", pattern, dep)
				}
			}
		}
	}
}
