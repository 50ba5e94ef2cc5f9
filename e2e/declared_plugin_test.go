package e2e

import (
	"net/http"
	"strings"
	"testing"

	"github.com/vault-reference/vault-plugin-secrets-reference/apicases"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/cluster"
)

// TestDeclaredPlugin_RunsOnlyTheBinaryItsConfigNames declares the plugin in a
// node's server config, as make cluster does on OpenBao, with no register
// call. A sha256sum that is not the binary's must keep the binary from ever
// running, at a new mount and at one that ran before, and the log must say
// why; the right one serves, and nothing written is lost in between. Vault
// ignores the block: the plugin stays unknown to it.
func TestDeclaredPlugin_RunsOnlyTheBinaryItsConfigNames(t *testing.T) {
	if err := cluster.BecomeSubreaper(); err != nil {
		t.Fatal(err)
	}
	c := &cluster.Cluster{T: t}
	t.Cleanup(c.StopAll)
	c.Nodes = cluster.ConfigureNodes(t, 1, false)
	n := c.Nodes[0]
	// The other version's checksum: what a config names after a binary was
	// swapped, or before the new one was copied in.
	wrong := pluginSHA[newVersion]
	declare := func(sha string) {
		n.WriteConfig(t, "PLUGIN_NAME="+pluginName, "PLUGIN_COMMAND="+pluginCommand(oldVersion),
			"PLUGIN_VERSION="+oldVersion, "PLUGIN_SHA256="+sha)
	}
	restartDeclaring := func(sha string) {
		t.Helper()
		n.Stop(t)
		declare(sha)
		c.Restart(n)
	}
	enable := map[string]any{"type": pluginName, "plugin_version": oldVersion}
	secret := mount + "/secrets/declared"

	if !cluster.Tested.DeclaresPlugins {
		declare(pluginSHA[oldVersion])
		if err := n.Start(); err != nil {
			t.Fatal(err)
		}
		c.Initialise()
		cluster.Must(t, n, http.StatusBadRequest, "POST", "sys/mounts/"+mount, enable, "plugin not found in the catalog")
		return
	}

	declare(wrong)
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	c.Initialise()
	cluster.Must(t, n, http.StatusBadRequest, "POST", "sys/mounts/"+mount, enable, "checksums did not match")
	neverRan(t, n)

	restartDeclaring(pluginSHA[oldVersion])
	cluster.Must(t, n, http.StatusNoContent, "POST", "sys/mounts/"+mount, enable)
	cluster.Must(t, n, http.StatusOK, "POST", secret, apicases.KV("password", "declared"))

	// A mount that served before is not set up at all: its paths are unknown.
	restartDeclaring(wrong)
	cluster.Must(t, n, http.StatusNotFound, "GET", secret, nil)
	neverRan(t, n)

	restartDeclaring(pluginSHA[oldVersion])
	c.WaitServing()
	if r := cluster.Must(t, n, http.StatusOK, "GET", secret, nil); r.Data()["version"] != float64(1) {
		t.Fatalf("after the right checksum is back: %s, want version 1", r)
	}
}

// neverRan fails the test if the node runs a plugin process, or if the log
// of its latest start does not say that the checksum did not match.
func neverRan(t *testing.T, n *cluster.Node) {
	t.Helper()
	if pids := cluster.ProcessesUnder(n.PluginDir); len(pids) > 0 {
		t.Fatalf("%s runs plugin processes %v though its config names another checksum, want none", n.ID, pids)
	}
	if log := n.Logs[len(n.Logs)-1].String(); !strings.Contains(log, "checksums did not match") {
		t.Fatalf("%s's log:\n%s\nwant it to say the checksums did not match", n.ID, log)
	}
}
