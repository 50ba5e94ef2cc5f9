package bench

import (
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/vault-reference/vault-plugin-secrets-reference/dynamic/redistest"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/cluster"
)

// The role every engine issues from, the same rules for each: leases short
// enough that many expire in a scenario, renewals that reach max_ttl.
const (
	role       = "app"
	roleTTL    = 4 * time.Second
	roleMaxTTL = 10 * time.Second
)

// engine is one way to issue Redis users through Vault, with a Redis of its
// own: another engine's ACL SAVE would otherwise persist its users too.
type engine struct {
	name  string
	mount string
	// prefix begins the name of every user the engine makes.
	prefix string
	redis  *redistest.Server
	// observer is the tests' own client of that Redis.
	observer *redis.Client
	// setUp mounts and configures the engine for its Redis.
	setUp func(t *testing.T, n *cluster.Node, e *engine)
}

var (
	// ours is the plugin as its README configures it for a Redis that
	// loads its users from an aclfile.
	ours = &engine{name: "reference", mount: "redis", prefix: "v-", setUp: configureOurs(true)}
	// peer is HashiCorp's plugin through Vault's database secrets engine.
	peer = &engine{name: "hashicorp", mount: "database", prefix: "V_", setUp: configurePeer}
	// unsaved is ours with save_acl off: what ACL SAVE costs.
	unsaved = &engine{name: "reference, save_acl off", mount: "redis-unsaved", prefix: "v-", setUp: configureOurs(false)}
)

func (e *engine) creds() string { return e.mount + "/creds/" + role }

// start gives the engine a Redis of its own and sets it up in Vault.
func (e *engine) start(t *testing.T, n *cluster.Node) {
	t.Helper()
	r, err := redistest.Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	e.redis, e.observer = r, r.Observer()
	t.Cleanup(func() { e.observer.Close() })
	e.setUp(t, n, e)
}

// configureOurs mounts the plugin (cluster.Start mounted it at ours.mount
// already) and writes its config and role.
func configureOurs(saveACL bool) func(t *testing.T, n *cluster.Node, e *engine) {
	return func(t *testing.T, n *cluster.Node, e *engine) {
		t.Helper()
		if e.mount != cluster.Plugin.Mount {
			n.Server.MustCLI(t, "secrets", "enable", "-path="+e.mount, "-plugin-version="+pluginVersion, pluginName)
		}
		cluster.Must(t, n, http.StatusNoContent, "PUT", e.mount+"/config", map[string]any{
			"address": e.redis.Addr, "username": redistest.PluginUser, "password": e.redis.PluginPassword, "save_acl": saveACL,
		})
		cluster.Must(t, n, http.StatusNoContent, "PUT", e.mount+"/roles/"+role, map[string]any{
			"commands": "+ping", "ttl": int(roleTTL.Seconds()), "max_ttl": int(roleMaxTTL.Seconds()),
		})
	}
}

// peerName is the peer's name in Vault's catalog, and its file.
const peerName = "vault-plugin-database-redis"

// configurePeer registers HashiCorp's plugin as its README says, enables
// the database engine and gives it a connection and a role with our role's
// rules: its creation statement is a JSON list of ACL rules.
func configurePeer(t *testing.T, n *cluster.Node, e *engine) {
	t.Helper()
	binary, err := os.ReadFile(peerBinary)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(n.PluginDir, peerName), binary, 0o755); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(binary)
	n.Server.MustCLI(t, "plugin", "register", "-sha256="+hex.EncodeToString(sum[:]), "database", peerName)
	n.Server.MustCLI(t, "secrets", "enable", "-path="+e.mount, "database")
	host, port, _ := net.SplitHostPort(e.redis.Addr)
	cluster.Must(t, n, http.StatusNoContent, "PUT", e.mount+"/config/redis", map[string]any{
		"plugin_name": peerName, "host": host, "port": port,
		"username": redistest.PluginUser, "password": e.redis.PluginPassword, "allowed_roles": role,
	})
	cluster.Must(t, n, http.StatusNoContent, "PUT", e.mount+"/roles/"+role, map[string]any{
		"db_name": "redis", "creation_statements": []string{`["+ping"]`},
		"default_ttl": int(roleTTL.Seconds()), "max_ttl": int(roleMaxTTL.Seconds()),
	})
}
