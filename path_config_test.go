package main

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
)

func (e *testEnv) storedConfig() *configEntry {
	e.t.Helper()
	var cfg configEntry
	found, err := getJSON(context.Background(), &e.storage.InmemStorage, configStorageKey, &cfg)
	if err != nil {
		e.t.Fatalf("reading storage: %v", err)
	}
	if !found {
		return nil
	}
	return &cfg
}

// TestConfigStorage_HoldsOnlyWhatWasWritten checks what only the in-process
// suite sees of the config: storage holds an entry only once a write stored
// one, a partial update stores every field, a refused write changes nothing
// and a delete removes the entry. The API's answers are the table's
// (TestAPICases_InProcess).
func TestConfigStorage_HoldsOnlyWhatWasWritten(t *testing.T) {
	e := newTestEnv(t)
	e.mustStatus(e.read("config"), http.StatusOK)
	if got := e.storedConfig(); got != nil {
		t.Fatalf("stored %+v after a read, want nothing", got)
	}
	e.mustStatus(e.write("config", map[string]any{"cas_required": true}), http.StatusNoContent)
	e.mustStatus(e.write("config", map[string]any{"max_secret_bytes": 1024}), http.StatusNoContent)
	want := configEntry{MaxSecretBytes: 1024, CASRequired: true}
	if got := e.storedConfig(); got == nil || *got != want {
		t.Fatalf("stored %+v, want %+v", got, want)
	}
	e.mustStatus(e.write("config", map[string]any{"max_secret_bytes": 1.5}), http.StatusBadRequest)
	e.mustStatus(e.write("config", map[string]any{"cas_required": "yes"}), http.StatusBadRequest)
	if got := e.storedConfig(); got == nil || *got != want {
		t.Fatalf("stored %+v after refused writes, want %+v", got, want)
	}
	e.mustStatus(e.delete("config"), http.StatusNoContent)
	if got := e.storedConfig(); got != nil {
		t.Fatalf("stored %+v after a delete, want nothing", got)
	}
}

// The storage holds each Put until both writers are waiting, so both have
// read the settings before either stores: without the config lock, the second
// Put would undo the first's change.
func TestConfigWrite_ConcurrentPartialUpdatesBothApply(t *testing.T) {
	e := newTestEnv(t)
	updates := []map[string]any{{"max_secret_bytes": 77}, {"cas_required": true}}
	e.holdPuts(len(updates))
	var wg sync.WaitGroup
	for _, data := range updates {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := &logical.Request{Operation: logical.UpdateOperation, Path: "config", Data: data, Storage: e.storage}
			if resp, err := e.backend.HandleRequest(context.Background(), req); err != nil || resp.IsError() {
				t.Errorf("write %v: %v %v, want success", data, resp, err)
			}
		}()
	}
	wg.Wait()
	if got := e.storedConfig(); *got != (configEntry{MaxSecretBytes: 77, CASRequired: true}) {
		t.Fatalf("stored %+v, want max_secret_bytes 77 and cas_required true: an update was lost", got)
	}
}
