package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/helper/errutil"
	"github.com/hashicorp/vault/sdk/helper/testhelpers/schema"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/hashicorp/vault/sdk/physical"
	"github.com/hashicorp/vault/sdk/plugin/pb"
)

// testStorage is in-memory storage that counts calls, fails them and holds
// them on demand, so tests can prove what a request costs, what a storage
// failure leaves behind and what a lock keeps from interleaving.
type testStorage struct {
	logical.InmemStorage
	calls sync.Map // operation name -> *atomic.Int64
	// fail holds the operations to fail; "put-landed" and "delete-landed"
	// carry the change out and then fail, as a storage whose reply was lost.
	fail sync.Map // operation name -> struct{}
	// maxEntryBytes, when set, refuses larger entries with the error Vault's
	// storage backends return.
	maxEntryBytes int
	// hold, when set, is called by Put and Delete with "put" or "delete"
	// before the change lands and "put-landed" or "delete-landed" after.
	// Blocking in it widens a race window from microseconds to as long as a
	// test needs. Set it before the racing requests start.
	hold func(op string)
}

var errInjected = errors.New("injected storage failure")

func (s *testStorage) record(op string) error {
	n, _ := s.calls.LoadOrStore(op, new(atomic.Int64))
	n.(*atomic.Int64).Add(1)
	if _, ok := s.fail.Load(op); ok {
		return errInjected
	}
	return nil
}

// failOn makes every later call of the given operations ("get", "put",
// "delete", "list", "put-landed", "delete-landed") fail; failOn() with no
// arguments heals storage.
func (s *testStorage) failOn(ops ...string) {
	s.fail.Clear()
	for _, op := range ops {
		s.fail.Store(op, struct{}{})
	}
}

func (s *testStorage) failsAfterLanding(op string) error {
	if _, ok := s.fail.Load(op + "-landed"); ok {
		return errInjected
	}
	return nil
}

func (s *testStorage) count(op string) int64 {
	n, ok := s.calls.Load(op)
	if !ok {
		return 0
	}
	return n.(*atomic.Int64).Load()
}

func (s *testStorage) resetCounts() { s.calls.Clear() }

func (s *testStorage) holdAt(op string) {
	if s.hold != nil {
		s.hold(op)
	}
}

func (s *testStorage) Get(ctx context.Context, key string) (*logical.StorageEntry, error) {
	if err := s.record("get"); err != nil {
		return nil, err
	}
	return s.InmemStorage.Get(ctx, key)
}

func (s *testStorage) Put(ctx context.Context, entry *logical.StorageEntry) error {
	if err := s.record("put"); err != nil {
		return err
	}
	if s.maxEntryBytes > 0 && len(entry.Value) > s.maxEntryBytes {
		return fmt.Errorf("%s; got %d bytes, max: %d bytes", physical.ErrValueTooLarge, len(entry.Value), s.maxEntryBytes)
	}
	s.holdAt("put")
	if err := s.InmemStorage.Put(ctx, entry); err != nil {
		return err
	}
	s.holdAt("put-landed")
	return s.failsAfterLanding("put")
}

func (s *testStorage) Delete(ctx context.Context, key string) error {
	if err := s.record("delete"); err != nil {
		return err
	}
	s.holdAt("delete")
	if err := s.InmemStorage.Delete(ctx, key); err != nil {
		return err
	}
	s.holdAt("delete-landed")
	return s.failsAfterLanding("delete")
}

func (s *testStorage) List(ctx context.Context, prefix string) ([]string, error) {
	if err := s.record("list"); err != nil {
		return nil, err
	}
	return s.InmemStorage.List(ctx, prefix)
}

// raceWindow is how long a concurrency test holds a request inside its race
// window at most. Without the lock under test, the other racers arrive well
// within it; with the lock, the first racer waits this long for racers the
// lock keeps out, so it bounds what the lock costs the test.
const raceWindow = 100 * time.Millisecond

