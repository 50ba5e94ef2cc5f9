// Package bench compares the dynamic plugin with HashiCorp's Redis database
// plugin, the peer users would pick, through one Vault server and real
// Redis servers: how fast each issues and revokes, how soon a dead lease's
// credential is refused, and which users each leaves behind under faults.
// It writes ../BENCHMARKS.md; run it with `make bench`.
package bench

import (
	"context"
	"flag"
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
	pluginName    = "vault-plugin-secrets-redis-reference"
	pluginVersion = "v0.1.0"
	// walMinAge is the rollback age the plugin is built with, as the lease
	// proof builds it: a release waits 10 minutes.
	walMinAge = 5 * time.Second
)

var out = flag.String("out", "", "report to write (BENCHMARKS.md); none if empty")

// peerBinary is HashiCorp's plugin, from peer.sh.
var peerBinary string

func TestMain(m *testing.M) {
	flag.Parse()
	if dir := os.Getenv(cluster.ReaperEnv); dir != "" {
		cluster.Reap(dir)
		os.Exit(0)
	}
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		code = 1
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	cluster.ForgetUserSettings()
	cluster.Tested = cluster.Vault
	cluster.Scripts = filepath.Join("..", "..", "e2e")
	var err error
	if cluster.Binary, err = script(cluster.Scripts, cluster.Tested.Find); err != nil {
		return 1, err
	}
	if peerBinary, err = script(".", "./peer.sh"); err != nil {
		return 1, err
	}
	if err := cluster.StartRun(); err != nil {
		return 1, err
	}
	defer cluster.EndRun()

	work, err := os.MkdirTemp("", "bench-dynamic-")
	if err != nil {
		return 1, err
	}
	defer os.RemoveAll(work)
	setup := cluster.PluginSetup{Name: pluginName, Dir: filepath.Join(work, "plugins"), Mount: ours.mount,
		Version: pluginVersion, SHA256: map[string]string{}, Serving: leases.Serving(ours.mount)}
	if setup.SHA256[pluginVersion], err = buildPlugin(filepath.Join(setup.Dir, setup.Command(pluginVersion))); err != nil {
		return 1, err
	}
	cluster.Plugin = setup
	return m.Run(), nil
}

// script runs a script that prints a binary's path, from dir.
func script(dir, name string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name)
	cmd.Dir = dir
	cmd.Stderr = os.Stderr
	path, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	return strings.TrimSpace(string(path)), nil
}

// buildPlugin builds the plugin with its Makefile, as the lease proof does,
// and returns the SHA-256 the Makefile wrote beside it.
func buildPlugin(binary string) (string, error) {
	cmd := exec.Command("make", "-s", "-C", "..", "build", "VERSION="+pluginVersion, "BIN="+binary, "WAL_MIN_AGE="+walMinAge.String())
	cmd.Env = append(os.Environ(), "GOENV=off", "GOFLAGS=-buildvcs=auto")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("make build: %v: %s", err, out)
	}
	sha, err := os.ReadFile(binary + ".sha256")
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(sha)), os.Remove(binary + ".sha256")
}
