package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/vault-reference/vault-plugin-secrets-reference/apicases"
)

// goldenEntry is one storage entry as v0.1.0 wrote it, with v0.1.0's answer
// to a read of it through the API (testdata/v0.1.0/README.md).
type goldenEntry struct {
	Key   string         `json:"key"`
	Value string         `json:"value"`
	Read  map[string]any `json:"read"`
}

func loadGolden(t *testing.T, name string) goldenEntry {
	t.Helper()
	text, err := os.ReadFile(filepath.Join("testdata", "v0.1.0", name))
	if err != nil {
		t.Fatal(err)
	}
	var g goldenEntry
	if err := json.Unmarshal(text, &g); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return g
}

// putGolden stores g as v0.1.0 left it, beside the backend.
func (e *testEnv) putGolden(g goldenEntry) {
	e.t.Helper()
	if err := e.storage.InmemStorage.Put(context.Background(), &logical.StorageEntry{Key: g.Key, Value: []byte(g.Value)}); err != nil {
		e.t.Fatal(err)
	}
}

// storedKeys lists every key in e's storage.
func (e *testEnv) storedKeys() []string {
	e.t.Helper()
	keys, err := logical.CollectKeys(context.Background(), &e.storage.InmemStorage)
	if err != nil {
		e.t.Fatal(err)
	}
	slices.Sort(keys)
	return keys
}

// asClientSees is a response's data as a client decodes it from JSON.
func asClientSees(t *testing.T, data map[string]any) map[string]any {
	t.Helper()
	encoded, err := json.Marshal(data)
	if err != nil {
		t.Fatal(err)
	}
	var decoded map[string]any
	if err := json.Unmarshal(encoded, &decoded); err != nil {
		t.Fatal(err)
	}
	return decoded
}

// Requests here name paths by their route constants, so that
// TestRenamedRoutes_KeepStorageKeys can run these tests with the routes
// renamed; storage keys come from the golden files alone.

// TestStoredByV010_ReadAndWrittenOnTop: entries that v0.1.0 left in storage
// are answered as v0.1.0 answered them, with no migration step, and a write
// continues the secret from its stored version.
func TestStoredByV010_ReadAndWrittenOnTop(t *testing.T) {
	config, secret := loadGolden(t, "config.json"), loadGolden(t, "secret.json")
	e := newTestEnv(t)
	e.putGolden(config)
	e.putGolden(secret)
	secretPath := secretsRoute + "team/app"

	for path, want := range map[string]map[string]any{configRoute: config.Read, secretPath: secret.Read} {
		r := e.read(path)
		e.mustStatus(r, http.StatusOK)
		if got := asClientSees(t, r.resp.Data); !reflect.DeepEqual(got, want) {
			t.Fatalf("read %s answered %v, want what v0.1.0 answered: %v", path, got, want)
		}
	}

	// The golden config sets cas_required, so this write also proves it is read.
	e.mustStatus(e.write(secretPath, apicases.KV("password", "next")), http.StatusBadRequest, "cas: required")
	version := secret.Read["version"].(float64)
	w := e.write(secretPath, apicases.WithCAS(apicases.KV("password", "next"), version))
	e.mustStatus(w, http.StatusOK)
	got := asClientSees(t, w.resp.Data)
	if got["version"] != version+1 || got["created_time"] != secret.Read["created_time"] {
		t.Fatalf("write on top answered %v, want version %v and created_time %v", got, version+1, secret.Read["created_time"])
	}
	if keys, want := e.storedKeys(), []string{config.Key, secret.Key}; !slices.Equal(keys, want) {
		t.Fatalf("storage holds keys %q after the write, want %q", keys, want)
	}
	r := e.read(secretPath)
	e.mustStatus(r, http.StatusOK)
	if data := asClientSees(t, r.resp.Data)["data"]; !reflect.DeepEqual(data, map[string]any{"password": "next"}) {
		t.Fatalf("read after the write answered data %v, want the written {password: next}", data)
	}
}

// TestNewWrites_UseV010StorageKeys: a config and a secret written now land
// under the keys v0.1.0 used, and the config in the same bytes.
func TestNewWrites_UseV010StorageKeys(t *testing.T) {
	config, secret := loadGolden(t, "config.json"), loadGolden(t, "secret.json")
	e := newTestEnv(t)
	e.mustStatus(e.write(configRoute, config.Read), http.StatusNoContent)
	stored, err := e.storage.InmemStorage.Get(context.Background(), config.Key)
	if err != nil || stored == nil || string(stored.Value) != config.Value {
		t.Fatalf("config stored under %q as %+v (%v), want v0.1.0's bytes %q", config.Key, stored, err, config.Value)
	}
	e.mustStatus(e.write(secretsRoute+"team/app", apicases.WithCAS(apicases.KV("password", "s3cr3t"), 0)), http.StatusOK)
	if keys, want := e.storedKeys(), []string{config.Key, secret.Key}; !slices.Equal(keys, want) {
		t.Fatalf("storage holds keys %q, want v0.1.0's %q", keys, want)
	}
}

