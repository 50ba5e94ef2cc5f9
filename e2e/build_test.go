package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestBuild_IsReproducible builds the plugin from a second copy of the source, in
// another directory, and expects the very same bytes: every node of a cluster
// must hold a binary matching the one -sha256 registered.
func TestBuild_IsReproducible(t *testing.T) {
	source := t.TempDir()
	// Only the files git tracks, as a fresh clone would have them.
	archive := exec.Command("sh", "-c", `git -C .. ls-files -z | xargs -0 tar -C .. -cf - | tar -C "$0" -xf -`, source)
	if out, err := archive.CombinedOutput(); err != nil {
		t.Fatalf("copying the source: %v\n%s", err, out)
	}
	binary := filepath.Join(t.TempDir(), pluginName)
	cmd := exec.Command("make", "-s", "-C", source, "build", "VERSION="+oldVersion, "BIN="+binary)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make build: %v\n%s", err, out)
	}
	sha, err := os.ReadFile(binary + ".sha256")
	if err != nil {
		t.Fatal(err)
	}
	if got := string(sha[:64]); got != pluginSHA[oldVersion] {
		t.Fatalf("second build sha256 %s, first %s", got, pluginSHA[oldVersion])
	}
}
