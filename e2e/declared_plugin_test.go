package e2e

import (
	"net/http"
	"strings"
	"testing"
)

// TestDeclaredPlugin_RunsOnlyTheBinaryItsConfigNames declares the plugin in a
// node's server config, as make cluster does on OpenBao, with no register
// call. A sha256sum that is not the binary's must keep the binary from ever
// running, at a new mount and at one that ran before, and the log must say
// why; the right one serves, and nothing written is lost in between. Vault
// ignores the block: the plugin stays unknown to it.
func TestDeclaredPlugin_RunsOnlyTheBinaryItsConfigNames(t *testing.T) {
	if err := becomeSubreaper(); err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t}
	t.Cleanup(c.stopAll)
	c.nodes = configureNodes(t, 1, false)
	n := c.nodes[0]
	// The other version's checksum: what a config names after a binary was
	// swapped, or before the new one was copied in.
	wrong := pluginSHA[newVersion]
	declare := func(sha string) {
		n.writeConfig(t, "PLUGIN_NAME="+pluginName, "PLUGIN_COMMAND="+pluginCommand(oldVersion),
			"PLUGIN_VERSION="+oldVersion, "PLUGIN_SHA256="+sha)
	}
	restartDeclaring := func(sha string) {
		t.Helper()
		n.stop(t)
		declare(sha)
		c.restart(n)
	}
	enable := map[string]interface{}{"type": pluginName, "plugin_version": oldVersion}
	secret := mount + "/secrets/declared"

	if !tested.declaresPlugins {
		declare(pluginSHA[oldVersion])
		if err := n.start(); err != nil {
			t.Fatal(err)
		}
		c.initialise()
		must(t, n, http.StatusBadRequest, "POST", "sys/mounts/"+mount, enable, "plugin not found in the catalog")
		return
	}

	declare(wrong)
	if err := n.start(); err != nil {
		t.Fatal(err)
	}
	c.initialise()
	must(t, n, http.StatusBadRequest, "POST", "sys/mounts/"+mount, enable, "checksums did not match")
	neverRan(t, n)

	restartDeclaring(pluginSHA[oldVersion])
	must(t, n, http.StatusNoContent, "POST", "sys/mounts/"+mount, enable)
	must(t, n, http.StatusOK, "POST", secret, secretBody("password", "declared"))

	// A mount that served before is not set up at all: its paths are unknown.
	restartDeclaring(wrong)
	must(t, n, http.StatusNotFound, "GET", secret, nil)
	neverRan(t, n)

	restartDeclaring(pluginSHA[oldVersion])
	c.waitServing()
	if r := must(t, n, http.StatusOK, "GET", secret, nil); r.data()["version"] != float64(1) {
		t.Fatalf("after the right checksum is back: %s", r)
	}
}

// neverRan fails the test if the node runs a plugin process, or if the log
// of its latest start does not say that the checksum did not match.
func neverRan(t *testing.T, n *node) {
	t.Helper()
	if pids := processesUnder(n.pluginDir); len(pids) > 0 {
		t.Fatalf("%s runs plugin processes %v though its config names another checksum", n.id, pids)
	}
	if log := n.logs[len(n.logs)-1].String(); !strings.Contains(log, "checksums did not match") {
		t.Fatalf("%s's log does not say the checksum did not match:\n%s", n.id, log)
	}
}
