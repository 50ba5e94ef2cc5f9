package e2e

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/cluster"
)

// TestBuild_IsReproducible builds the plugin as users get the source: a git
// clone, and a copy without .git (a tarball), each in another directory, with
// Go's default settings. Every build must give the very same bytes: every node
// of a cluster must hold a binary matching the one -sha256 registered.
func TestBuild_IsReproducible(t *testing.T) {
	clone := filepath.Join(t.TempDir(), "clone")
	if out, err := cluster.RunCommand(time.Minute, "git", "clone", "-q", "..", clone); err != nil {
		t.Fatalf("git clone: %v\n%s", err, out)
	}
	tarball := t.TempDir()
	if out, err := cluster.RunCommand(time.Minute, "sh", "-c", `git -C "$0" archive HEAD | tar -C "$1" -xf -`, clone, tarball); err != nil {
		t.Fatalf("copying the source: %v\n%s", err, out)
	}

	sha := map[string]string{}
	for name, source := range map[string]string{"git clone": clone, "copy without .git": tarball} {
		got, err := buildPluginFrom(source, oldVersion, filepath.Join(t.TempDir(), pluginName))
		if err != nil {
			t.Fatal(err)
		}
		sha[name] = got
	}
	if sha["git clone"] != sha["copy without .git"] {
		t.Fatalf("sha256 of the build from a copy without .git %s, want the git clone's %s", sha["copy without .git"], sha["git clone"])
	}

	// The tests registered a binary built in place, with whatever is not
	// committed yet; the same files without .git must give the same bytes.
	files := t.TempDir()
	copyFiles := `git -C "$0" ls-files -z -co --exclude-standard | (cd "$0" && tar --null -T - -cf -) | tar -C "$1" -xf -`
	if _, err := os.Stat(filepath.Join(pluginSource(), ".git")); err != nil {
		copyFiles = `tar -C "$0" -cf - . | tar -C "$1" -xf -`
	}
	if out, err := cluster.RunCommand(time.Minute, "sh", "-c", copyFiles, pluginSource(), files); err != nil {
		t.Fatalf("copying the checkout's files: %v\n%s", err, out)
	}
	got, err := buildPluginFrom(files, oldVersion, filepath.Join(t.TempDir(), pluginName))
	if err != nil {
		t.Fatal(err)
	}
	if got != pluginSHA[oldVersion] {
		t.Fatalf("sha256 of the build from the checkout's files without .git %s, want the checkout's %s", got, pluginSHA[oldVersion])
	}
}
