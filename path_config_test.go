package main

import (
	"context"
	"fmt"
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

func (e *testEnv) mustConfig(maxBytes int, casRequired bool) {
	e.t.Helper()
	r := e.read("config")
	e.mustStatus(r, http.StatusOK)
	if r.resp.Data["max_secret_bytes"] != float64(maxBytes) || r.resp.Data["cas_required"] != casRequired {
		e.t.Fatalf("config %v, want max_secret_bytes=%d cas_required=%v", r.resp.Data, maxBytes, casRequired)
	}
}

func TestConfigRead_DefaultsWhenNeverWritten(t *testing.T) {
	e := newTestEnv(t)
	e.mustConfig(524288, false)
	if e.storedConfig() != nil {
		t.Fatal("reading the config stored it")
	}
}

func TestConfigWrite_PartialUpdateKeepsOtherFields(t *testing.T) {
	e := newTestEnv(t)
	e.mustStatus(e.write("config", map[string]interface{}{"cas_required": true}), http.StatusNoContent)
	e.mustConfig(524288, true)
	e.mustStatus(e.write("config", map[string]interface{}{"max_secret_bytes": 1024}), http.StatusNoContent)
	e.mustConfig(1024, true)
	if got := e.storedConfig(); *got != (configEntry{MaxSecretBytes: 1024, CASRequired: true}) {
		t.Fatalf("stored %+v", got)
	}
	// The CLI sends every value as a string.
	e.mustStatus(e.write("config", map[string]interface{}{"max_secret_bytes": "1048576", "cas_required": "false"}), http.StatusNoContent)
	e.mustConfig(1048576, false)
	e.mustStatus(e.write("config", map[string]interface{}{"max_secret_bytes": 1}), http.StatusNoContent)
	e.mustConfig(1, false)
}

// Whatever form a wrong value takes (a CLI string, a JSON number, a JSON
// string), the 400 is the plugin's own rule, never the framework's conversion
// error.
func TestConfigWrite_RejectsWrongTypesAndRanges(t *testing.T) {
	const maxBytesRule = "max_secret_bytes: must be a whole number from 1 to 1048576"
	const casRequiredRule = "cas_required: must be true or false"
	tests := []struct {
		field string
		value interface{}
		rule  string
	}{
		{"max_secret_bytes", 1.5, maxBytesRule},
		{"max_secret_bytes", true, maxBytesRule},
		{"max_secret_bytes", "x", maxBytesRule},
		{"max_secret_bytes", "1.5", maxBytesRule},
		{"max_secret_bytes", "1e3", maxBytesRule},
		{"max_secret_bytes", "true", maxBytesRule},
		{"max_secret_bytes", "", maxBytesRule},
		{"max_secret_bytes", 0, maxBytesRule},
		{"max_secret_bytes", "0", maxBytesRule},
		{"max_secret_bytes", -1, maxBytesRule},
		{"max_secret_bytes", "-1", maxBytesRule},
		{"max_secret_bytes", 1048577, maxBytesRule},
		{"max_secret_bytes", "99999999999999999999", maxBytesRule},
		{"max_secret_bytes", nil, maxBytesRule},
		{"max_secret_bytes", map[string]interface{}{}, maxBytesRule},
		{"cas_required", 1, casRequiredRule},
		{"cas_required", 1.5, casRequiredRule},
		{"cas_required", "1", casRequiredRule},
		{"cas_required", "yes", casRequiredRule},
		{"cas_required", "TRUE", casRequiredRule},
		{"cas_required", nil, casRequiredRule},
		{"cas_required", []interface{}{true}, casRequiredRule},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s=%#v", tt.field, tt.value), func(t *testing.T) {
			e := newTestEnv(t)
			e.mustStatus(e.write("config", map[string]interface{}{"cas_required": true, "max_secret_bytes": 2048}), http.StatusNoContent)
			r := e.write("config", map[string]interface{}{tt.field: tt.value})
			e.mustStatus(r, http.StatusBadRequest)
			if r.errorText() != tt.rule {
				t.Fatalf("error %q, want %q", r.errorText(), tt.rule)
			}
			if got := e.storedConfig(); *got != (configEntry{MaxSecretBytes: 2048, CASRequired: true}) {
				t.Fatalf("a rejected write changed storage: %+v", got)
			}
			e.mustConfig(2048, true)
		})
	}
}

func TestConfigDelete_RestoresDefaults(t *testing.T) {
	e := newTestEnv(t)
	e.mustStatus(e.write("config", map[string]interface{}{"max_secret_bytes": 10, "cas_required": true}), http.StatusNoContent)
	e.mustStatus(e.delete("config"), http.StatusNoContent)
	e.mustConfig(524288, false)
	if e.storedConfig() != nil {
		t.Fatal("config still stored after delete")
	}
	e.mustStatus(e.delete("config"), http.StatusNoContent)
}

// The storage holds each Put until both writers are waiting, so both have
// read the settings before either stores: without the config lock, the second
// Put would undo the first's change.
func TestConfigWrite_ConcurrentPartialUpdatesBothApply(t *testing.T) {
	e := newTestEnv(t)
	updates := []map[string]interface{}{{"max_secret_bytes": 77}, {"cas_required": true}}
	e.holdPuts(len(updates))
	var wg sync.WaitGroup
	for _, data := range updates {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := &logical.Request{Operation: logical.UpdateOperation, Path: "config", Data: data, Storage: e.storage}
			if resp, err := e.backend.HandleRequest(context.Background(), req); err != nil || resp.IsError() {
				t.Errorf("write %v: %v %v", data, resp, err)
			}
		}()
	}
	wg.Wait()
	if got := e.storedConfig(); *got != (configEntry{MaxSecretBytes: 77, CASRequired: true}) {
		t.Fatalf("stored %+v, an update was lost", got)
	}
}

func TestConfigMaxSecretBytes_LimitsEncodedData(t *testing.T) {
	e := newTestEnv(t)
	// {"k":"vvvv"} is 12 bytes encoded.
	e.mustStatus(e.write("config", map[string]interface{}{"max_secret_bytes": 12}), http.StatusNoContent)
	e.mustStatus(e.write("secrets/a", map[string]interface{}{"data": map[string]interface{}{"k": "vvvv"}}), http.StatusOK)
	e.mustStatus(e.write("secrets/b", map[string]interface{}{"data": map[string]interface{}{"k": "vvvvv"}}), http.StatusBadRequest, "max_secret_bytes", "13")
	if e.storedSecret("b") != nil {
		t.Fatal("an oversized secret was stored")
	}
}
