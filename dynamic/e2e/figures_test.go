package e2e

import (
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/cluster"
)

// figure logs a measured duration beside the bound a proof asserts for it
// and, when LEASE_REPORT names a file, appends both there: make -C dynamic
// lease-report writes e2e/LEASES.md from that file.
func figure(t *testing.T, name string, got, bound time.Duration) {
	t.Helper()
	t.Logf("%s: %v (bound %v)", name, got.Round(time.Millisecond), bound)
	path := os.Getenv("LEASE_REPORT")
	if path == "" {
		return
	}
	line, err := json.Marshal(map[string]any{
		"test": t.Name(), "server": cluster.Tested.Title, "figure": name,
		"got_ms": got.Milliseconds(), "bound_ms": bound.Milliseconds(),
	})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(append(line, '\n')); err != nil {
		t.Fatal(err)
	}
}
