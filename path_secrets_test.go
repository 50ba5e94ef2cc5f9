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
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

func kv(pairs ...string) map[string]interface{} {
	data := map[string]interface{}{}
	for i := 0; i < len(pairs); i += 2 {
		data[pairs[i]] = pairs[i+1]
	}
	return map[string]interface{}{"data": data}
}

func withCAS(body map[string]interface{}, cas interface{}) map[string]interface{} {
	body["cas"] = cas
	return body
}

func TestSecretWrite_CreatesAndReadsBack(t *testing.T) {
	e := newTestEnv(t)
	before := time.Now().UTC()
	w := e.write("secrets/team/app/db", kv("username", "app", "password", "s3cr3t"))
	e.mustStatus(w, http.StatusOK)
	if w.resp.Data["version"] != float64(1) || w.resp.Secret != nil {
		t.Fatalf("write response %#v", w.resp)
	}
	if len(w.resp.Data) != 3 {
		t.Fatalf("write response holds more than version and times: %v", w.resp.Data)
	}

	r := e.read("secrets/team/app/db")
	e.mustStatus(r, http.StatusOK)
	if r.resp.Secret != nil {
		t.Fatal("a read returned a Secret, so Vault would create a lease for it")
	}
	wantData := map[string]interface{}{"username": "app", "password": "s3cr3t"}
	if !reflect.DeepEqual(r.resp.Data["data"], wantData) || r.resp.Data["version"] != float64(1) {
		t.Fatalf("read %v", r.resp.Data)
	}
	created, err := time.Parse(time.RFC3339Nano, r.resp.Data["created_time"].(string))
	if err != nil || created.Before(before) || created.Location() != time.UTC {
		t.Fatalf("created_time %v (%v)", r.resp.Data["created_time"], err)
	}
	if r.resp.Data["updated_time"] != r.resp.Data["created_time"] || w.resp.Data["created_time"] != r.resp.Data["created_time"] {
		t.Fatalf("times differ on the first version: %v / %v", w.resp.Data, r.resp.Data)
	}
	stored := e.storedSecret("team/app/db")
	if stored == nil || stored.Version != 1 || !reflect.DeepEqual(stored.Data, map[string]string{"username": "app", "password": "s3cr3t"}) {
		t.Fatalf("stored %+v", stored)
	}
}

func TestSecretWrite_VersionGrowsAndCreatedTimeIsKept(t *testing.T) {
	e := newTestEnv(t)
	first := e.write("secrets/app", kv("k", "1"))
	time.Sleep(2 * time.Millisecond)
	second := e.write("secrets/app", kv("k", "2"))
	e.mustStatus(second, http.StatusOK)
	if second.resp.Data["version"] != float64(2) {
		t.Fatalf("second write version %v", second.resp.Data["version"])
	}
	if second.resp.Data["created_time"] != first.resp.Data["created_time"] {
		t.Fatal("created_time changed on update")
	}
	if second.resp.Data["updated_time"] == first.resp.Data["updated_time"] {
		t.Fatal("updated_time did not change on update")
	}
	if got := e.storedSecret("app"); got.Version != 2 || got.Data["k"] != "2" {
		t.Fatalf("stored %+v", got)
	}
}

func TestSecretWrite_CLIKeyValueForms(t *testing.T) {
	e := newTestEnv(t)
	// One data=k=v argument arrives as a string, several as a list of strings.
	e.mustStatus(e.write("secrets/one", map[string]interface{}{"data": "username=app"}), http.StatusOK)
	e.mustStatus(e.write("secrets/two", map[string]interface{}{"data": []interface{}{"username=app", "password=a=b,c"}}), http.StatusOK)
	if got := e.storedSecret("one").Data; !reflect.DeepEqual(got, map[string]string{"username": "app"}) {
		t.Fatalf("one: %v", got)
	}
	if got := e.storedSecret("two").Data; !reflect.DeepEqual(got, map[string]string{"username": "app", "password": "a=b,c"}) {
		t.Fatalf("two: %v", got)
	}
	e.mustStatus(e.write("secrets/empty-value", map[string]interface{}{"data": "k="}), http.StatusOK)
}

func TestSecretWrite_UnknownFieldsAreIgnoredWithAWarning(t *testing.T) {
	e := newTestEnv(t)
	r := e.write("secrets/app", map[string]interface{}{"data": map[string]interface{}{"k": "v"}, "colour": "blue"})
	e.mustStatus(r, http.StatusOK)
	if len(r.resp.Warnings) != 1 || !strings.Contains(r.resp.Warnings[0], "colour") {
		t.Fatalf("warnings %v", r.resp.Warnings)
	}
}

