package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vault-reference/vault-plugin-secrets-reference/apicases"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/cluster"
)

// TestPersistence_RaftServerRestartKeepsEverything runs the operator's setup, not
// dev mode: integrated storage on disk, init, unseal, register, enable, write;
// then a restart and a fresh unseal must find every secret and the config.
func TestPersistence_RaftServerRestartKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	listen, configPath := writeRaftConfig(t, dir)
	s, err := cluster.StartServerAt(dir, listen, "-config="+configPath)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Stop() }()

	initReply := cluster.Must(t, s, http.StatusOK, "PUT", "sys/init", map[string]any{"secret_shares": 1, "secret_threshold": 1})
	unsealKey := initReply.Body["keys"].([]any)[0].(string)
	s.Token = initReply.Body["root_token"].(string)
	unseal := func() {
		t.Helper()
		cluster.Must(t, s, http.StatusOK, "PUT", "sys/unseal", map[string]any{"key": unsealKey})
		waitActive(t, s)
	}
	unseal()

	s.MustCLI(t, "plugin", "register", "-sha256="+pluginSHA[oldVersion], "-version="+oldVersion,
		"-command="+pluginCommand(oldVersion), "secret", pluginName)
	s.MustCLI(t, "secrets", "enable", "-path="+mount, pluginName)
	const secrets = 10
	writeSecretsAndConfig(t, s, secrets)

	s.Stop()
	token := s.Token
	s, err = cluster.StartServerAt(dir, listen, "-config="+configPath)
	if err != nil {
		t.Fatal(err)
	}
	s.Token = token
	unseal()
	expectSecretsAndConfig(t, s, secrets)
}

// writeRaftConfig writes, in dir, the config of a one-node raft server on
// ports of its own, with the tests' plugin directory, and returns where it
// listens and the config's file.
func writeRaftConfig(t *testing.T, dir string) (listen, file string) {
	t.Helper()
	ports, err := cluster.FreePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	listen = fmt.Sprintf("127.0.0.1:%d", ports[0])
	config := fmt.Sprintf(`
storage "raft" {
  path    = %q
  node_id = "node1"
}
listener "tcp" {
  address         = %q
  cluster_address = "127.0.0.1:%d"
  tls_disable     = true
}
api_addr         = "http://%s"
cluster_addr     = "http://127.0.0.1:%d"
plugin_directory = %q
disable_mlock    = true
`, filepath.Join(dir, "raft"), listen, ports[1], listen, ports[1], pluginDir)
	file = filepath.Join(dir, "server.hcl")
	if err := os.MkdirAll(filepath.Join(dir, "raft"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	return listen, file
}

// writeSecretsAndConfig writes secrets secrets under team/, s0 twice, and a
// config, and checks that a secret too large for raft is refused and not
// stored.
func writeSecretsAndConfig(t *testing.T, s *cluster.Server, secrets int) {
	t.Helper()
	for i := 0; i < secrets; i++ {
		cluster.Must(t, s, http.StatusOK, "POST", fmt.Sprintf("%s/secrets/team/s%d", mount, i), apicases.KV("i", fmt.Sprint(i)))
	}
	cluster.Must(t, s, http.StatusOK, "POST", mount+"/secrets/team/s0", apicases.KV("i", "0-v2"))
	cluster.Must(t, s, http.StatusNoContent, "POST", mount+"/config", map[string]any{"cas_required": true, "max_secret_bytes": 1048576})
	// Within max_secret_bytes, but over raft's 1 MiB entry limit once stored:
	// the caller's mistake, so a 400, and nothing stored.
	huge := map[string]any{"data": map[string]any{"k": strings.Repeat("v", 1048560)}, "cas": 0}
	cluster.Must(t, s, http.StatusBadRequest, "POST", mount+"/secrets/huge", huge, "too large for this Vault's storage")
	cluster.Must(t, s, http.StatusNotFound, "GET", mount+"/secrets/huge", nil)
}

// expectSecretsAndConfig fails the test unless s reads what
// writeSecretsAndConfig wrote, versions included.
func expectSecretsAndConfig(t *testing.T, s *cluster.Server, secrets int) {
	t.Helper()
	for i := 0; i < secrets; i++ {
		r := cluster.Must(t, s, http.StatusOK, "GET", fmt.Sprintf("%s/secrets/team/s%d", mount, i), nil)
		want, version := fmt.Sprint(i), float64(1)
		if i == 0 {
			want, version = "0-v2", 2
		}
		if r.Data()["data"].(map[string]any)["i"] != want || r.Data()["version"] != version {
			t.Fatalf("after restart s%d reads %s, want i=%s at version %v", i, r, want, version)
		}
	}
	if keys := cluster.Must(t, s, http.StatusOK, "LIST", mount+"/secrets/team/", nil).Data()["keys"].([]any); len(keys) != secrets {
		t.Fatalf("after restart the folder lists %v, want %d keys", keys, secrets)
	}
	if cfg := cluster.Must(t, s, http.StatusOK, "GET", mount+"/config", nil).Data(); cfg["cas_required"] != true {
		t.Fatalf("after restart config is %v, want cas_required true", cfg)
	}
}

// waitActive waits until an unsealed raft node has become the active node.
func waitActive(t *testing.T, s *cluster.Server) {
	t.Helper()
	if err := cluster.Poll(30*time.Second, func() (bool, string) {
		r, err := cluster.Send(s.Address, s.Token, "GET", "sys/health", nil)
		return err == nil && r.Status == http.StatusOK, r.String()
	}); err != nil {
		t.Fatalf("sys/health: %v, want 200, the server active\n%s", err, s.LogText())
	}
}
