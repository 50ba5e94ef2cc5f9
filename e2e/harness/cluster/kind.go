package cluster

import (
	"fmt"
	"os"
	"strings"
)

// The e2e tests run against Vault or against OpenBao, its open-source fork,
// as E2E_SERVER says: vault (the default) or openbao. The same plugin binary
// serves both; where the servers differ, a test asks serverKind and asserts
// the difference rather than skipping.

type Kind struct {
	Name      string // as E2E_SERVER names it
	Title     string
	Find      string // the script that prints the server binary's path
	BinaryEnv string // what that script takes first
	// CLIPrefix is the prefix of the variables the server's CLI reads; OpenBao's
	// reads VAULT_ ones too, but its own first.
	CLIPrefix string
	// HasPins: sys/plugins/pins, which Vault added after the fork.
	HasPins bool
	// AuditByAPI: OpenBao enables audit devices only from the config file.
	AuditByAPI bool
	// RefusesEncodedDots: OpenBao refuses a percent-encoded "." or ".."
	// segment itself; Vault passes it to the plugin, which refuses it.
	RefusesEncodedDots bool
	// ReloadRevivesWrites: a reload of a mount its node could not set up (the
	// binary was missing) makes it write again; Vault 1.21 needs a step-down.
	ReloadRevivesWrites bool
	// StandbyReads: a standby answers reads itself, from its own plugin
	// process, unless the config says disable_standby_reads (OpenBao 2.5+).
	StandbyReads bool
	// DeclaresPlugins: a plugin block in the server config registers a
	// plugin when the server starts; Vault ignores the block.
	DeclaresPlugins bool
	// ForwardsWhenDeposed: an active node deposed while it held a request
	// sends the request on to the new active node, since it forwards what
	// its storage refused with raft's "node is not the leader" (OpenBao).
	ForwardsWhenDeposed bool
}

var (
	Vault = Kind{Name: "vault", Title: "Vault", Find: "./vault.sh", BinaryEnv: "VAULT_BINARY",
		CLIPrefix: "VAULT_", HasPins: true, AuditByAPI: true}
	OpenBao = Kind{Name: "openbao", Title: "OpenBao", Find: "./bao.sh", BinaryEnv: "BAO_BINARY",
		CLIPrefix: "BAO_", RefusesEncodedDots: true, ReloadRevivesWrites: true, StandbyReads: true, DeclaresPlugins: true,
		ForwardsWhenDeposed: true}
	// Tested is the kind of server these tests run against.
	Tested = Vault
)

// ChooseServer sets tested from E2E_SERVER.
func ChooseServer() error {
	switch name := os.Getenv("E2E_SERVER"); name {
	case "", Vault.Name:
		Tested = Vault
	case OpenBao.Name:
		Tested = OpenBao
	default:
		return fmt.Errorf("E2E_SERVER=%q: want vault or openbao", name)
	}
	return nil
}

// ForgetUserSettings drops a user's VAULT_* and BAO_* variables: a token, a
// namespace or a CA file there would reach the CLI the tests run, and only
// the servers the tests start, with the settings they give, are addressed.
func ForgetUserSettings() {
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if (strings.HasPrefix(name, "VAULT_") || strings.HasPrefix(name, "BAO_")) && !strings.HasSuffix(name, "_BINARY") {
			os.Unsetenv(name)
		}
	}
}

// CLIEnv is what the CLI needs to reach addr with token, for either server.
func CLIEnv(addr, token string) []string {
	var env []string
	for _, prefix := range []string{"VAULT_", "BAO_"} {
		env = append(env, prefix+"ADDR="+addr, prefix+"TOKEN="+token, prefix+"FORMAT=")
	}
	return env
}

// ReloadArgs are the CLI's arguments that reload the plugin on every mount
// of this node or, with global, of every node. Vault's CLI asks for the
// plugin's type; OpenBao's has no such flag.
func (k Kind) ReloadArgs(plugin string, global bool) []string {
	args := []string{"plugin", "reload", "-plugin=" + plugin}
	if k.Name == Vault.Name {
		args = append(args, "-type=secret")
	}
	if global {
		args = append(args, "-scope=global")
	}
	return args
}

// DotSegmentRefusal is in the 400 a percent-encoded dot segment gets, whose
// rule the plugin names as pluginRule.
func (k Kind) DotSegmentRefusal(pluginRule string) string {
	if k.RefusesEncodedDots {
		return "relative paths not supported"
	}
	return pluginRule
}
