package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vault-reference/vault-plugin-secrets-reference/apicases"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/cluster"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/faults"
)

// What the plugin shows through the dev server most tests share: the CLI an
// operator types, the HTTP API a client calls, ACLs, concurrent writers, a
// plugin process that crashes, and a binary that was tampered with.

func TestOperator_RegisterEnableInfoWithTheCLI(t *testing.T) {
	info := dev.MustCLI(t, "plugin", "info", "-version="+oldVersion, "secret", pluginName)
	for _, want := range []string{oldVersion, pluginSHA[oldVersion]} {
		if !strings.Contains(info, want) {
			t.Fatalf("plugin info:\n%s\nwant it to show %s", info, want)
		}
	}
	dev.MustCLI(t, "secrets", "enable", "-path="+mount, pluginName)
	t.Cleanup(func() { dev.CLI("secrets", "disable", mount) })
	if got := runningVersion(t, dev, mount); got != oldVersion {
		t.Fatalf("running_plugin_version %v, want %s", got, oldVersion)
	}

	dev.MustCLI(t, "write", mount+"/secrets/app", "data=username=app", "data=password=x")
	dev.MustCLI(t, "write", mount+"/secrets/team/db", "data=password=y")
	var data map[string]string
	if err := json.Unmarshal([]byte(dev.MustCLI(t, "read", "-format=json", "-field=data", mount+"/secrets/app")), &data); err != nil {
		t.Fatalf("read -format=json -field=data: %v, want a JSON object", err)
	}
	if !reflect.DeepEqual(data, map[string]string{"username": "app", "password": "x"}) {
		t.Fatalf("read -field=data: got %v, want map[password:x username:app]", data)
	}
	if out := dev.MustCLI(t, "list", mount+"/secrets"); !strings.Contains(out, "app\nteam/") {
		t.Fatalf("vault list:\n%s\nwant app, then team/", out)
	}
	if out, err := dev.CLI("list", mount+"/secrets/nothing"); err == nil || !strings.Contains(out, "No value found") {
		t.Fatalf("listing an empty folder: %v\n%s\nwant an error saying No value found", err, out)
	}
	if out := dev.MustCLI(t, "path-help", mount+"/secrets/app"); !strings.Contains(out, "cas") {
		t.Fatalf("path-help:\n%s\nwant it to mention cas", out)
	}
}

// secretValue is written by TestAPI_ContractOverHTTP, well-formed and not, and
// must never appear in the server's log or in the audit log.
const secretValue = "Sup3r-s3cret-e2e-value"

const (
	casRule = "cas: must be a whole number of at least 0"
	dotRule = `name: must not have a segment that is exactly "."`
)

// TestAPI_ContractOverHTTP checks, in one mount, every answer of the API the
// README documents, in the order a user meets them.
func TestAPI_ContractOverHTTP(t *testing.T) {
	enable(t, dev, "api", oldVersion)
	defer expectSecretValueNotLogged(t, enableAuditLog(t))
	apiNeverEchoesTheSecret(t)
	apiConfig(t)
	apiWriteReadAndCAS(t)
	apiRefusesBadWrites(t)
	apiEnforcesCASRequired(t)
	apiListsAndDeletes(t)
	apiDocumentsItself(t)
}

// enableAuditLog returns the file an audit device writes to: one enabled
// through the API, or on OpenBao, which refuses that, the one its config
// declares.
func enableAuditLog(t *testing.T) string {
	t.Helper()
	auditLog := filepath.Join(t.TempDir(), "audit.log")
	device := map[string]any{"type": "file", "options": map[string]any{"file_path": auditLog}}
	if !cluster.Tested.AuditByAPI {
		cluster.Must(t, dev, http.StatusBadRequest, "PUT", "sys/audit/api-file", device, "cannot enable audit device via API")
		return declaredAuditLog
	}
	cluster.Must(t, dev, http.StatusNoContent, "PUT", "sys/audit/api-file", device)
	t.Cleanup(func() { cluster.Send(dev.Addr(), dev.Token, "DELETE", "sys/audit/api-file", nil) })
	return auditLog
}

// expectSecretValueNotLogged fails the test if secretValue reached the
// server's log or the audit log, or if nothing was audited at all.
func expectSecretValueNotLogged(t *testing.T, auditLog string) {
	t.Helper()
	audit, err := os.ReadFile(auditLog)
	if err != nil || len(audit) == 0 {
		t.Fatalf("audit log %s: %d bytes (%v), want some", auditLog, len(audit), err)
	}
	if strings.Contains(string(audit), secretValue) || strings.Contains(dev.LogText(), secretValue) {
		t.Fatal("a secret value reached the server log or the audit log, want it in neither")
	}
}

