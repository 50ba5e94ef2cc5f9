package main

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/vault-reference/vault-plugin-secrets-reference/apicases"
)

// The metadata cache must never let a write reuse, skip or invent a version:
// each test here breaks one way it could go stale, then checks the next write.

// mustWriteVersion writes apicases.KV("k", value) to secrets/name and fails the test
// unless the write was stored as the wanted version.
func (e *testEnv) mustWriteVersion(name, value string, want int64) {
	e.t.Helper()
	r := e.write("secrets/"+name, apicases.KV("k", value))
	e.mustStatus(r, http.StatusOK)
	if got := r.resp.Data["version"]; got != float64(want) {
		e.t.Fatalf("write to %s stored version %v, want %d", name, got, want)
	}
	if stored := e.storedSecret(name); stored.Version != want || stored.Data["k"] != value {
		e.t.Fatalf("storage holds %+v, want version %d of %q", stored, want, value)
	}
}

// putBehindTheBackend stores a version of a secret the way another node (or
// sys/raw) would: storage changes, the backend's cache does not hear of it.
func (e *testEnv) putBehindTheBackend(name string, version int64) {
	e.t.Helper()
	value, err := encodeSecret(&secretMetadata{Version: version, CreatedTime: "2020-01-01T00:00:00Z", UpdatedTime: "2020-01-01T00:00:00Z"}, []byte(`{"k":"elsewhere"}`))
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.storage.InmemStorage.Put(context.Background(), &logical.StorageEntry{Key: secretStorageKey(name), Value: value}); err != nil {
		e.t.Fatal(err)
	}
}

func TestMetadataCache_InvalidateReadsStorageAgain(t *testing.T) {
	e := newTestEnv(t)
	e.mustWriteVersion("app", "a", 1)
	e.putBehindTheBackend("app", 5)
	e.backend.InvalidateKey(context.Background(), "secrets/app")
	e.mustWriteVersion("app", "b", 6)

	// Another node deleted it: the next write is a create again.
	if err := e.storage.InmemStorage.Delete(context.Background(), secretStorageKey("app")); err != nil {
		t.Fatal(err)
	}
	e.backend.InvalidateKey(context.Background(), "secrets/app")
	e.mustWriteVersion("app", "c", 1)
	if got := e.storedSecret("app").CreatedTime; got == "2020-01-01T00:00:00Z" {
		t.Fatalf("the re-created secret has the deleted one's created_time %s, want a new one", got)
	}
}

func TestMetadataCache_StorageFaultsNeverReuseOrSkipAVersion(t *testing.T) {
	tests := []struct {
		name string
		// fault makes one request fail with the given storage operation failing.
		failing string
		fault   func(e *testEnv) result
		// next is the version the following write must store.
		next int64
	}{
		{"put fails", "put", func(e *testEnv) result { return e.write("secrets/app", apicases.KV("k", "lost")) }, 3},
		{"put lands, then fails", "put-landed", func(e *testEnv) result { return e.write("secrets/app", apicases.KV("k", "landed")) }, 4},
		{"get fails", "get", func(e *testEnv) result {
			e.backend.metadata.Purge()
			return e.write("secrets/app", apicases.KV("k", "lost"))
		}, 3},
		{"delete fails", "delete", func(e *testEnv) result { return e.delete("secrets/app") }, 3},
		{"delete lands, then fails", "delete-landed", func(e *testEnv) result { return e.delete("secrets/app") }, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t)
			e.mustWriteVersion("app", "v1", 1)
			e.mustWriteVersion("app", "v2", 2)
			e.storage.failOn(tt.failing)
			e.mustStatus(tt.fault(e), http.StatusInternalServerError, errInjected.Error())
			e.storage.failOn()
			e.mustWriteVersion("app", "next", tt.next)
		})
	}
}

// The delete is cached as "absent", so Vault is told a write after it
// creates. (What the API answers after a delete is the table's.)
func TestMetadataCache_DeleteIsCachedAsAbsent(t *testing.T) {
	e := newTestEnv(t)
	e.mustWriteVersion("gone", "v1", 1)
	e.mustStatus(e.delete("secrets/gone"), http.StatusNoContent)
	e.storage.resetCounts()
	req := &logical.Request{Operation: logical.UpdateOperation, Path: "secrets/gone", Data: apicases.KV("k", "v"), Storage: e.storage}
	if _, exists, err := e.backend.HandleExistenceCheck(context.Background(), req); err != nil || exists {
		t.Fatalf("existence check after delete: exists=%v err=%v, want false, nil", exists, err)
	}
	if gets := e.storage.count("get"); gets != 0 {
		t.Fatalf("existence check after delete cost %d storage reads, want 0 (answered from the cache)", gets)
	}
}

func TestMetadataCache_EvictedNamesAreReadFromStorage(t *testing.T) {
	e := newTestEnv(t)
	e.backend.metadata = newMetadataCache(2)
	e.mustWriteVersion("a", "v1", 1)
	e.mustWriteVersion("b", "v1", 1)
	e.mustWriteVersion("c", "v1", 1) // evicts a
	if n := e.backend.metadata.Len(); n != 2 {
		t.Fatalf("cache holds %d names, want 2, its bound", n)
	}
	if e.backend.metadata.Contains("a") {
		t.Fatal("the cache still holds name a, want it evicted as the least recently used")
	}
	// Storage is the truth for an evicted name, even if it changed meanwhile.
	e.putBehindTheBackend("a", 7)
	e.storage.resetCounts()
	e.mustWriteVersion("a", "v8", 8)
	if gets := e.storage.count("get"); gets != 2 {
		t.Fatalf("an evicted name cost %d storage reads, want 2 (existence check and locked lookup)", gets)
	}
	e.storage.resetCounts()
	e.mustWriteVersion("a", "v9", 9)
	if gets := e.storage.count("get"); gets != 0 {
		t.Fatalf("a cached name cost %d storage reads, want 0", gets)
	}
}

