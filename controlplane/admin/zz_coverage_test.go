package admin

import (
	"flag"
	"slices"
	"strings"
	"testing"
)

// TestEveryDocumentedOperationIsExercised runs after the others (files run
// in name order): each operation of the OpenAPI document must have been
// called, and answered as documented, by some test.
func TestEveryDocumentedOperationIsExercised(t *testing.T) {
	if f := flag.Lookup("test.run"); f != nil && f.Value.String() != "" {
		t.Skip("only meaningful when every test of the package runs")
	}
	loadSpec(t)
	var missing []string
	for path, item := range spec.Paths.Map() {
		for method := range item.Operations() {
			if _, ok := exercised.Load(method + " " + path); !ok {
				missing = append(missing, method+" "+path)
			}
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		t.Errorf("operations no test called:\n%s", strings.Join(missing, "\n"))
	}
}