const (
	casRule = "cas: must be a whole number of at least 0"
	dotRule = `name: must not have a segment that is exactly "."`
)

func TestSecretWrite_RejectsBadInputAndStoresNothing(t *testing.T) {
	long := strings.Repeat("a", 513)
	tests := []struct {
		name     string
		path     string
		body     map[string]interface{}
		fragment string
	}{
		{"missing data", "secrets/app", map[string]interface{}{}, "data: required"},
		{"null data", "secrets/app", map[string]interface{}{"data": nil}, "data: required"},
		{"empty object", "secrets/app", map[string]interface{}{"data": map[string]interface{}{}}, "at least one key"},
		{"empty list", "secrets/app", map[string]interface{}{"data": []interface{}{}}, "at least one key"},
		{"empty key", "secrets/app", kv("", "v"), "keys must not be empty"},
		{"empty key pair", "secrets/app", map[string]interface{}{"data": "=v"}, "keys must not be empty"},
		{"number value", "secrets/app", map[string]interface{}{"data": map[string]interface{}{"port": 5432}}, `"port" must be a string`},
		{"bool value", "secrets/app", map[string]interface{}{"data": map[string]interface{}{"on": true}}, `"on" must be a string`},
		{"null value", "secrets/app", map[string]interface{}{"data": map[string]interface{}{"k": nil}}, `"k" must be a string`},
		{"number data", "secrets/app", map[string]interface{}{"data": 5}, "data: must be an object of strings or KEY=VALUE pairs, not a number"},
		{"pair without =", "secrets/app", map[string]interface{}{"data": "novalue"}, "data: item 1 must be a KEY=VALUE string"},
		{"list item not a string", "secrets/app", map[string]interface{}{"data": []interface{}{"a=b", 7}}, "data: item 2 must be a KEY=VALUE string"},
		{"nested value", "secrets/app", map[string]interface{}{"data": map[string]interface{}{"k": []interface{}{"x"}}}, `"k" must be a string, not an array`},
		{"duplicate key", "secrets/app", map[string]interface{}{"data": []interface{}{"a=1", "a=2"}}, `key "a" is given more than once`},
		{"cas fraction", "secrets/app", withCAS(kv("k", "v"), 1.5), casRule},
		{"cas fraction text", "secrets/app", withCAS(kv("k", "v"), "1.5"), casRule},
		{"cas signed text", "secrets/app", withCAS(kv("k", "v"), "+1"), casRule},
		{"cas bool", "secrets/app", withCAS(kv("k", "v"), true), casRule},
		{"cas bool text", "secrets/app", withCAS(kv("k", "v"), "true"), casRule},
		{"cas text", "secrets/app", withCAS(kv("k", "v"), "x"), casRule},
		{"cas empty text", "secrets/app", withCAS(kv("k", "v"), ""), casRule},
		{"cas negative", "secrets/app", withCAS(kv("k", "v"), -1), casRule},
		{"cas negative text", "secrets/app", withCAS(kv("k", "v"), "-1"), casRule},
		{"cas too large text", "secrets/app", withCAS(kv("k", "v"), "99999999999999999999"), casRule},
		{"cas null", "secrets/app", withCAS(kv("k", "v"), nil), casRule},
		{"cas object", "secrets/app", withCAS(kv("k", "v"), map[string]interface{}{}), casRule},
		{"dot segment", "secrets/.", kv("k", "v"), dotRule},
		{"dot segment first", "secrets/./a", kv("k", "v"), dotRule},
		{"dot segment inside", "secrets/a/./b", kv("k", "v"), dotRule},
		{"dot segment last", "secrets/a/.", kv("k", "v"), dotRule},
		{"dot dot", "secrets/a/../b", kv("k", "v"), `name: must not contain ".."`},
		{"dot dot in segment", "secrets/a..b", kv("k", "v"), `".."`},
		{"empty segment", "secrets/a//b", kv("k", "v"), "empty segment"},
		{"leading slash", "secrets//a", kv("k", "v"), "empty segment"},
		{"control character", "secrets/a\x01b", kv("k", "v"), "control characters"},
		{"newline", "secrets/a\nb", kv("k", "v"), "control characters"},
		{"too long", "secrets/" + long, kv("k", "v"), "at most 512 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t)
			e.mustStatus(e.write(tt.path, tt.body), http.StatusBadRequest, tt.fragment)
			if keys, _ := e.storage.InmemStorage.List(context.Background(), secretStoragePrefix); len(keys) != 0 {
				t.Fatalf("a rejected write stored %v", keys)
			}
		})
	}
}

