package e2e

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vault-reference/vault-plugin-secrets-reference/dynamic/redistest"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/cluster"
)

// TestNewPlugin_DynamicKindIssuesAndRevokesThroughAServer writes a plugin
// with make new-plugin KIND=dynamic, as a new author would, runs its unit
// tests, and has a real server issue and revoke one of its users.
func TestNewPlugin_DynamicKindIssuesAndRevokesThroughAServer(t *testing.T) {
	const name, newMount = "vault-plugin-secrets-sessions", "sessions"
	dir := filepath.Join(t.TempDir(), "new")
	mustRun(t, filepath.Join("..", ".."), "make", "-s", "new-plugin", "KIND=dynamic", "NAME="+name,
		"MODULE=example.com/acme/"+name, "DIR="+dir)
	for _, f := range []string{"go.mod", "Makefile", "README.md", "backend.go"} {
		if text, err := os.ReadFile(filepath.Join(dir, f)); err != nil || strings.Contains(string(text), "redis-reference") {
			t.Fatalf("%s of the new plugin: got %v (error %v), want it there with no trace of this plugin's name", f, len(text), err)
		}
	}
	mustRun(t, dir, "make", "unit")
	mustRun(t, dir, "make", "-s", "build", "BIN="+filepath.Join(cluster.Plugin.Dir, name))
	sha, err := os.ReadFile(filepath.Join(cluster.Plugin.Dir, name+".sha256"))
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(cluster.Plugin.Dir, name+".sha256"))

	r, err := redistest.Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	config := filepath.Join(t.TempDir(), "dev.hcl")
	if err := os.WriteFile(config, []byte("plugin_directory = \""+cluster.Plugin.Dir+"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := cluster.StartServer(t.TempDir(), "-dev", "-dev-root-token-id="+cluster.DevToken, "-config="+config)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	s.MustCLI(t, "plugin", "register", "-sha256="+strings.TrimSpace(string(sha)), "-command="+name, "secret", name)
	s.MustCLI(t, "secrets", "enable", "-path="+newMount, name)
	cluster.Must(t, s, http.StatusNoContent, "PUT", newMount+"/config", map[string]any{
		"address": r.Addr, "username": redistest.PluginUser, "password": r.PluginPassword,
	})
	cluster.Must(t, s, http.StatusNoContent, "PUT", newMount+"/roles/app", map[string]any{"commands": "+ping"})
	issued := cluster.Must(t, s, http.StatusOK, "GET", newMount+"/creds/app", nil)
	user, _ := issued.Data()["username"].(string)
	password, _ := issued.Data()["password"].(string)
	ctx := context.Background()
	if err := r.CanLogIn(ctx, user, password); err != nil {
		t.Fatalf("AUTH %s issued by the new plugin: got %v, want it to log in", user, err)
	}
	cluster.Must(t, s, http.StatusNoContent, "PUT", "sys/leases/revoke", map[string]any{"lease_id": issued.Body["lease_id"]})
	if err := r.CanLogIn(ctx, user, password); err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
		t.Fatalf("AUTH %s once its lease was revoked: got %v, want WRONGPASS", user, err)
	}
}

// mustRun runs a command in dir with Go's own defaults and fails the test if it
// fails.
func mustRun(t *testing.T, dir string, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOENV=off", "GOFLAGS=-buildvcs=auto", "GIT_CONFIG_GLOBAL="+os.DevNull, "GIT_CONFIG_NOSYSTEM=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s in %s: %v, want success\n%s", name, strings.Join(args, " "), dir, err, out)
	}
}