// apiNeverEchoesTheSecret writes secretValue, well-formed and not: no error
// quotes it, neither the API's nor the CLI's.
func apiNeverEchoesTheSecret(t *testing.T) {
	t.Helper()
	cluster.Must(t, dev, http.StatusOK, "POST", "api/secrets/logged", apicases.KV("password", secretValue))
	cluster.Must(t, dev, http.StatusOK, "GET", "api/secrets/logged", nil)
	for _, malformed := range []any{secretValue, []any{secretValue}, map[string]any{"password": []any{secretValue}}} {
		r := cluster.Must(t, dev, http.StatusBadRequest, "POST", "api/secrets/logged", map[string]any{"data": malformed}, "data")
		if strings.Contains(r.Raw, secretValue) {
			t.Fatalf("got %s, want an error that does not quote the secret", r)
		}
	}
	if out, err := dev.CLI("write", "api/secrets/logged", "data="+secretValue); err == nil || strings.Contains(out, secretValue) {
		t.Fatalf("vault write data=VALUE without a key: %v\n%s\nwant it to fail without quoting the value", err, out)
	}
	cluster.Must(t, dev, http.StatusNoContent, "DELETE", "api/secrets/logged", nil)
}

// apiConfig checks the config's defaults, that an update changes only the
// fields it names, and that a bad value gets the plugin's own rule, however
// it is typed.
func apiConfig(t *testing.T) {
	t.Helper()
	cfg := cluster.Must(t, dev, http.StatusOK, "GET", "api/config", nil).Data()
	if cfg["max_secret_bytes"] != float64(524288) || cfg["cas_required"] != false {
		t.Fatalf("default config %v, want max_secret_bytes 524288 and cas_required false", cfg)
	}
	cluster.Must(t, dev, http.StatusNoContent, "POST", "api/config", map[string]any{"max_secret_bytes": 64})
	cluster.Must(t, dev, http.StatusNoContent, "PUT", "api/config", map[string]any{"cas_required": "false"})
	cfg = cluster.Must(t, dev, http.StatusOK, "GET", "api/config", nil).Data()
	if cfg["max_secret_bytes"] != float64(64) {
		t.Fatalf("config after a partial update %v, want max_secret_bytes still 64", cfg)
	}
	// The plugin's own words, whatever form the value takes.
	const maxBytesRule = "max_secret_bytes: must be a whole number from 1 to 1048576"
	for _, bad := range []any{1.5, "1.5", true, "x", 0, 1048577} {
		cluster.Must(t, dev, http.StatusBadRequest, "POST", "api/config", map[string]any{"max_secret_bytes": bad}, maxBytesRule)
	}
	for _, bad := range []any{1, "1", "yes"} {
		cluster.Must(t, dev, http.StatusBadRequest, "POST", "api/config", map[string]any{"cas_required": bad}, "cas_required: must be true or false")
	}
	if out, err := dev.CLI("write", "api/config", "max_secret_bytes=1.5"); err == nil || !strings.Contains(out, maxBytesRule) || strings.Contains(out, "strconv") {
		t.Fatalf("vault write api/config max_secret_bytes=1.5: %v\n%s\nwant it to fail with %q and no strconv", err, out, maxBytesRule)
	}
}

// apiWriteReadAndCAS checks a write's answer, a read's, a cas write, and the
// warning for a field the path does not have.
func apiWriteReadAndCAS(t *testing.T) {
	t.Helper()
	w := cluster.Must(t, dev, http.StatusOK, "POST", "api/secrets/team/app", apicases.KV("username", "app", "password", "s3cr3t"))
	if w.Data()["version"] != float64(1) || w.Data()["created_time"] == nil || w.Data()["data"] != nil {
		t.Fatalf("write response %s, want version 1, a created_time and no data", w)
	}
	r := cluster.Must(t, dev, http.StatusOK, "GET", "api/secrets/team/app", nil)
	if r.Body["lease_id"] != "" || r.Body["lease_duration"] != float64(0) {
		t.Fatalf("read %s, want no lease (empty lease_id, lease_duration 0)", r)
	}
	if got := r.Data()["data"]; !reflect.DeepEqual(got, map[string]any{"username": "app", "password": "s3cr3t"}) {
		t.Fatalf("read %s, want data username=app, password=s3cr3t", r)
	}
	cluster.Must(t, dev, http.StatusOK, "PUT", "api/secrets/team/app", map[string]any{"data": map[string]any{"k": "v"}, "cas": 1})
	cluster.Must(t, dev, http.StatusBadRequest, "PUT", "api/secrets/team/app", map[string]any{"data": map[string]any{"k": "v"}, "cas": 1}, "current version is 2")
	warned := cluster.Must(t, dev, http.StatusOK, "POST", "api/secrets/x", map[string]any{"data": map[string]any{"k": "v"}, "colour": "blue"})
	if !strings.Contains(fmt.Sprint(warned.Body["warnings"]), "colour") {
		t.Fatalf("write with an unknown field: %s, want a warning that names colour", warned)
	}
}