// raceGate holds each caller of wait until n callers are waiting or
// raceWindow has passed since the gate was made; from then on it lets every
// caller through. Called where a request has read and not yet written,
// it makes n unlocked racers all act on what they read before any of
// them writes: a race that a lock prevents, made to happen on every run.
type raceGate struct {
	n       int64
	waiting atomic.Int64
	open    chan struct{}
	release func()
}

func newRaceGate(n int) *raceGate {
	g := &raceGate{n: int64(n), open: make(chan struct{})}
	g.release = sync.OnceFunc(func() { close(g.open) })
	time.AfterFunc(raceWindow, g.release)
	return g
}

func (g *raceGate) wait() {
	if g.waiting.Add(1) == g.n {
		g.release()
	}
	<-g.open
}

// holdPuts holds every Put to e's storage, before it lands, at a new
// raceGate for n racers.
func (e *testEnv) holdPuts(n int) {
	gate := newRaceGate(n)
	e.storage.hold = func(op string) {
		if op == "put" {
			gate.wait()
		}
	}
}

// testEnv is one mount of the backend over in-memory storage, with its log.
type testEnv struct {
	t       testing.TB
	backend *backend
	storage *testStorage
	logs    *lockedBuffer
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func newTestEnv(t testing.TB) *testEnv {
	t.Helper()
	logs := &lockedBuffer{}
	system := logical.TestSystemView()
	system.PluginEnvironment = &logical.PluginEnvironment{VaultVersion: "1.21.0"} // read by the OpenAPI generator
	conf := &logical.BackendConfig{
		Logger:      hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, Output: logs}),
		System:      system,
		StorageView: &logical.InmemStorage{},
	}
	b, err := Factory(context.Background(), conf)
	if err != nil {
		t.Fatalf("Factory: %v", err)
	}
	return &testEnv{t: t, backend: b.(*backend), storage: &testStorage{}, logs: logs}
}

// result is what a Vault client would see for one request.
type result struct {
	status int
	resp   *logical.Response
	err    error
}

func (r result) errorText() string {
	if r.err != nil {
		return r.err.Error()
	}
	if r.resp != nil && r.resp.IsError() {
		return r.resp.Error().Error()
	}
	return ""
}

// request sends one request the way Vault sends it to an external plugin: it
// makes the same gRPC translation both ways (JSON numbers arrive as float64),
// a write goes through the existence check first, and the outcome maps to an
// HTTP status with Vault's own logical.RespondErrorCommon.
func (e *testEnv) request(op logical.Operation, path string, data map[string]any) result {
	e.t.Helper()
	protoReq, err := pb.LogicalRequestToProtoRequest(&logical.Request{Operation: op, Path: path, Data: data})
	if err != nil {
		e.t.Fatalf("translating request: %v", err)
	}
	req, err := pb.ProtoRequestToLogicalRequest(protoReq)
	if err != nil {
		e.t.Fatalf("translating request: %v", err)
	}
	req.Storage = e.storage

	if op == logical.CreateOperation || op == logical.UpdateOperation {
		found, exists, err := e.backend.HandleExistenceCheck(context.Background(), req)
		if err != nil {
			// Vault logs a failed existence check, and answers 400 for a
			// UserError (the framework's conversion errors), 500 for the rest.
			fmt.Fprintf(e.logs, "[ERROR] core: failed to run existence check: error=%q\n", err)
			status := http.StatusInternalServerError
			if errors.As(err, &errutil.UserError{}) {
				status = http.StatusBadRequest
			}
			return result{status: status, err: err}
		}
		if found {
			req.Operation = logical.CreateOperation
			if exists {
				req.Operation = logical.UpdateOperation
			}
		}
	}
	return e.handle(req)
}

