package main

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/vault-reference/vault-plugin-secrets-reference/apicases"
)

// What only the in-process suite sees of a write and a read: storage holds
// the data written, and neither answer carries a Secret, for which Vault would
// create a lease. The API's answers are the table's (TestAPICases_InProcess).
func TestSecretWrite_StoredAsWrittenAndAnsweredWithoutALease(t *testing.T) {
	e := newTestEnv(t)
	w := e.write("secrets/team/app/db", apicases.KV("username", "app", "password", "s3cr3t"))
	e.mustStatus(w, http.StatusOK)
	r := e.read("secrets/team/app/db")
	e.mustStatus(r, http.StatusOK)
	if w.resp.Secret != nil || r.resp.Secret != nil {
		t.Fatalf("write Secret %#v, read Secret %#v, want none: Vault would create a lease for it", w.resp.Secret, r.resp.Secret)
	}
	want := map[string]string{"username": "app", "password": "s3cr3t"}
	if stored := e.storedSecret("team/app/db"); stored == nil || stored.Version != 1 || !reflect.DeepEqual(stored.Data, want) {
		t.Fatalf("stored %+v, want version 1 of %v", stored, want)
	}
}

// A client that writes with cas counts on the version after its write being
// the one it read plus one. Many updates, so that a version skipped only now
// and then shows too.
func TestSecretWrite_EachUpdateAddsOneToTheVersion(t *testing.T) {
	e := newTestEnv(t)
	e.mustStatus(e.write("secrets/counted", apicases.KV("n", "0")), http.StatusOK)
	for want := int64(2); want <= 200; want++ {
		e.mustStatus(e.write("secrets/counted", apicases.KV("n", fmt.Sprint(want))), http.StatusOK)
		if got := e.storedSecret("counted").Version; got != want {
			t.Fatalf("after %d writes the stored version is %d, want %d", want, got, want)
		}
	}
}

// A client that deleted a credential counts on it being gone once the delete
// is answered. Many deletes, so that one doing nothing only now and then shows
// too.
func TestSecretDelete_EveryAnsweredDeleteRemovesTheSecret(t *testing.T) {
	e := newTestEnv(t)
	for deletes := 1; deletes <= 100; deletes++ {
		e.mustStatus(e.write("secrets/deleted", apicases.KV("n", fmt.Sprint(deletes))), http.StatusOK)
		e.mustStatus(e.delete("secrets/deleted"), http.StatusNoContent)
		if stored := e.storedSecret("deleted"); stored != nil {
			t.Fatalf("delete %d was answered and left %+v stored, want nothing stored", deletes, stored)
		}
	}
}

// listedKeys returns a list response's keys, which arrive from gRPC as []any.
func listedKeys(t *testing.T, r result) []string {
	t.Helper()
	raw, _ := r.resp.Data["keys"].([]any)
	keys := make([]string, len(raw))
	for i, k := range raw {
		keys[i] = k.(string)
	}
	return keys
}

// The storage holds every Put until all writers are waiting, so each of them
// has read the version it replaces before any stores: without the lock, all
// would store version 2.
func TestSecretWrite_ConcurrentWritersLoseNoUpdate(t *testing.T) {
	e := newTestEnv(t)
	e.mustStatus(e.write("secrets/shared", apicases.KV("writer", "first")), http.StatusOK)
	const writers = 8
	e.holdPuts(writers)
	var wg sync.WaitGroup
	var succeeded atomic.Int64
	for i := 0; i < writers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r := e.write("secrets/shared", apicases.KV("writer", fmt.Sprint(i))); r.status == http.StatusOK {
				succeeded.Add(1)
			} else {
				t.Errorf("writer %d: status %d %s, want 200", i, r.status, r.errorText())
			}
		}()
	}
	wg.Wait()
	if got := e.storedSecret("shared").Version; got != 1+succeeded.Load() || got != 1+writers {
		t.Fatalf("final version %d after 1+%d successful writes, want %d: every write succeeded, none lost", got, succeeded.Load(), 1+writers)
	}
}