// apiRefusesBadWrites sends every kind of bad write and bad name and fails
// the test unless each gets a 400 naming its rule, and nothing was written.
// The config's max_secret_bytes is apiConfig's 64.
func apiRefusesBadWrites(t *testing.T) {
	t.Helper()
	badWrites := []struct {
		path, fragment string
		body           any
	}{
		{"api/secrets/y", "data: required", map[string]any{}},
		{"api/secrets/y", "at least one key", map[string]any{"data": map[string]any{}}},
		{"api/secrets/y", "keys must not be empty", apicases.KV("", "v")},
		{"api/secrets/y", `"port" must be a string`, map[string]any{"data": map[string]any{"port": 5432}}},
		{"api/secrets/y", `"on" must be a string`, map[string]any{"data": map[string]any{"on": true}}},
		{"api/secrets/y", `"k" must be a string`, map[string]any{"data": map[string]any{"k": nil}}},
		{"api/secrets/y", "max_secret_bytes", apicases.KV("k", strings.Repeat("v", 100))},
		{"api/secrets/y", casRule, map[string]any{"data": map[string]any{"k": "v"}, "cas": 1.5}},
		{"api/secrets/y", casRule, map[string]any{"data": map[string]any{"k": "v"}, "cas": "1.5"}},
		{"api/secrets/y", casRule, map[string]any{"data": map[string]any{"k": "v"}, "cas": true}},
		{"api/secrets/y", casRule, map[string]any{"data": map[string]any{"k": "v"}, "cas": "+0"}},
		{"api/secrets/y", "item 1 must be a KEY=VALUE", map[string]any{"data": "no-equals-sign"}},
		{"api/secrets/y", "does not exist", map[string]any{"data": map[string]any{"k": "v"}, "cas": 3}},
		{"api/secrets/a/%2E%2E/y", cluster.Tested.DotSegmentRefusal(`".."`), apicases.KV("k", "v")},
		{"api/secrets/%2E", cluster.Tested.DotSegmentRefusal(dotRule), apicases.KV("k", "v")},
		{"api/secrets/a/%2E/y", cluster.Tested.DotSegmentRefusal(dotRule), apicases.KV("k", "v")},
		{"api/secrets/" + strings.Repeat("n", 513), "512 bytes", apicases.KV("k", "v")},
	}
	for _, tt := range badWrites {
		cluster.Must(t, dev, http.StatusBadRequest, "POST", tt.path, tt.body, tt.fragment)
	}
	cluster.Must(t, dev, http.StatusNotFound, "GET", "api/secrets/y", nil)
	// Vault cleans "." out of a plain URL, but not out of a percent-encoded one.
	cluster.Must(t, dev, http.StatusBadRequest, "GET", "api/secrets/a/%2E/y", nil, cluster.Tested.DotSegmentRefusal(dotRule))
	cluster.Must(t, dev, http.StatusBadRequest, "DELETE", "api/secrets/a/%2E/y", nil, cluster.Tested.DotSegmentRefusal(dotRule))
	cluster.Must(t, dev, http.StatusBadRequest, "LIST", "api/secrets/a/%2E/", nil, cluster.Tested.DotSegmentRefusal("prefix: must not have a segment"))
}

// apiEnforcesCASRequired checks that cas_required refuses a write without
// cas, and that deleting the config brings back the defaults.
func apiEnforcesCASRequired(t *testing.T) {
	t.Helper()
	cluster.Must(t, dev, http.StatusNoContent, "POST", "api/config", map[string]any{"cas_required": true})
	cluster.Must(t, dev, http.StatusBadRequest, "POST", "api/secrets/y", apicases.KV("k", "v"), "cas: required")
	cluster.Must(t, dev, http.StatusOK, "POST", "api/secrets/y", map[string]any{"data": map[string]any{"k": "v"}, "cas": 0})
	cluster.Must(t, dev, http.StatusNoContent, "DELETE", "api/config", nil)
	if cfg := cluster.Must(t, dev, http.StatusOK, "GET", "api/config", nil).Data(); cfg["max_secret_bytes"] != float64(524288) || cfg["cas_required"] != false {
		t.Fatalf("config after delete %v, want max_secret_bytes 524288 and cas_required false", cfg)
	}
}