// handle is the second half of request: the handler, the response's trip back
// through gRPC, and the status Vault would answer with. Every 2xx response is
// checked against the schema its operation declares.
func (e *testEnv) handle(req *logical.Request) result {
	e.t.Helper()
	resp, err := e.backend.HandleRequest(context.Background(), req)
	if err != nil {
		err = pb.ProtoErrToErr(pb.ErrToProtoErr(err))
	}
	if resp != nil {
		protoResp, perr := pb.LogicalResponseToProtoResponse(resp)
		if perr == nil {
			resp, perr = pb.ProtoResponseToLogicalResponse(protoResp)
		}
		if perr != nil {
			e.t.Fatalf("translating response: %v", perr)
		}
	}
	status, _ := logical.RespondErrorCommon(req, resp, err)
	if status == 0 {
		status = http.StatusOK
		if resp == nil || (len(resp.Data) == 0 && len(resp.Warnings) == 0) {
			status = http.StatusNoContent
		}
		if t, ok := e.t.(*testing.T); ok {
			if p := e.backend.Route(req.Path); p != nil {
				schema.ValidateResponse(t, schema.GetResponseSchema(t, p, req.Operation), resp, true)
			}
		}
	}
	return result{status: status, resp: resp, err: err}
}

func (e *testEnv) read(path string) result { return e.request(logical.ReadOperation, path, nil) }
func (e *testEnv) list(path string) result { return e.request(logical.ListOperation, path, nil) }
func (e *testEnv) delete(path string) result {
	return e.request(logical.DeleteOperation, path, nil)
}
func (e *testEnv) write(path string, data map[string]any) result {
	return e.request(logical.UpdateOperation, path, data)
}

// mustStatus fails the test unless the request got the wanted status and, for
// errors, a message containing every given fragment.
func (e *testEnv) mustStatus(r result, want int, fragments ...string) {
	e.t.Helper()
	if r.status != want {
		e.t.Fatalf("status %d, want %d (error %q, response %#v)", r.status, want, r.errorText(), r.resp)
	}
	for _, f := range fragments {
		if !strings.Contains(r.errorText(), f) {
			e.t.Fatalf("error %q, want one that mentions %q", r.errorText(), f)
		}
	}
}

// storedSecret reads a secret straight from storage, bypassing the backend.
func (e *testEnv) storedSecret(name string) *secretEntry {
	e.t.Helper()
	entry, err := getSecret(context.Background(), &e.storage.InmemStorage, secretStorageKey(name), true)
	if err != nil {
		e.t.Fatalf("reading storage: %v", err)
	}
	return entry
}

func TestFactory_RunningVersionAndSealWrap(t *testing.T) {
	e := newTestEnv(t)
	if got := e.backend.PluginVersion().Version; got != version {
		t.Fatalf("PluginVersion %q, want %q", got, version)
	}
	if e.backend.Type() != logical.TypeLogical {
		t.Fatalf("backend type %v, want logical", e.backend.Type())
	}
	sealWrapped := strings.Join(e.backend.SpecialPaths().SealWrapStorage, ",")
	if sealWrapped != "config,secrets/" {
		t.Fatalf("SealWrapStorage = %q, want the storage prefixes \"config,secrets/\"", sealWrapped)
	}
}

func TestInvalidate_ConfigIsReadAgainFromStorage(t *testing.T) {
	e := newTestEnv(t)
	e.mustStatus(e.read("config"), http.StatusOK) // caches the defaults

	// Another node writes the config; this node only sees storage change.
	if err := putJSON(context.Background(), e.storage, configStorageKey, &configEntry{MaxSecretBytes: 10, CASRequired: true}); err != nil {
		t.Fatal(err)
	}
	if got := e.read("config").resp.Data["max_secret_bytes"]; got != float64(defaultMaxSecretBytes) {
		t.Fatalf("before invalidation: max_secret_bytes %v, want the cached default", got)
	}

	e.backend.InvalidateKey(context.Background(), "secrets/unrelated")
	e.storage.resetCounts()
	e.read("config")
	if n := e.storage.count("get"); n != 0 {
		t.Fatalf("an unrelated key dropped the cache: %d storage reads, want 0", n)
	}

	e.backend.InvalidateKey(context.Background(), configStorageKey)
	r := e.read("config")
	if r.resp.Data["max_secret_bytes"] != float64(10) || r.resp.Data["cas_required"] != true {
		t.Fatalf("after invalidation: %v, want the stored config", r.resp.Data)
	}
	e.mustStatus(e.write("secrets/app", map[string]any{"data": map[string]any{"k": "v"}}), http.StatusBadRequest, "cas")
}