// Vault decides create or update, and checks the policy for it, before the
// handler takes the lock: of writers racing to create one name, only one may
// create, or a create-only policy could overwrite. The storage holds every Put
// until all creators are waiting: without the lock, all would create.
func TestSecretWrite_RacingCreatesHaveOneWinner(t *testing.T) {
	e := newTestEnv(t)
	const creators = 8
	e.holdPuts(creators)
	var wg sync.WaitGroup
	var winner atomic.Value
	var losers atomic.Int64
	for i := 0; i < creators; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := &logical.Request{Operation: logical.CreateOperation, Path: "secrets/new", Storage: e.storage,
				Data: apicases.KV("creator", fmt.Sprint(i))}
			switch r := e.handle(req); r.status {
			case http.StatusOK:
				winner.Store(fmt.Sprint(i))
			case http.StatusBadRequest:
				if !strings.Contains(r.errorText(), "created by another request") {
					t.Errorf("creator %d: error %q, want one saying created by another request", i, r.errorText())
				}
				losers.Add(1)
			default:
				t.Errorf("creator %d: status %d %s, want 200 or 400", i, r.status, r.errorText())
			}
		}()
	}
	wg.Wait()
	stored := e.storedSecret("new")
	if losers.Load() != creators-1 || stored.Version != 1 || stored.Data["creator"] != winner.Load() {
		t.Fatalf("%d losers, stored %+v, winner %v; want %d losers and version 1 holding the winner's data", losers.Load(), stored, winner.Load(), creators-1)
	}
}

func TestSecretWrite_UpdateOfADeletedSecretIsRefused(t *testing.T) {
	e := newTestEnv(t)
	// Vault classed this write as an update, then a delete landed first.
	req := &logical.Request{Operation: logical.UpdateOperation, Path: "secrets/gone", Storage: e.storage, Data: apicases.KV("k", "v")}
	e.mustStatus(e.handle(req), http.StatusBadRequest, "deleted by another request")
	if e.storedSecret("gone") != nil {
		t.Fatal("an update created the secret, want nothing stored")
	}
}

// The storage holds every Put until all writers are waiting, so each has
// compared its cas with the version it read before any stores: without the
// lock, all would win.
func TestSecretWrite_RacingCASWritersHaveOneWinner(t *testing.T) {
	e := newTestEnv(t)
	e.mustStatus(e.write("secrets/shared", apicases.KV("k", "v")), http.StatusOK)
	const writers = 8
	for _, cas := range []int{1, 2} {
		e.holdPuts(writers)
		var wg sync.WaitGroup
		var winners, losers atomic.Int64
		for i := 0; i < writers; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				switch r := e.write("secrets/shared", apicases.WithCAS(apicases.KV("winner", fmt.Sprint(i)), cas)); r.status {
				case http.StatusOK:
					winners.Add(1)
				case http.StatusBadRequest:
					losers.Add(1)
				default:
					t.Errorf("status %d %s, want 200 or 400", r.status, r.errorText())
				}
			}()
		}
		wg.Wait()
		if winners.Load() != 1 || losers.Load() != writers-1 {
			t.Fatalf("cas=%d: %d winners, %d losers; want 1 winner, %d losers", cas, winners.Load(), losers.Load(), writers-1)
		}
		if got := e.storedSecret("shared").Version; got != int64(cas+1) {
			t.Fatalf("cas=%d: stored version %d, want %d", cas, got, cas+1)
		}
	}
}