// apiListsAndDeletes checks a list, both ways of asking for one, a delete
// that is repeated, and that a name deleted starts again at version 1.
func apiListsAndDeletes(t *testing.T) {
	t.Helper()
	list := cluster.Must(t, dev, http.StatusOK, "LIST", "api/secrets", nil)
	if got := list.Data()["keys"]; !reflect.DeepEqual(got, []any{"team/", "x", "y"}) {
		t.Fatalf("list %s, want keys [team/ x y]", list)
	}
	cluster.Must(t, dev, http.StatusOK, "GET", "api/secrets/team/?list=true", nil)
	cluster.Must(t, dev, http.StatusNotFound, "LIST", "api/secrets/nothing/", nil)
	cluster.Must(t, dev, http.StatusMethodNotAllowed, "GET", "api/secrets/team/", nil)

	cluster.Must(t, dev, http.StatusNoContent, "DELETE", "api/secrets/y", nil)
	cluster.Must(t, dev, http.StatusNoContent, "DELETE", "api/secrets/y", nil)
	cluster.Must(t, dev, http.StatusNotFound, "GET", "api/secrets/y", nil)
	again := cluster.Must(t, dev, http.StatusOK, "POST", "api/secrets/y", map[string]any{"data": map[string]any{"k": "v"}, "cas": 0})
	if again.Data()["version"] != float64(1) {
		t.Fatalf("write after delete %s, want version 1", again)
	}
}

// apiDocumentsItself checks that path-help and Vault's OpenAPI document know
// the plugin's paths.
func apiDocumentsItself(t *testing.T) {
	t.Helper()
	if help := dev.MustCLI(t, "path-help", "api/config"); !strings.Contains(help, "max_secret_bytes") {
		t.Fatalf("path-help config:\n%s\nwant it to mention max_secret_bytes", help)
	}
	openapi := cluster.Must(t, dev, http.StatusOK, "GET", "sys/internal/specs/openapi", nil)
	for _, p := range []string{`"/api/config"`, `"/api/secrets/{name}"`, `"/api/secrets/"`} {
		if !strings.Contains(openapi.Raw, p) {
			t.Fatalf("Vault's OpenAPI document has no %s, want every path of the plugin", p)
		}
	}
}

func TestMultiplexing_OneProcessServesIsolatedMounts(t *testing.T) {
	enable(t, dev, "mux-a", oldVersion)
	enable(t, dev, "mux-b", oldVersion)
	cluster.Must(t, dev, http.StatusOK, "POST", "mux-a/secrets/app", apicases.KV("mount", "a"))
	cluster.Must(t, dev, http.StatusOK, "POST", "mux-b/secrets/app", apicases.KV("mount", "b"))
	cluster.Must(t, dev, http.StatusNoContent, "POST", "mux-a/config", map[string]any{"cas_required": true})

	for _, m := range []string{"a", "b"} {
		r := cluster.Must(t, dev, http.StatusOK, "GET", "mux-"+m+"/secrets/app", nil)
		if got := r.Data()["data"].(map[string]any)["mount"]; got != m {
			t.Fatalf("mux-%s reads mount %v's data, want its own", m, got)
		}
	}
	cluster.Must(t, dev, http.StatusOK, "POST", "mux-b/secrets/other", apicases.KV("k", "v")) // cas_required is mux-a's alone
	if pids := dev.PluginProcesses(pluginDir); len(pids) != 1 {
		t.Fatalf("%d plugin processes for two mounts, want 1 (multiplexed): %v", len(pids), pids)
	}
}

// killDevPluginProcesses SIGKILLs every plugin process the dev server runs,
// as a crash would end them, and returns how many.
func killDevPluginProcesses(t *testing.T) int {
	t.Helper()
	pids := dev.PluginProcesses(pluginDir)
	for _, pid := range pids {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatalf("kill %d: %v", pid, err)
		}
	}
	return len(pids)
}