func TestStorageFailure_Returns500AndKeepsOldValue(t *testing.T) {
	e := newTestEnv(t)
	original := map[string]any{"data": map[string]any{"k": "original"}}
	e.mustStatus(e.write("secrets/app", original), http.StatusOK)
	e.mustStatus(e.write("config", map[string]any{"max_secret_bytes": 1000}), http.StatusNoContent)
	update := map[string]any{"data": map[string]any{"k": "changed"}}

	tests := []struct {
		failing string
		do      func() result
	}{
		{"get", func() result { return e.read("secrets/app") }},
		{"get", func() result { return e.write("secrets/app", update) }},
		{"put", func() result { return e.write("secrets/app", update) }},
		// The handler's own read, after an existence check that succeeded.
		{"get", func() result {
			return e.handle(&logical.Request{Operation: logical.UpdateOperation, Path: "secrets/app", Data: update, Storage: e.storage})
		}},
		{"put", func() result { return e.write("config", map[string]any{"max_secret_bytes": 5}) }},
		{"delete", func() result { return e.delete("secrets/app") }},
		{"delete", func() result { return e.delete("config") }},
		{"list", func() result { return e.list("secrets/") }},
	}
	for i, tt := range tests {
		// From storage, not the metadata cache, so every call is made.
		e.backend.metadata.Purge()
		e.storage.failOn(tt.failing)
		r := tt.do()
		e.storage.failOn()
		if r.status != http.StatusInternalServerError || !strings.Contains(r.errorText(), errInjected.Error()) {
			t.Fatalf("case %d (%s fails): status %d err %v, want 500 with the storage error", i, tt.failing, r.status, r.err)
		}
		stored := e.storedSecret("app")
		if stored == nil || stored.Version != 1 || stored.Data["k"] != "original" {
			t.Fatalf("case %d (%s fails): stored secret is now %+v, want version 1 with k=original", i, tt.failing, stored)
		}
		var cfg configEntry
		if _, err := getJSON(context.Background(), &e.storage.InmemStorage, configStorageKey, &cfg); err != nil || cfg.MaxSecretBytes != 1000 {
			t.Fatalf("case %d (%s fails): stored config is now %+v (%v), want max_secret_bytes 1000", i, tt.failing, cfg, err)
		}
		if got := e.read("config").resp.Data["max_secret_bytes"]; got != float64(1000) {
			t.Fatalf("case %d (%s fails): cached max_secret_bytes is now %v, want 1000", i, tt.failing, got)
		}
	}
}

func TestStorageFailure_ConfigLoadIsRetried(t *testing.T) {
	e := newTestEnv(t)
	e.storage.failOn("get")
	e.mustStatus(e.read("config"), http.StatusInternalServerError)
	e.storage.failOn()
	e.mustStatus(e.read("config"), http.StatusOK)
}

