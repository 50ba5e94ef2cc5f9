package cluster

// What every server and cluster of a run shares, set once by the tests'
// TestMain before any server starts.
var (
	// Binary is the server binary: vault, or OpenBao's bao.
	Binary string
	// Plugin is the plugin a new cluster registers and mounts.
	Plugin PluginSetup
	// Scripts is the folder of node-config.sh, vault.sh and bao.sh (the
	// static engine's e2e folder), from the tests' working directory.
	Scripts = "."
)

// DevToken is the root token of every dev server.
const DevToken = "e2e-root"

// PluginSetup names the plugin under test and where its binaries are.
type PluginSetup struct {
	Name string
	// Dir holds one binary per version, named Command(version).
	Dir string
	// Mount is where a new cluster mounts it.
	Mount string
	// Version is the version a new cluster registers and mounts.
	Version string
	// SHA256 is each version's checksum, for registration.
	SHA256 map[string]string
	// Serving tells whether the plugin serves through e: the API's own
	// probe, since only the API knows a request that proves it.
	Serving func(e Endpoint, token string) (bool, string)
}

// Command is the file name of the binary of version in Dir.
func (p PluginSetup) Command(version string) string { return p.Name + "-" + version }

// FailureDir is where a failed test leaves what there is to look at: the
// servers' logs here, and what the checks and reports add. It is kept
// across runs and ignored by git.
const FailureDir = ".chaos"