// Vault's CLI and HTTP mux clean "." segments out of a path, so a secret
// stored under one could never be read, listed into or deleted from the CLI.
func TestSecretName_DotSegmentIsRefusedEverywhere(t *testing.T) {
	e := newTestEnv(t)
	for _, name := range []string{".", "./a", "a/./b", "a/."} {
		e.mustStatus(e.read("secrets/"+name), http.StatusBadRequest, dotRule)
		e.mustStatus(e.delete("secrets/"+name), http.StatusBadRequest, dotRule)
		e.mustStatus(e.list("secrets/"+name+"/"), http.StatusBadRequest, `prefix: must not have a segment that is exactly "."`)
	}
	// A dot inside a segment is an ordinary character.
	for _, name := range []string{".env", "a/.b", "x.", "a.b/c"} {
		e.mustStatus(e.write("secrets/"+name, kv("k", "v")), http.StatusOK)
		e.mustStatus(e.read("secrets/"+name), http.StatusOK)
		e.mustStatus(e.delete("secrets/"+name), http.StatusNoContent)
	}
}

func TestSecretName_LongestAllowed(t *testing.T) {
	e := newTestEnv(t)
	name := strings.Repeat("a", 255) + "/" + strings.Repeat("b", 256)
	e.mustStatus(e.write("secrets/"+name, kv("k", "v")), http.StatusOK)
	e.mustStatus(e.read("secrets/"+name), http.StatusOK)
}

func TestSecretWrite_CASRules(t *testing.T) {
	e := newTestEnv(t)
	e.mustStatus(e.write("secrets/app", withCAS(kv("k", "v"), 1)), http.StatusBadRequest, "does not exist")
	e.mustStatus(e.write("secrets/app", withCAS(kv("k", "v1"), 0)), http.StatusOK)
	e.mustStatus(e.write("secrets/app", withCAS(kv("k", "x"), 0)), http.StatusBadRequest, "current version is 1")
	e.mustStatus(e.write("secrets/app", withCAS(kv("k", "x"), 2)), http.StatusBadRequest, "current version is 1")
	e.mustStatus(e.write("secrets/app", withCAS(kv("k", "v2"), "1")), http.StatusOK) // CLI form
	e.mustStatus(e.write("secrets/app", withCAS(kv("k", "v3"), 2)), http.StatusOK)
	if got := e.storedSecret("app"); got.Version != 3 || got.Data["k"] != "v3" {
		t.Fatalf("stored %+v", got)
	}
}

func TestSecretWrite_CASRequiredByConfig(t *testing.T) {
	e := newTestEnv(t)
	e.mustStatus(e.write("config", map[string]interface{}{"cas_required": true}), http.StatusNoContent)
	e.mustStatus(e.write("secrets/app", kv("k", "v")), http.StatusBadRequest, "cas: required")
	if e.storedSecret("app") != nil {
		t.Fatal("a write without cas was stored")
	}
	e.mustStatus(e.write("secrets/app", withCAS(kv("k", "v"), 0)), http.StatusOK)
}

func TestSecretDelete_RemovesEverything(t *testing.T) {
	e := newTestEnv(t)
	e.mustStatus(e.write("secrets/app", kv("k", "v")), http.StatusOK)
	e.mustStatus(e.write("secrets/app", kv("k", "v")), http.StatusOK)
	e.mustStatus(e.delete("secrets/app"), http.StatusNoContent)
	if e.storedSecret("app") != nil {
		t.Fatal("still stored after delete")
	}
	e.mustStatus(e.read("secrets/app"), http.StatusNotFound)
	e.mustStatus(e.delete("secrets/app"), http.StatusNoContent) // absent is fine
	w := e.write("secrets/app", withCAS(kv("k", "v"), 0))
	e.mustStatus(w, http.StatusOK)
	if w.resp.Data["version"] != float64(1) {
		t.Fatalf("version after delete %v, want 1", w.resp.Data["version"])
	}
}

// Every acknowledged delete is done: a bug that skips one now and then shows
// within a few hundred.
func TestSecretDelete_EveryAcknowledgedDeleteIsDone(t *testing.T) {
	e := newTestEnv(t)
	for i := 0; i < 300; i++ {
		e.mustStatus(e.write("secrets/app", kv("k", "v")), http.StatusOK)
		e.mustStatus(e.delete("secrets/app"), http.StatusNoContent)
		if e.storedSecret("app") != nil {
			t.Fatalf("delete %d acknowledged, the secret still stored", i+1)
		}
		e.mustStatus(e.read("secrets/app"), http.StatusNotFound)
	}
}

