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

	"github.com/vault-reference/vault-plugin-secrets-reference/apicases"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/cluster"
)

// TestMake_RegisterAndEnableAgainstARunningVault runs `make register` and
// `make enable` as an operator of an existing Vault would.
func TestMake_RegisterAndEnableAgainstARunningVault(t *testing.T) {
	const version, made = "v0.3.0", "made"
	binary := filepath.Join(t.TempDir(), pluginName)
	runMake := func(target string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "make", "-s", "-C", "..", target, "VERSION="+version, "BIN="+binary,
			"PLUGIN_DIR="+pluginDir, "MOUNT="+made, "VAULT="+cluster.Binary)
		cmd.Env = append(os.Environ(), cluster.CLIEnv(dev.Addr(), dev.Token)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("make %s: %v, want it to succeed\n%s", target, err, out)
		}
	}
	t.Cleanup(func() {
		dev.CLI("secrets", "disable", made)
		dev.CLI("plugin", "deregister", "-version="+version, "secret", pluginName)
		os.Remove(filepath.Join(pluginDir, pluginName))
	})
	runMake("register")
	runMake("enable")

	if info := dev.MustCLI(t, "plugin", "info", "-version="+version, "secret", pluginName); !strings.Contains(info, version) {
		t.Fatalf("plugin info:\n%s\nwant it to show %s", info, version)
	}
	if got := runningVersion(t, dev, made); got != version {
		t.Fatalf("running_plugin_version %v, want %s", got, version)
	}
	cluster.Must(t, dev, http.StatusOK, "POST", made+"/secrets/app", apicases.KV("k", "v"))
}
