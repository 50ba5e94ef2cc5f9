package e2e

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/cluster"
)

// TestDev_ScriptServesThePluginAndStopsOnCtrlC runs what `make dev` runs, as a
// new user would: wait for its instructions, paste them, press Ctrl-C.
func TestDev_ScriptServesThePluginAndStopsOnCtrlC(t *testing.T) {
	binary := filepath.Join(t.TempDir(), pluginName)
	if _, err := cluster.RunCommand(5*time.Minute, "make", "-s", "-C", "..", "build", "BIN="+binary); err != nil {
		t.Fatalf("make build: %v, want a binary", err)
	}
	ports, err := cluster.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	listen := fmt.Sprintf("127.0.0.1:%d", ports[0])
	s := startScript(t, []string{"PLUGIN=" + pluginName, "MOUNT=" + mount, "DEV_ADDR=" + listen, "DEV_TOKEN=dev-token",
		"SERVER=" + cluster.Tested.Name, cluster.Tested.BinaryEnv + "=" + cluster.Binary}, "dev.sh", binary, oldVersion)
	// Building nothing, it starts one dev server: well within two minutes.
	printed := s.instructions(t, 2*time.Minute)
	for _, want := range []string{"export VAULT_ADDR=http://" + listen + " VAULT_TOKEN=dev-token", "vault write " + mount + "/secrets/app",
		"vault read " + mount + "/secrets/app", "vault list " + mount + "/secrets"} {
		if !strings.Contains(printed, want) {
			t.Fatalf("make dev prints:\n%s\nwant %q", printed, want)
		}
	}

	devServer := &cluster.Server{Address: "http://" + listen, Token: "dev-token"}
	devServer.MustCLI(t, "write", mount+"/secrets/app", "data=username=app", "data=password=s3cr3t")
	if out := devServer.MustCLI(t, "read", mount+"/secrets/app"); !strings.Contains(out, "password:s3cr3t") {
		t.Fatalf("vault read:\n%s\nwant password:s3cr3t", out)
	}
	if out := devServer.MustCLI(t, "plugin", "info", "-version="+oldVersion, "secret", pluginName); !strings.Contains(out, oldVersion) {
		t.Fatalf("plugin info:\n%s\nwant it to show %s", out, oldVersion)
	}

	s.ctrlC(t, 20*time.Second)
	if conn, err := net.DialTimeout("tcp", listen, time.Second); err == nil {
		conn.Close()
		t.Fatal("the dev server still listens after Ctrl-C, want it closed")
	}
}