func TestSecretRead_AbsentIs404(t *testing.T) {
	e := newTestEnv(t)
	e.mustStatus(e.read("secrets/nothing"), http.StatusNotFound)
	e.mustStatus(e.read("secrets/a/../b"), http.StatusBadRequest, "..")
	e.mustStatus(e.delete("secrets/a/../b"), http.StatusBadRequest, "..")
}

func TestSecretFolder_OnlyListApplies(t *testing.T) {
	e := newTestEnv(t)
	e.mustStatus(e.write("secrets/team/app", kv("k", "v")), http.StatusOK)
	e.mustStatus(e.read("secrets/team/"), http.StatusMethodNotAllowed)
	e.mustStatus(e.write("secrets/team/", kv("k", "v")), http.StatusMethodNotAllowed)
	e.mustStatus(e.delete("secrets/team/"), http.StatusMethodNotAllowed)
	e.mustStatus(e.list("secrets/team/"), http.StatusOK)
	e.mustStatus(e.read("secrets"), http.StatusNotFound)
}

func TestSecretList_SortedWithFolders(t *testing.T) {
	e := newTestEnv(t)
	for _, name := range []string{"zeta", "alpha", "team/db", "team/app", "team/sub/x", "Beta"} {
		e.mustStatus(e.write("secrets/"+name, kv("k", "v")), http.StatusOK)
	}
	tests := []struct {
		path string
		want []string
	}{
		{"secrets/", []string{"Beta", "alpha", "team/", "zeta"}},
		{"secrets/team/", []string{"app", "db", "sub/"}},
		{"secrets/team/sub/", []string{"x"}},
	}
	for _, tt := range tests {
		r := e.list(tt.path)
		e.mustStatus(r, http.StatusOK)
		if got := listedKeys(t, r); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("list %s = %v, want %v", tt.path, got, tt.want)
		}
	}
	e.mustStatus(e.list("secrets/missing/"), http.StatusNotFound)
	e.mustStatus(e.list("secrets/a/../"), http.StatusBadRequest, "prefix")
	e.mustStatus(e.list("secrets//"), http.StatusBadRequest, "prefix")

	empty := newTestEnv(t)
	empty.mustStatus(empty.list("secrets/"), http.StatusNotFound)
}

// listedKeys returns a list response's keys, which arrive from gRPC as []interface{}.
func listedKeys(t *testing.T, r result) []string {
	t.Helper()
	raw, _ := r.resp.Data["keys"].([]interface{})
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
	e.mustStatus(e.write("secrets/shared", kv("writer", "first")), http.StatusOK)
	const writers = 8
	e.holdPuts(writers)
	var wg sync.WaitGroup
	var succeeded atomic.Int64
	for i := 0; i < writers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r := e.write("secrets/shared", kv("writer", fmt.Sprint(i))); r.status == http.StatusOK {
				succeeded.Add(1)
			} else {
				t.Errorf("writer %d: status %d %s", i, r.status, r.errorText())
			}
		}()
	}
	wg.Wait()
	if got := e.storedSecret("shared").Version; got != 1+succeeded.Load() || got != 1+writers {
		t.Fatalf("final version %d after 1+%d successful writes", got, succeeded.Load())
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
				Data: kv("creator", fmt.Sprint(i))}
			switch r := e.handle(req); r.status {
			case http.StatusOK:
				winner.Store(fmt.Sprint(i))
			case http.StatusBadRequest:
				if !strings.Contains(r.errorText(), "created by another request") {
					t.Errorf("creator %d: %s", i, r.errorText())
				}
				losers.Add(1)
			default:
				t.Errorf("creator %d: status %d %s", i, r.status, r.errorText())
			}
		}()
	}
	wg.Wait()
	stored := e.storedSecret("new")
	if losers.Load() != creators-1 || stored.Version != 1 || stored.Data["creator"] != winner.Load() {
		t.Fatalf("%d losers; stored %+v; winner %v", losers.Load(), stored, winner.Load())
	}
}

func TestSecretWrite_UpdateOfADeletedSecretIsRefused(t *testing.T) {
	e := newTestEnv(t)
	// Vault classed this write as an update, then a delete landed first.
	req := &logical.Request{Operation: logical.UpdateOperation, Path: "secrets/gone", Storage: e.storage, Data: kv("k", "v")}
	e.mustStatus(e.handle(req), http.StatusBadRequest, "deleted by another request")
	if e.storedSecret("gone") != nil {
		t.Fatal("an update created the secret")
	}
}