// Writes, reads, deletes and lists of a few names, mixed. Every worker's first
// operation is a write, and the storage holds those Puts until all are
// waiting: two workers write each name, so without the lock both would store
// the same version. No two successful writes may report the same version of
// one secret; created_time tells a secret from one re-created after a delete.
func TestSecrets_MixedConcurrentOperationsStayConsistent(t *testing.T) {
	e := newTestEnv(t)
	const workers, rounds, names = 8, 60, 4
	for n := 0; n < names; n++ {
		name := fmt.Sprintf("secrets/dir/n%d", n)
		e.mustStatus(e.write(name, apicases.KV("k", name)), http.StatusOK)
	}
	e.holdPuts(workers)
	var mu sync.Mutex
	reported := map[string]bool{} // name, created_time and version of each successful write
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				name := fmt.Sprintf("secrets/dir/n%d", (w+i)%names)
				var r result
				switch i % 4 {
				case 0, 1:
					r = e.write(name, apicases.KV("k", name))
					if r.status == http.StatusOK {
						written := fmt.Sprint(name, " created ", r.resp.Data["created_time"], " version ", r.resp.Data["version"])
						mu.Lock()
						if reported[written] {
							t.Errorf("two writes both stored %s, want each version stored once: one update was lost", written)
						}
						reported[written] = true
						mu.Unlock()
					}
				case 2:
					r = e.read(name)
					if r.status == http.StatusOK && r.resp.Data["data"].(map[string]any)["k"] != name {
						t.Errorf("read %s answered %v, want its own data k=%s", name, r.resp.Data, name)
					}
				case 3:
					if w%2 == 0 {
						r = e.delete(name)
					} else {
						r = e.list("secrets/dir/")
					}
				}
				// A write may lose a race with a delete or create (400);
				// nothing may fail.
				if r.status >= 500 {
					t.Errorf("%s: status %d %s, want below 500", name, r.status, r.errorText())
				}
			}
		}()
	}
	wg.Wait()
	// Every secret still stored is whole: its own data, a version of at least 1.
	keys, _ := e.storage.InmemStorage.List(context.Background(), "secrets/dir/")
	for _, k := range keys {
		entry := e.storedSecret("dir/" + k)
		if entry.Version < 1 || entry.Data["k"] != "secrets/dir/"+k {
			t.Fatalf("dir/%s stored as %+v, want version 1 or more with k=secrets/dir/%s", k, entry, k)
		}
	}
	if r := e.list("secrets/dir/"); len(keys) > 0 && !reflect.DeepEqual(listedKeys(t, r), keys) {
		t.Fatalf("list %v, want the keys in storage %v", r.resp.Data["keys"], keys)
	}
}

// FuzzSecretWrite throws arbitrary names, keys, values and cas values at a write
// and a read: the backend must never panic and never answer caller input with a 500.
func FuzzSecretWrite(f *testing.F) {
	f.Add("app", "username", "app", "", int64(-1))
	f.Add("team/app/db", "password", "s3cr3t", "0", int64(0))
	f.Add("a/../b", "", "v", "1.5", int64(1))
	f.Add("%2E%2E/x", "k", "", "true", int64(3))
	f.Add("a//b/", "k=v", "=", "-1", int64(7))
	f.Add("\x00\n", "\xff", "\u2028", "99999999999999999999", int64(1<<62))
	f.Add(strings.Repeat("x", 600), "k", strings.Repeat("v", 1000), "", int64(0))
	f.Fuzz(func(t *testing.T, name, key, value, casText string, casNumber int64) {
		e := newTestEnv(t)
		// Storage refuses entries a little above max_secret_bytes, as raft does
		// near its 1 MiB limit: that must be a 400 too.
		e.storage.maxEntryBytes = 300
		e.mustStatus(e.write("config", map[string]any{"max_secret_bytes": 256}), http.StatusNoContent)
		bodies := []map[string]any{
			{"data": map[string]any{key: value}},
			{"data": key + "=" + value, "cas": casText},
			{"data": []any{key, value}, "cas": casNumber},
		}
		for _, body := range bodies {
			r := e.write("secrets/"+name, body)
			if r.status >= 500 {
				t.Fatalf("write %q %v: status %d %s, want below 500", name, body, r.status, r.errorText())
			}
			if r := e.read("secrets/" + name); r.status >= 500 {
				t.Fatalf("read %q: status %d %s, want below 500", name, r.status, r.errorText())
			}
		}
		if r := e.list("secrets/" + name + "/"); r.status >= 500 {
			t.Fatalf("list %q: status %d %s, want below 500", name, r.status, r.errorText())
		}
	})
}

func TestSecretWrite_TooLargeForStorageIs400(t *testing.T) {
	e := newTestEnv(t)
	e.storage.maxEntryBytes = 1000
	e.mustStatus(e.write("config", map[string]any{"max_secret_bytes": 1048576}), http.StatusNoContent)
	e.mustStatus(e.write("secrets/big", apicases.KV("k", strings.Repeat("v", 990))), http.StatusBadRequest, "too large for this Vault's storage")
	if e.storedSecret("big") != nil {
		t.Fatal("an entry storage refused is stored, want nothing stored")
	}
	e.mustStatus(e.write("secrets/big", apicases.KV("k", strings.Repeat("v", 800))), http.StatusOK)
}