// servedAfterKill asserts what the README promises of a killed plugin
// process: until the server has noticed the exit, a request that finds the
// process dead gets a 500 (Unavailable); then the server starts it again and
// serves, within outageBound of a killed plugin. Requests go back to back,
// each failure counted.
func servedAfterKill(t *testing.T, path string) {
	t.Helper()
	killed, failed := time.Now(), 0
	for {
		r, err := cluster.Send(dev.Addr(), dev.Token, "GET", path, nil)
		if err == nil && r.Status == http.StatusOK {
			break
		}
		if err != nil || r.Status != http.StatusInternalServerError || !strings.Contains(r.Raw, "Unavailable") {
			t.Fatalf("request %d after the kill: %s %v, want 200, or 500 Unavailable", failed+1, r, err)
		}
		failed++
		if time.Since(killed) > faults.KillPlugin.Bound() {
			t.Fatalf("%d requests got 500 Unavailable, the last: %s, want a 200 within %v of the kill", failed, r, faults.KillPlugin.Bound())
		}
	}
	t.Logf("served %v after the kill, after %d requests that got 500 Unavailable", time.Since(killed).Round(time.Millisecond), failed)
}

func TestCrash_KilledPluginComesBackWithAllData(t *testing.T) {
	enable(t, dev, "crash", oldVersion)
	cluster.Must(t, dev, http.StatusOK, "POST", "crash/secrets/before", apicases.KV("k", "kept"))
	if killDevPluginProcesses(t) == 0 {
		t.Fatal("no plugin process to kill, want the mount's")
	}
	servedAfterKill(t, "crash/secrets/before")
	if r := cluster.Must(t, dev, http.StatusOK, "GET", "crash/secrets/before", nil); r.Data()["data"].(map[string]any)["k"] != "kept" {
		t.Fatalf("a read after SIGKILL: %s, want k=kept", r)
	}

	// Writers race a second kill; each write carries its own id twice, so a
	// half-applied write would show as a mismatched pair.
	const writers, perWriter = 8, 30
	var acked [writers]atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWriter; i++ {
				id := fmt.Sprintf("%d-%d", w, i)
				// send, not must: a failed write is expected here, and no
				// goroutine but the test's may end the test.
				if r, _ := cluster.Send(dev.Addr(), dev.Token, "POST", fmt.Sprintf("crash/secrets/w%d", w), apicases.KV("id", id, "copy", id)); r.Status == http.StatusOK {
					acked[w].Add(1)
				}
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	killed := killDevPluginProcesses(t)
	wg.Wait()
	t.Logf("killed %d plugin process(es) during the writes", killed)
	servedAfterKill(t, "crash/secrets/before")

	for w := 0; w < writers; w++ {
		r := cluster.Must(t, dev, http.StatusOK, "GET", fmt.Sprintf("crash/secrets/w%d", w), nil)
		data := r.Data()["data"].(map[string]any)
		version := int64(r.Data()["version"].(float64))
		// Vault retries a request once when the plugin dies under it, so a write
		// that had landed can land again: at most one extra version per kill.
		if data["id"] != data["copy"] || version < acked[w].Load() || version > perWriter+int64(killed) {
			t.Fatalf("w%d holds %v at version %d, want id = copy and a version from %d (acknowledged) to %d",
				w, data, version, acked[w].Load(), perWriter+int64(killed))
		}
	}
	cluster.Must(t, dev, http.StatusOK, "GET", "crash/secrets/before", nil)
}

func TestTamperedBinary_IsRefused(t *testing.T) {
	original, err := os.ReadFile(filepath.Join(pluginDir, pluginCommand(oldVersion)))
	if err != nil {
		t.Fatal(err)
	}
	const name = pluginName + "-tampered"
	copyPath := filepath.Join(pluginDir, name)
	if err := os.WriteFile(copyPath, original, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		dev.CLI("plugin", "deregister", "-version="+oldVersion, "secret", name)
		os.Remove(copyPath)
	})
	dev.MustCLI(t, "plugin", "register", "-sha256="+pluginSHA[oldVersion], "-version="+oldVersion, "-command="+name, "secret", name)

	f, err := os.OpenFile(copyPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{0})
	f.Close()

	r, _ := cluster.Send(dev.Addr(), dev.Token, "POST", "sys/mounts/tampered", map[string]any{
		"type": name, "config": map[string]any{"plugin_version": oldVersion},
	})
	if r.Status < 400 || !strings.Contains(strings.ToLower(r.Raw), "checksum") {
		t.Fatalf("enabling a tampered binary: %s, want an error about its checksum", r)
	}
}