func TestLogs_NeverHoldSecretValues(t *testing.T) {
	e := newTestEnv(t)
	const value = "hunter2-Sup3rS3cret"
	e.mustStatus(e.write("config", map[string]any{"cas_required": true}), http.StatusNoContent)
	e.mustStatus(e.write("secrets/team/app", map[string]any{"data": map[string]any{"password": value}, "cas": 0}), http.StatusOK)
	e.mustStatus(e.write("secrets/team/app", map[string]any{"data": []any{"password=" + value}, "cas": 1}), http.StatusOK)
	for _, bad := range []map[string]any{
		{"data": "password=" + value, "cas": 1},
		{"data": []any{value}, "cas": 2},
		{"data": map[string]any{"password": map[string]any{"nested": value}}, "cas": 2},
		{"data": []any{map[string]any{"password": value}}, "cas": 2},
	} {
		r := e.write("secrets/team/app", bad)
		e.mustStatus(r, http.StatusBadRequest)
		if strings.Contains(r.errorText(), value) {
			t.Fatalf("error %q quotes the secret, want one that names the field only", r.errorText())
		}
	}
	e.mustStatus(e.read("secrets/team/app"), http.StatusOK)
	e.mustStatus(e.list("secrets/team/"), http.StatusOK)
	e.mustStatus(e.delete("secrets/team/app"), http.StatusNoContent)
	e.mustStatus(e.delete("config"), http.StatusNoContent)

	logs := e.logs.String()
	if !strings.Contains(logs, "secret written") || !strings.Contains(logs, "config written") {
		t.Fatalf("log without \"secret written\" and \"config written\", want both, or this test proves nothing:\n%s", logs)
	}
	if strings.Contains(logs, value) {
		t.Fatalf("a secret value reached the log, want none there:\n%s", logs)
	}
}

func TestHelp_EveryPathAndFieldIsDocumented(t *testing.T) {
	e := newTestEnv(t)
	for _, p := range e.backend.Paths {
		if p.HelpSynopsis == "" || p.HelpDescription == "" {
			t.Errorf("path %s has no help, want a synopsis and a description", p.Pattern)
		}
		for name, field := range p.Fields {
			if field.Description == "" {
				t.Errorf("field %q of path %s has no description, want one", name, p.Pattern)
			}
		}
		for op, handler := range p.Operations {
			props := handler.Properties()
			if props.Summary == "" || len(props.Responses) == 0 {
				t.Errorf("%s %s declares summary %q and %d responses, want a summary and at least one response", op, p.Pattern, props.Summary, len(props.Responses))
			}
		}
	}
	for _, path := range []string{"config", "secrets/app", "secrets/"} {
		resp, err := e.backend.HandleRequest(context.Background(), &logical.Request{Operation: logical.HelpOperation, Path: path, Storage: e.storage})
		if err != nil || !strings.Contains(fmt.Sprint(resp.Data["help"]), "##") {
			t.Errorf("help on %s: %v, %v; want help text with ## headings", path, err, resp)
		}
	}
}

func TestOpenAPI_DocumentsEveryPathAndResponse(t *testing.T) {
	e := newTestEnv(t)
	resp, err := e.backend.HandleRequest(context.Background(), &logical.Request{Operation: logical.HelpOperation, Storage: e.storage})
	if err != nil {
		t.Fatalf("root help: %v, want the OpenAPI document", err)
	}
	if strings.Contains(e.logs.String(), "error generating OpenAPI") {
		t.Fatalf("OpenAPI generation failed, want no error logged:\n%s", e.logs.String())
	}
	doc, ok := resp.Data["openapi"].(*framework.OASDocument)
	if !ok {
		t.Fatalf("root help answered %#v, want an OpenAPI document under openapi", resp.Data)
	}
	want := map[string][]string{
		"/config":            {"get", "post", "delete"},
		"/secrets/{name}":    {"get", "post", "delete"},
		"/secrets/":          {"get"},
		"/secrets/{prefix}/": {"get"},
	}
	for path, methods := range want {
		item, ok := doc.Paths[path]
		if !ok {
			t.Errorf("OpenAPI paths %v, want %s among them", keys(doc.Paths), path)
			continue
		}
		ops := map[string]*framework.OASOperation{"get": item.Get, "post": item.Post, "delete": item.Delete}
		for _, m := range methods {
			if ops[m] == nil || len(ops[m].Responses) == 0 {
				t.Errorf("OpenAPI %s %s: missing or without responses, want it with its responses", m, path)
			}
		}
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