// TestRenamedRoutes_KeepStorageKeys renames both routes, in an overlay of
// the sources, and runs the tests of v0.1.0's entries against that build: a
// storage key derived from a route fails them, although the routes and the
// keys are spelled alike today.
func TestRenamedRoutes_KeepStorageKeys(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the package again")
	}
	renames := []struct{ file, old, new string }{
		{"path_config.go", `configRoute = "config"`, `configRoute = "settings"`},
		{"path_secrets.go", `secretsRoute = "secrets/"`, `secretsRoute = "entries/"`},
	}
	overlay := map[string]string{}
	for _, r := range renames {
		src, err := os.ReadFile(r.file)
		if err != nil {
			t.Fatal(err)
		}
		if n := bytes.Count(src, []byte(r.old)); n != 1 {
			t.Fatalf("%s holds %q %d times, want once: update this test's renames", r.file, r.old, n)
		}
		renamed := filepath.Join(t.TempDir(), r.file)
		if err := os.WriteFile(renamed, bytes.Replace(src, []byte(r.old), []byte(r.new), 1), 0o644); err != nil {
			t.Fatal(err)
		}
		abs, err := filepath.Abs(r.file)
		if err != nil {
			t.Fatal(err)
		}
		overlay[abs] = renamed
	}
	overlayFile := filepath.Join(t.TempDir(), "overlay.json")
	text, err := json.Marshal(map[string]any{"Replace": overlay})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(overlayFile, text, 0o644); err != nil {
		t.Fatal(err)
	}

	args := []string{"test", "-count=1", "-overlay", overlayFile,
		"-run", "^(TestStoredByV010_ReadAndWrittenOnTop|TestNewWrites_UseV010StorageKeys)$", "-v"}
	if builtWithRace() { // the same flags reuse this build's cached packages
		args = append(args, "-race")
	}
	out, err := exec.Command("go", append(args, ".")...).CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("--- PASS: TestStoredByV010_ReadAndWrittenOnTop")) ||
		!bytes.Contains(out, []byte("--- PASS: TestNewWrites_UseV010StorageKeys")) {
		t.Fatalf("with the routes renamed, want both tests of v0.1.0's entries to pass; got %v:\n%s", err, out)
	}
}

func builtWithRace() bool {
	info, ok := debug.ReadBuildInfo()
	return ok && slices.ContainsFunc(info.Settings, func(s debug.BuildSetting) bool { return s.Key == "-race" && s.Value == "true" })
}

// TestSecretWrite_MarksItsStorageFormat: entries written now say which
// layout they are in, so that a later release can tell them from v0.1.0's;
// so does a v0.1.0 entry once written on top of.
func TestSecretWrite_MarksItsStorageFormat(t *testing.T) {
	secret := loadGolden(t, "secret.json")
	e := newTestEnv(t)
	e.putGolden(secret)
	e.mustStatus(e.write(secretsRoute+"team/app", apicases.KV("k", "on top")), http.StatusOK)
	e.mustStatus(e.write(secretsRoute+"app", apicases.KV("k", "new")), http.StatusOK)
	for _, key := range []string{secret.Key, secretStorageKey("app")} {
		stored, err := e.storage.InmemStorage.Get(context.Background(), key)
		if err != nil || stored == nil {
			t.Fatalf("storage holds %v (%v) under %s, want the written secret", stored, err, key)
		}
		first, _, _ := bytes.Cut(stored.Value, []byte("\n"))
		var marker struct{ Format *int }
		if err := json.Unmarshal(first, &marker); err != nil || marker.Format == nil || *marker.Format != secretFormat {
			t.Errorf("%s: first document %s (%v), want a format marker of %d", key, first, err, secretFormat)
		}
	}
}

// TestSecretFormat_NewerEntryIsRefusedNeverMisread: an entry a newer release
// wrote, whatever else it changed, makes read, write and delete fail with a
// message that says so, and stays as it was; list still lists it.
func TestSecretFormat_NewerEntryIsRefusedNeverMisread(t *testing.T) {
	for name, value := range map[string]string{
		"same layout":             `{"format":3,"version":7,"created_time":"2030-01-01T00:00:00Z","updated_time":"2030-01-01T00:00:00Z"}` + "\n" + `{"k":"v"}`,
		"a field of another type": `{"format":3,"version":"seven"}` + "\n" + `{"k":"v"}`,
		"one document":            `{"format":3,"parts":["secrets/app/1"]}`,
	} {
		t.Run(name, func(t *testing.T) {
			e := newTestEnv(t)
			entry := &logical.StorageEntry{Key: secretStorageKey("app"), Value: []byte(value)}
			if err := e.storage.InmemStorage.Put(context.Background(), entry); err != nil {
				t.Fatal(err)
			}
			for op, r := range map[string]func() result{
				"read":   func() result { return e.read(secretsRoute + "app") },
				"write":  func() result { return e.write(secretsRoute+"app", apicases.KV("k", "overwritten")) },
				"delete": func() result { return e.delete(secretsRoute + "app") },
			} {
				got := r()
				if got.status != http.StatusInternalServerError || !strings.Contains(got.errorText(), "written by a newer release") {
					t.Errorf("%s: status %d, error %q; want 500 saying the entry was written by a newer release", op, got.status, got.errorText())
				}
				if stored, _ := e.storage.InmemStorage.Get(context.Background(), entry.Key); stored == nil || string(stored.Value) != value {
					var held any = stored
					if stored != nil {
						held = string(stored.Value)
					}
					t.Fatalf("after %s, storage holds %v, want the entry untouched: %s", op, held, value)
				}
			}
			r := e.list(secretsRoute)
			e.mustStatus(r, http.StatusOK)
			if keys := listedKeys(t, r); !slices.Equal(keys, []string{"app"}) {
				t.Errorf("list answered %q, want [app]", keys)
			}
		})
	}
}