// TestMetadataCache_StaysCoherentUnderConcurrency races two requests on one
// secret: the first is held after its change has landed in storage, before it
// updates the cache, until the second has finished. Without the name's lock,
// the second reads the version the first has not cached yet, and the first
// then caches what storage no longer holds. With it, the second waits for the
// first, and the cache says what storage holds.
func TestMetadataCache_StaysCoherentUnderConcurrency(t *testing.T) {
	write := func(e *testEnv) result { return e.write("secrets/app", apicases.KV("k", "racing")) }
	remove := func(e *testEnv) result { return e.delete("secrets/app") }
	tests := []struct {
		name          string
		first, second func(e *testEnv) result
		heldAt        string
	}{
		{"write, then write", write, write, "put-landed"},
		{"write, then delete", write, remove, "put-landed"},
		{"delete, then write", remove, write, "delete-landed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t)
			e.mustWriteVersion("app", "v1", 1)
			landed, secondDone := make(chan struct{}), make(chan struct{})
			var held atomic.Bool
			e.storage.hold = func(op string) {
				if op == tt.heldAt && held.CompareAndSwap(false, true) {
					close(landed)
					select {
					case <-secondDone:
					case <-time.After(raceWindow): // the lock keeps the second out
					}
				}
			}
			firstResult := make(chan result, 1)
			go func() { firstResult <- tt.first(e) }()
			select {
			case <-landed:
			case r := <-firstResult:
				t.Fatalf("the first request answered status %d %s before its change landed, want it held once the change landed", r.status, r.errorText())
			}
			second := tt.second(e)
			close(secondDone)
			for _, r := range []result{<-firstResult, second} {
				// A write may lose a race with a delete (400); nothing may fail.
				if r.status >= 500 {
					t.Fatalf("status %d %s, want below 500", r.status, r.errorText())
				}
			}

			stored := e.storedSecret("app")
			if cached, ok := e.backend.metadata.Peek("app"); ok {
				switch {
				case stored == nil && cached != nil:
					t.Errorf("cached as version %d, want absent: storage has none", cached.Version)
				case stored != nil && (cached == nil || *cached != stored.secretMetadata):
					t.Errorf("cached %+v, want what storage holds: %+v", cached, stored.secretMetadata)
				}
			}
			want := int64(1)
			if stored != nil {
				want = stored.Version + 1
			}
			e.mustWriteVersion("app", "next", want)
		})
	}
}

// TestStorageCalls_PerOperation proves what the metadata cache saves: an update
// of a name this mount has seen costs only its Put, where the existence check
// and the locked lookup each read storage before.
func TestStorageCalls_PerOperation(t *testing.T) {
	e := newTestEnv(t)
	e.mustStatus(e.read("config"), http.StatusOK) // config is cached from here on
	data := map[string]any{"data": map[string]any{"k": "v"}}
	existenceCheck := func() result {
		req := &logical.Request{Operation: logical.UpdateOperation, Path: "secrets/app", Data: data, Storage: e.storage}
		if _, exists, err := e.backend.HandleExistenceCheck(context.Background(), req); err != nil || !exists {
			t.Fatalf("existence check: exists=%v err=%v, want true, nil", exists, err)
		}
		return result{status: http.StatusOK}
	}
	updateHandler := func() result {
		return e.handle(&logical.Request{Operation: logical.UpdateOperation, Path: "secrets/app", Data: data, Storage: e.storage})
	}

	tests := []struct {
		name    string
		do      func() result
		get     int64
		put     int64
		list    int64
		deletes int64
	}{
		{"create", func() result { return e.write("secrets/app", data) }, 2, 1, 0, 0},
		{"update", func() result { return e.write("secrets/app", data) }, 0, 1, 0, 0},
		{"update's existence check", existenceCheck, 0, 0, 0, 0},
		{"update's handler", updateHandler, 0, 1, 0, 0},
		{"read", func() result { return e.read("secrets/app") }, 1, 0, 0, 0},
		{"list", func() result { return e.list("secrets/") }, 0, 0, 1, 0},
		{"delete", func() result { return e.delete("secrets/app") }, 0, 0, 0, 1},
		{"create after delete", func() result { return e.write("secrets/app", data) }, 0, 1, 0, 0},
		{"update on a new mount", func() result {
			e.backend.metadata.Purge() // as after a restart, failover or reload
			return e.write("secrets/app", data)
		}, 2, 1, 0, 0},
		{"create of another name", func() result { return e.write("secrets/other", data) }, 2, 1, 0, 0},
		// A delete reads the format of what it deletes, from storage only
		// when the cache does not know it.
		{"delete on a new mount", func() result {
			e.backend.metadata.Purge()
			return e.delete("secrets/other")
		}, 1, 0, 0, 1},
	}
	for _, tt := range tests {
		e.storage.resetCounts()
		if r := tt.do(); r.status >= 300 {
			t.Fatalf("%s: status %d, want 2xx", tt.name, r.status)
		}
		got := [4]int64{e.storage.count("get"), e.storage.count("put"), e.storage.count("list"), e.storage.count("delete")}
		want := [4]int64{tt.get, tt.put, tt.list, tt.deletes}
		if got != want {
			t.Errorf("%s: storage calls get/put/list/delete = %v, want %v", tt.name, got, want)
		}
	}
}
