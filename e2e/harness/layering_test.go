// Package harness_test holds what the harness's packages promise together:
// none of them knows the API a plugin serves, so that any plugin can import
// them.
package harness_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// apiPackages is where the API under test lives: its model and traffic.
const apiPackages = "github.com/vault-reference/vault-plugin-secrets-reference/e2e/api"

// A generic package that imports the model or the traffic, directly or
// through another, fails here.
func TestHarness_ImportsNoAPIPackage(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	listed := 0
	for _, line := range strings.Split(string(out), "\n") {
		listed += boolInt(line != "")
		if strings.HasPrefix(line, apiPackages) {
			t.Errorf("the harness depends on %s, want no package of the API under test", line)
		}
	}
	if listed == 0 {
		t.Fatal("go list named no package, want the harness's own and their dependencies")
	}
}

// The harness's code names no path or field of this plugin's API: a plugin
// author who renames them changes only the engine, the model and the
// traffic.
func TestHarness_NamesNothingOfTheAPI(t *testing.T) {
	words := []string{"secrets/", "max_secret_bytes", `"cas"`, "cas_required"}
	files, err := filepath.Glob("*/*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("no harness files found (%v), want the packages' sources", err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range words {
			if strings.Contains(string(src), w) {
				t.Errorf("%s names %q of the API, want none", f, w)
			}
		}
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