// The storage holds every Put until all writers are waiting, so each has
// compared its cas with the version it read before any stores: without the
// lock, all would win.
func TestSecretWrite_RacingCASWritersHaveOneWinner(t *testing.T) {
	e := newTestEnv(t)
	e.mustStatus(e.write("secrets/shared", kv("k", "v")), http.StatusOK)
	const writers = 8
	for _, cas := range []int{1, 2} {
		e.holdPuts(writers)
		var wg sync.WaitGroup
		var winners, losers atomic.Int64
		for i := 0; i < writers; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				switch r := e.write("secrets/shared", withCAS(kv("winner", fmt.Sprint(i)), cas)); r.status {
				case http.StatusOK:
					winners.Add(1)
				case http.StatusBadRequest:
					losers.Add(1)
				default:
					t.Errorf("status %d %s", r.status, r.errorText())
				}
			}()
		}
		wg.Wait()
		if winners.Load() != 1 || losers.Load() != writers-1 {
			t.Fatalf("cas=%d: %d winners, %d losers", cas, winners.Load(), losers.Load())
		}
		if got := e.storedSecret("shared").Version; got != int64(cas+1) {
			t.Fatalf("cas=%d: version %d", cas, got)
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
		e.mustStatus(e.write(name, kv("k", name)), http.StatusOK)
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
					r = e.write(name, kv("k", name))
					if r.status == http.StatusOK {
						written := fmt.Sprint(name, " created ", r.resp.Data["created_time"], " version ", r.resp.Data["version"])
						mu.Lock()
						if reported[written] {
							t.Errorf("two writes both stored %s: one update was lost", written)
						}
						reported[written] = true
						mu.Unlock()
					}
				case 2:
					r = e.read(name)
					if r.status == http.StatusOK && r.resp.Data["data"].(map[string]interface{})["k"] != name {
						t.Errorf("%s holds another secret's data: %v", name, r.resp.Data)
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
					t.Errorf("%s: status %d %s", name, r.status, r.errorText())
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
			t.Fatalf("dir/%s stored as %+v", k, entry)
		}
	}
	if r := e.list("secrets/dir/"); len(keys) > 0 && !reflect.DeepEqual(listedKeys(t, r), keys) {
		t.Fatalf("list %v, storage %v", r.resp.Data["keys"], keys)
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
		e.mustStatus(e.write("config", map[string]interface{}{"max_secret_bytes": 256}), http.StatusNoContent)
		bodies := []map[string]interface{}{
			{"data": map[string]interface{}{key: value}},
			{"data": key + "=" + value, "cas": casText},
			{"data": []interface{}{key, value}, "cas": casNumber},
		}
		for _, body := range bodies {
			r := e.write("secrets/"+name, body)
			if r.status >= 500 {
				t.Fatalf("write %q %v: status %d %s", name, body, r.status, r.errorText())
			}
			if r := e.read("secrets/" + name); r.status >= 500 {
				t.Fatalf("read %q: status %d %s", name, r.status, r.errorText())
			}
		}
		if r := e.list("secrets/" + name + "/"); r.status >= 500 {
			t.Fatalf("list %q: status %d %s", name, r.status, r.errorText())
		}
	})
}

func TestWholeNumber_StrictConversions(t *testing.T) {
	tests := []struct {
		in   interface{}
		want int64
		ok   bool
	}{
		{3, 3, true}, {int64(4), 4, true}, {float64(5), 5, true}, {"6", 6, true},
		{1.5, 0, false}, {true, 0, false}, {"1.5", 0, false}, {"x", 0, false}, {nil, 0, false},
		{float64(1 << 60), 0, false}, {[]interface{}{1}, 0, false},
	}
	for _, tt := range tests {
		got, ok := wholeNumber(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("wholeNumber(%#v) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestSecretWrite_TooLargeForStorageIs400(t *testing.T) {
	e := newTestEnv(t)
	e.storage.maxEntryBytes = 1000
	e.mustStatus(e.write("config", map[string]interface{}{"max_secret_bytes": 1048576}), http.StatusNoContent)
	e.mustStatus(e.write("secrets/big", kv("k", strings.Repeat("v", 990))), http.StatusBadRequest, "too large for this Vault's storage")
	if e.storedSecret("big") != nil {
		t.Fatal("an entry storage refused is stored")
	}
	e.mustStatus(e.write("secrets/big", kv("k", strings.Repeat("v", 800))), http.StatusOK)
}