func TestACL_CreateWithoutUpdateAndReadOnly(t *testing.T) {
	enable(t, dev, "acl", oldVersion)
	cluster.Must(t, dev, http.StatusOK, "POST", "acl/secrets/existing", apicases.KV("k", "v"))
	policies := map[string]string{
		"acl-creator": `path "acl/secrets/*" { capabilities = ["create"] }`,
		"acl-reader":  `path "acl/secrets/*" { capabilities = ["read", "list"] }` + "\n" + `path "acl/secrets/" { capabilities = ["list"] }`,
	}
	tokens := map[string]string{}
	for name, policy := range policies {
		cluster.Must(t, dev, http.StatusNoContent, "PUT", "sys/policies/acl/"+name, map[string]any{"policy": policy})
		r := cluster.Must(t, dev, http.StatusOK, "POST", "auth/token/create", map[string]any{"policies": []string{name}, "no_default_policy": true, "ttl": "10m"})
		tokens[name] = r.Body["auth"].(map[string]any)["client_token"].(string)
	}

	creator, reader := tokens["acl-creator"], tokens["acl-reader"]
	steps := []struct {
		token, method, path string
		body                map[string]any
		want                int
	}{
		{creator, "POST", "acl/secrets/new", apicases.KV("k", "v"), http.StatusOK},
		{creator, "POST", "acl/secrets/new", apicases.KV("k", "overwrite"), http.StatusForbidden},
		{creator, "POST", "acl/secrets/existing", apicases.KV("k", "overwrite"), http.StatusForbidden},
		{creator, "GET", "acl/secrets/new", nil, http.StatusForbidden},
		{reader, "GET", "acl/secrets/new", nil, http.StatusOK},
		{reader, "LIST", "acl/secrets/", nil, http.StatusOK},
		{reader, "POST", "acl/secrets/new", apicases.KV("k", "x"), http.StatusForbidden},
		{reader, "POST", "acl/secrets/fresh", apicases.KV("k", "x"), http.StatusForbidden},
		{reader, "DELETE", "acl/secrets/new", nil, http.StatusForbidden},
	}
	for _, s := range steps {
		var body any
		if s.body != nil {
			body = s.body
		}
		if r, _ := cluster.Send(dev.Addr(), s.token, s.method, s.path, body); r.Status != s.want {
			t.Fatalf("%s %s: %s, want %d", s.method, s.path, r, s.want)
		}
	}
	for name, want := range map[string]string{"new": "v", "existing": "v"} {
		if got := cluster.Must(t, dev, http.StatusOK, "GET", "acl/secrets/"+name, nil).Data()["data"].(map[string]any)["k"]; got != want {
			t.Fatalf("%s holds %v after denied writes, want %s", name, got, want)
		}
	}
}

func TestConcurrency_ThroughVault(t *testing.T) {
	enable(t, dev, "conc", oldVersion)
	// Created first: of writers racing to create a name only one may create (see
	// TestSecretWrite_RacingCreatesHaveOneWinner); these all update.
	cluster.Must(t, dev, http.StatusOK, "POST", "conc/secrets/shared", apicases.KV("writer", "first"))
	const writers = 32
	var ok atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < writers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r, _ := cluster.Send(dev.Addr(), dev.Token, "POST", "conc/secrets/shared", apicases.KV("writer", fmt.Sprint(i))); r.Status == http.StatusOK {
				ok.Add(1)
			} else {
				t.Errorf("writer %d: got %s, want 200", i, r)
			}
		}()
	}
	wg.Wait()
	if v := cluster.Must(t, dev, http.StatusOK, "GET", "conc/secrets/shared", nil).Data()["version"]; v != float64(1+ok.Load()) || ok.Load() != writers {
		t.Fatalf("version %v after %d of %d writes succeeded, want all of them and version %d", v, ok.Load(), writers, 1+writers)
	}

	var winners, losers atomic.Int64
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := map[string]any{"data": map[string]any{"winner": fmt.Sprint(i)}, "cas": 1 + writers}
			switch r, _ := cluster.Send(dev.Addr(), dev.Token, "POST", "conc/secrets/shared", body); r.Status {
			case http.StatusOK:
				winners.Add(1)
			case http.StatusBadRequest:
				losers.Add(1)
			default:
				t.Errorf("cas writer %d: got %s, want 200 or 400", i, r)
			}
		}()
	}
	wg.Wait()
	if winners.Load() != 1 || losers.Load() != 15 {
		t.Fatalf("%d cas winners, %d losers; want 1 and 15", winners.Load(), losers.Load())
	}
}
