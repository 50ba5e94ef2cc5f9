package e2e

import (
	"fmt"
	"os"
	"strings"
)

// The e2e tests run against Vault or against OpenBao, its open-source fork,
// as E2E_SERVER says: vault (the default) or openbao. The same plugin binary
// serves both; where the servers differ, a test asks serverKind and asserts
// the difference rather than skipping.

type serverKind struct {
	name      string // as E2E_SERVER names it
	title     string
	find      string // the script that prints the server binary's path
	binaryEnv string // what that script takes first
	// cliEnv is the prefix of the variables the server's CLI reads; OpenBao's
	// reads VAULT_ ones too, but its own first.
	cliEnv string
	// hasPins: sys/plugins/pins, which Vault added after the fork.
	hasPins bool
	// auditByAPI: OpenBao enables audit devices only from the config file.
	auditByAPI bool
	// refusesEncodedDots: OpenBao refuses a percent-encoded "." or ".."
	// segment itself; Vault passes it to the plugin, which refuses it.
	refusesEncodedDots bool
	// reloadRevivesWrites: a reload of a mount its node could not set up (the
	// binary was missing) makes it write again; Vault 1.21 needs a step-down.
	reloadRevivesWrites bool
	// standbyReads: a standby answers reads itself, from its own plugin
	// process, unless the config says disable_standby_reads (OpenBao 2.5+).
	standbyReads bool
	// declaresPlugins: a plugin block in the server config registers a
	// plugin when the server starts; Vault ignores the block.
	declaresPlugins bool
}

var (
	vaultKind = serverKind{name: "vault", title: "Vault", find: "./vault.sh", binaryEnv: "VAULT_BINARY",
		cliEnv: "VAULT_", hasPins: true, auditByAPI: true}
	openbaoKind = serverKind{name: "openbao", title: "OpenBao", find: "./bao.sh", binaryEnv: "BAO_BINARY",
		cliEnv: "BAO_", refusesEncodedDots: true, reloadRevivesWrites: true, standbyReads: true, declaresPlugins: true}
	// tested is the kind of server these tests run against.
	tested = vaultKind
)

// chooseServer sets tested from E2E_SERVER.
func chooseServer() error {
	switch name := os.Getenv("E2E_SERVER"); name {
	case "", vaultKind.name:
		tested = vaultKind
	case openbaoKind.name:
		tested = openbaoKind
	default:
		return fmt.Errorf("E2E_SERVER=%q: want vault or openbao", name)
	}
	return nil
}

// forgetUserSettings drops a user's VAULT_* and BAO_* variables: a token, a
// namespace or a CA file there would reach the CLI the tests run, and only
// the servers the tests start, with the settings they give, are addressed.
func forgetUserSettings() {
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if (strings.HasPrefix(name, "VAULT_") || strings.HasPrefix(name, "BAO_")) && !strings.HasSuffix(name, "_BINARY") {
			os.Unsetenv(name)
		}
	}
}

// cliEnv is what the CLI needs to reach addr with token, for either server.
func cliEnv(addr, token string) []string {
	var env []string
	for _, prefix := range []string{"VAULT_", "BAO_"} {
		env = append(env, prefix+"ADDR="+addr, prefix+"TOKEN="+token, prefix+"FORMAT=")
	}
	return env
}

// reloadArgs are the CLI's arguments that reload the plugin on every mount
// of this node or, with global, of every node. Vault's CLI asks for the
// plugin's type; OpenBao's has no such flag.
func (k serverKind) reloadArgs(global bool) []string {
	args := []string{"plugin", "reload", "-plugin=" + pluginName}
	if k.name == vaultKind.name {
		args = append(args, "-type=secret")
	}
	if global {
		args = append(args, "-scope=global")
	}
	return args
}

// dotSegmentRefusal is in the 400 a percent-encoded dot segment gets, whose
// rule the plugin names as pluginRule.
func (k serverKind) dotSegmentRefusal(pluginRule string) string {
	if k.refusesEncodedDots {
		return "relative paths not supported"
	}
	return pluginRule
}
