// Package e2e proves, through real Vault and OpenBao servers and a real
// Redis, that a credential the dynamic plugin issues works only while its
// lease lives: under plugin crashes, failovers, restores, Redis outages and
// the operator's own changes.
package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vault-reference/vault-plugin-secrets-reference/dynamic/e2e/leases"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/cluster"
)

const (
	pluginName = "vault-plugin-secrets-redis-reference"
	mount      = "redis"
	oldVersion = "v0.1.0"
	newVersion = "v0.2.0"
	// walMinAge is how old the plugin built for these tests takes a create's
	// write-ahead log entry to be abandoned; a release waits 10 minutes.
	walMinAge = 5 * time.Second
)

var pluginSHA = map[string]string{}

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
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Minute)
	defer cancel()
	// The static engine's e2e folder holds the harness's scripts, and finds
	// or builds the servers, once, for both plugins.
	cluster.Scripts = filepath.Join("..", "..", "e2e")
	cmd := exec.CommandContext(ctx, cluster.Tested.Find)
	cmd.Dir = cluster.Scripts
	out, err := cmd.Output()
	if err != nil {
		return 1, fmt.Errorf("finding a %s binary: %w", cluster.Tested.Title, err)
	}
	cluster.Binary = strings.TrimSpace(string(out))
	if err := cluster.StartRun(); err != nil {
		return 1, err
	}
	defer cluster.EndRun()

	work, err := os.MkdirTemp("", "e2e-dynamic-")
	if err != nil {
		return 1, err
	}
	defer os.RemoveAll(work)
	pluginDir := filepath.Join(work, "plugins")
	setup := cluster.PluginSetup{Name: pluginName, Dir: pluginDir, Mount: mount, Version: oldVersion,
		SHA256: pluginSHA, Serving: leases.Serving(mount)}
	for _, v := range []string{oldVersion, newVersion} {
		if pluginSHA[v], err = buildPlugin(v, filepath.Join(pluginDir, setup.Command(v))); err != nil {
			return 1, err
		}
	}
	cluster.Plugin = setup
	return m.Run(), nil
}

// pluginSource is the tree the plugin is built from: this checkout's, or
// PLUGIN_SOURCE, a copy with a bug planted by make mutants.
func pluginSource() string {
	if dir := os.Getenv("PLUGIN_SOURCE"); dir != "" {
		return dir
	}
	return ".."
}

// buildPlugin builds the plugin with its Makefile, as an operator would, with
// a short rollback age, and returns the SHA-256 the Makefile wrote beside it.
func buildPlugin(version, binary string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "make", "-s", "-C", pluginSource(), "build", "VERSION="+version, "BIN="+binary,
		"WAL_MIN_AGE="+walMinAge.String())
	cmd.Env = append(os.Environ(), "GOENV=off", "GOFLAGS=-buildvcs=auto")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("make build %s: %v: %s", version, err, out)
	}
	sha, err := os.ReadFile(binary + ".sha256")
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(sha)), os.Remove(binary + ".sha256")
}
