// Package e2e drives the plugin binary inside a real Vault server, the way an
// operator does: registration by SHA-256, versions, upgrade, reload, crash,
// ACLs and persistence.
package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/api/traffic"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/cluster"
)

const (
	// pluginName and mount are the only places the e2e tests name the plugin
	// and its default mount (the Makefile's PLUGIN and MOUNT).
	pluginName = "vault-plugin-secrets-reference"
	mount      = "ref"
	oldVersion = "v0.1.0"
	newVersion = "v0.2.0"
)

var (
	// pluginDir is the server's plugin_directory; it holds one binary per
	// version, named pluginCommand(version).
	pluginDir string
	pluginSHA = map[string]string{}
	// declaredAuditLog is the audit log a server that takes audit devices
	// only from its config writes to.
	declaredAuditLog string
	// dev is the dev-mode server most tests share, with oldVersion registered.
	dev *cluster.Server
)

func pluginCommand(version string) string { return pluginName + "-" + version }

func TestMain(m *testing.M) {
	if dir := os.Getenv(cluster.ReaperEnv); dir != "" {
		cluster.Reap(dir)
		os.Exit(0)
	}
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		code = 1
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	cluster.ForgetUserSettings()
	if err := cluster.ChooseServer(); err != nil {
		return 1, err
	}
	// Vault is built from source once, which is slow on a small machine;
	// later runs find it in the cache.
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, cluster.Tested.Find).Output()
	if err != nil {
		return 1, fmt.Errorf("finding a %s binary: %w", cluster.Tested.Title, err)
	}
	cluster.Binary = strings.TrimSpace(string(out))
	if err := cluster.StartRun(); err != nil {
		return 1, err
	}
	defer cluster.EndRun()
	defer cluster.StopShared()

	work, err := os.MkdirTemp("", "e2e-")
	if err != nil {
		return 1, err
	}
	defer os.RemoveAll(work)
	pluginDir = filepath.Join(work, "plugins")
	for _, v := range []string{oldVersion, newVersion} {
		sha, err := buildPlugin(v, filepath.Join(pluginDir, pluginCommand(v)))
		if err != nil {
			return 1, err
		}
		pluginSHA[v] = sha
	}

	config := filepath.Join(work, "dev.hcl")
	settings := fmt.Sprintf("plugin_directory = %q\n", pluginDir)
	if !cluster.Tested.AuditByAPI {
		declaredAuditLog = filepath.Join(work, "audit.log")
		settings += fmt.Sprintf("audit \"file\" \"declared\" {\n  options {\n    file_path = %q\n  }\n}\n", declaredAuditLog)
	}
	if err := os.WriteFile(config, []byte(settings), 0o600); err != nil {
		return 1, err
	}
	dev, err = cluster.StartServer(work, "-dev", "-dev-root-token-id="+cluster.DevToken, "-config="+config)
	if err != nil {
		return 1, err
	}
	defer dev.Stop()
	if out, err := dev.CLI("plugin", "register", "-sha256="+pluginSHA[oldVersion], "-version="+oldVersion,
		"-command="+pluginCommand(oldVersion), "secret", pluginName); err != nil {
		return 1, fmt.Errorf("registering the plugin: %v: %s", err, out)
	}
	cluster.Plugin = cluster.PluginSetup{Name: pluginName, Dir: pluginDir, Mount: mount, Version: oldVersion,
		SHA256: pluginSHA, Serving: traffic.Serving}
	return m.Run(), nil
}

// buildPlugin builds the plugin with the project's own Makefile, as an operator
// would, and returns the SHA-256 the Makefile wrote beside it.
func buildPlugin(version, binary string) (string, error) {
	return buildPluginFrom(pluginSource(), version, binary)
}

// pluginSource is the tree the tests build the plugin from: this checkout,
// or PLUGIN_SOURCE, which make mutants points at a copy of the engine with a
// bug planted, to see that the tests catch it.
func pluginSource() string {
	if dir := os.Getenv("PLUGIN_SOURCE"); dir != "" {
		return dir
	}
	return ".."
}

func buildPluginFrom(source, version, binary string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "make", "-s", "-C", source, "build", "VERSION="+version, "BIN="+binary)
	cmd.Env = goDefaultsEnv()
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("make build %s: %v: %s", version, err, out)
	}
	sha, err := os.ReadFile(binary + ".sha256")
	if err != nil {
		return "", err
	}
	// The plugin directory must hold only what Vault may run.
	return strings.TrimSpace(string(sha)), os.Remove(binary + ".sha256")
}

// goDefaultsEnv is this environment with Go's own defaults, as on a user's
// machine: GOENV=off ignores a go env file, and GOFLAGS is what Go assumes
// when none is set (a build machine may set -buildvcs=false, which hides
// whether a build from a git checkout is reproducible).
func goDefaultsEnv() []string {
	return append(os.Environ(), "GOENV=off", "GOFLAGS=-buildvcs=auto")
}

// enable mounts the plugin at path, pinned to version, until the test ends.
func enable(t *testing.T, s *cluster.Server, path, version string) {
	t.Helper()
	cluster.Must(t, s, http.StatusNoContent, "POST", "sys/mounts/"+path, map[string]any{
		"type":   pluginName,
		"config": map[string]any{"plugin_version": version},
	})
	t.Cleanup(func() { cluster.Send(s.Address, s.Token, "DELETE", "sys/mounts/"+path, nil) })
}

// runningVersion is the plugin version the mount at path runs now, which a
// tune alone does not change: the mount moves to its tuned version when it
// is reloaded.
func runningVersion(t testing.TB, at cluster.Endpoint, path string) any {
	t.Helper()
	return cluster.Must(t, at, http.StatusOK, "GET", "sys/mounts/"+path, nil).Data()["running_plugin_version"]
}
