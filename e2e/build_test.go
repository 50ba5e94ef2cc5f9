package e2e

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBuild_IsReproducible builds the plugin as users get the source: a git
// clone, and a copy without .git (a tarball), each in another directory, with
// Go's default settings. Every build must give the very same bytes: every node
// of a cluster must hold a binary matching the one -sha256 registered.
func TestBuild_IsReproducible(t *testing.T) {
	clone := filepath.Join(t.TempDir(), "clone")
	if out, err := runCommand(time.Minute, "git", "clone", "-q", "..", clone); err != nil {
		t.Fatalf("git clone: %v\n%s", err, out)
	}
	tarball := t.TempDir()
	if out, err := runCommand(time.Minute, "sh", "-c", `git -C "$0" archive HEAD | tar -C "$1" -xf -`, clone, tarball); err != nil {
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
		t.Fatalf("sha256 of the build from a git clone %s, from a copy without .git %s", sha["git clone"], sha["copy without .git"])
	}

	// The checkout the tests run in built the binary they register; when it
	// holds the committed source, that binary must be the same too.
	status, err := runCommand(time.Minute, "git", "-C", "..", "status", "--porcelain", "--untracked-files=no")
	if err != nil {
		t.Fatal(err)
	}
	if len(strings.TrimSpace(string(status))) > 0 {
		t.Logf("the checkout has uncommitted changes; compared the clone and the copy only:\n%s", status)
		return
	}
	if sha["git clone"] != pluginSHA[oldVersion] {
		t.Fatalf("sha256 of the build from a git clone %s, from this checkout %s", sha["git clone"], pluginSHA[oldVersion])
	}
}
