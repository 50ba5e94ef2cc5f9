package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/helper/testhelpers/schema"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/vault-reference/vault-plugin-secrets-reference/dynamic/redistest"
)

// sharedRedis serves the tests that leave its admin password alone; a test
// that rotates it starts a Redis of its own.
var sharedRedis *redistest.Server

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "redis-unit-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if sharedRedis, err = redistest.Start(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer sharedRedis.Stop()
	return m.Run()
}

// startRedis is a Redis of the test's own, stopped when it ends.
func startRedis(t *testing.T) *redistest.Server {
	t.Helper()
	s, err := redistest.Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// faultyStorage is in-memory storage that fails the puts or deletes of keys
// with a given prefix, on demand: a crash of the plugin between two steps,
// as storage sees it.
type faultyStorage struct {
	logical.InmemStorage
	failPut, failDelete atomic.Pointer[string]
}

func (s *faultyStorage) Put(ctx context.Context, e *logical.StorageEntry) error {
	if p := s.failPut.Load(); p != nil && strings.HasPrefix(e.Key, *p) {
		return fmt.Errorf("injected failure of put %s", e.Key)
	}
	return s.InmemStorage.Put(ctx, e)
}

func (s *faultyStorage) Delete(ctx context.Context, key string) error {
	if p := s.failDelete.Load(); p != nil && strings.HasPrefix(key, *p) {
		return fmt.Errorf("injected failure of delete %s", key)
	}
	return s.InmemStorage.Delete(ctx, key)
}

type testEnv struct {
	t       *testing.T
	b       *backend
	storage *faultyStorage
	redis   *redistest.Server
}

// newEnv is a mount of the plugin over in-memory storage, configured for r
// with save_acl; WAL entries count as abandoned after walMinAge.
func newEnv(t *testing.T, r *redistest.Server, walMinAge time.Duration) *testEnv {
	t.Helper()
	b := newBackend(walMinAge)
	conf := logical.TestBackendConfig()
	conf.BackendUUID = redistest.RandomHex() // as Vault gives each mount
	conf.System = &logical.StaticSystemView{DefaultLeaseTTLVal: time.Hour, MaxLeaseTTLVal: 24 * time.Hour,
		PluginEnvironment: &logical.PluginEnvironment{VaultVersion: "1.21.1"}}
	if err := b.Setup(context.Background(), conf); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Cleanup(context.Background()) })
	e := &testEnv{t: t, b: b, storage: &faultyStorage{}, redis: r}
	e.must(logical.UpdateOperation, "config", map[string]any{
		"address": r.Addr, "username": redistest.PluginUser, "password": r.PluginPassword, "save_acl": true,
	})
	return e
}

// do sends one request, and checks a successful answer against the path's
// OpenAPI response schema.
func (e *testEnv) do(op logical.Operation, path string, data map[string]any) (*logical.Response, error) {
	e.t.Helper()
	req := &logical.Request{Operation: op, Path: path, Data: data, Storage: e.storage}
	if op == logical.UpdateOperation {
		// Vault turns a write of an entry that does not exist into a create.
		if checked, exists, err := e.b.HandleExistenceCheck(context.Background(), req); err == nil && checked && !exists {
			req.Operation = logical.CreateOperation
		}
	}
	resp, err := e.b.HandleRequest(context.Background(), req)
	if err == nil && resp != nil && !resp.IsError() && op != logical.ListOperation {
		if p := e.b.Route(path); p != nil {
			schema.ValidateResponse(e.t, schema.GetResponseSchema(e.t, p, req.Operation), resp, true)
		}
	}
	return resp, err
}

// must sends one request that must succeed.
func (e *testEnv) must(op logical.Operation, path string, data map[string]any) *logical.Response {
	e.t.Helper()
	resp, err := e.do(op, path, data)
	if err != nil || resp.IsError() {
		e.t.Fatalf("%s %s: got %v, %v; want success", op, path, resp, err)
	}
	return resp
}

// refused sends one request that must be the caller's mistake: a 400 whose
// message holds want.
func (e *testEnv) refused(op logical.Operation, path string, data map[string]any, want string) {
	e.t.Helper()
	resp, err := e.do(op, path, data)
	if err != nil || !resp.IsError() {
		e.t.Fatalf("%s %s %v: got %v, %v; want a 400 saying %q", op, path, data, resp, err, want)
	}
	if got := resp.Error().Error(); !strings.Contains(got, want) {
		e.t.Fatalf("%s %s %v: got the message %q, want one saying %q", op, path, data, got, want)
	}
}

// issue reads creds/<role> and returns the user, its password and the lease
// as Vault stores it: its internal data decoded from JSON.
func (e *testEnv) issue(role string) (string, string, *logical.Secret) {
	e.t.Helper()
	resp := e.must(logical.ReadOperation, "creds/"+role, nil)
	secret := resp.Secret
	raw, err := json.Marshal(secret.InternalData)
	if err != nil {
		e.t.Fatal(err)
	}
	secret.InternalData = nil
	if err := json.Unmarshal(raw, &secret.InternalData); err != nil {
		e.t.Fatal(err)
	}
	secret.IssueTime = time.Now()
	return resp.Data["username"].(string), resp.Data["password"].(string), secret
}

// lease sends a renew or revoke of secret, as Vault's expiration manager does.
func (e *testEnv) lease(op logical.Operation, secret *logical.Secret) (*logical.Response, error) {
	e.t.Helper()
	return e.b.HandleRequest(context.Background(), &logical.Request{Operation: op, Secret: secret, Storage: e.storage})
}

// rollback runs the WAL rollback as Vault's rollback manager does;
// immediate takes every entry for abandoned, whatever its age.
func (e *testEnv) rollback(immediate bool) error {
	e.t.Helper()
	data := map[string]any{}
	if immediate {
		data["immediate"] = true
	}
	resp, err := e.b.HandleRequest(context.Background(), &logical.Request{Operation: logical.RollbackOperation, Storage: e.storage, Data: data})
	if err == nil && resp.IsError() {
		err = resp.Error()
	}
	return err
}

// walEntries are the WAL entries in storage.
func (e *testEnv) walEntries() []string {
	e.t.Helper()
	ids, err := framework.ListWAL(context.Background(), e.storage)
	if err != nil {
		e.t.Fatal(err)
	}
	return ids
}

// pluginUsers are Redis's users that the plugin made.
func pluginUsers(t *testing.T, r *redistest.Server) []string {
	t.Helper()
	users, err := r.Users(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var ours []string
	for _, u := range users {
		if strings.HasPrefix(u, usernamePrefix) {
			ours = append(ours, u)
		}
	}
	return ours
}

// mustLogIn fails the test unless user logs in with password.
func mustLogIn(t *testing.T, r *redistest.Server, user, password string) {
	t.Helper()
	if err := r.CanLogIn(context.Background(), user, password); err != nil {
		t.Fatalf("AUTH %s: got %v, want it to log in", user, err)
	}
}

// mustNotLogIn fails the test if user logs in with password.
func mustNotLogIn(t *testing.T, r *redistest.Server, user, password string) {
	t.Helper()
	if err := r.CanLogIn(context.Background(), user, password); err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
		t.Fatalf("AUTH %s: got %v, want WRONGPASS", user, err)
	}
}
