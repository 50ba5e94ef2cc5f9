package main

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/logical"
)

// The in-process benchmarks. bench/kv_bench_test.go runs HashiCorp's KV engine
// through the same shapes under the same names, so benchstat can put the two
// side by side (make bench). A shape is a folder of `secrets` small secrets
// beside one target secret holding a value of the given size.

var benchShapes = []struct {
	secrets int
	value   string
}{
	{1000, "small"}, {1000, "64KiB"}, {100000, "small"}, {100000, "64KiB"},
}

func benchValue(size string) string {
	if size == "64KiB" {
		return strings.Repeat("v", 64<<10)
	}
	return "s3cr3t-value"
}

// benchBackends keeps populated backends across b.Run calls: populating
// 100 000 secrets takes longer than the measurement.
var benchBackends = map[int]*benchEnv{}

type benchEnv struct {
	backend logical.Backend
	storage logical.Storage
}

func newBenchEnv(b *testing.B, secrets int) *benchEnv {
	if env, ok := benchBackends[secrets]; ok {
		return env
	}
	ctx := context.Background()
	conf := &logical.BackendConfig{
		Logger:      hclog.NewNullLogger(),
		System:      logical.TestSystemView(),
		StorageView: &logical.InmemStorage{},
	}
	backend, err := Factory(ctx, conf)
	if err != nil {
		b.Fatal(err)
	}
	env := &benchEnv{backend: backend, storage: conf.StorageView}
	for i := 0; i < secrets; i++ {
		env.do(b, logical.CreateOperation, fmt.Sprintf("secrets/folder/s%06d", i), map[string]any{
			"data": map[string]any{"password": benchValue("small")},
		})
	}
	benchBackends[secrets] = env
	return env
}

// do handles one request the way Vault does: the existence check first for writes.
func (env *benchEnv) do(b *testing.B, op logical.Operation, path string, data map[string]any) *logical.Response {
	ctx := context.Background()
	req := &logical.Request{Operation: op, Path: path, Data: data, Storage: env.storage}
	if op == logical.CreateOperation || op == logical.UpdateOperation {
		_, exists, err := env.backend.HandleExistenceCheck(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		req.Operation = logical.CreateOperation
		if exists {
			req.Operation = logical.UpdateOperation
		}
	}
	resp, err := env.backend.HandleRequest(ctx, req)
	if err != nil || resp.IsError() {
		b.Fatalf("%s %s: %v %v, want success", op, path, resp, err)
	}
	return resp
}

func runBenchShapes(b *testing.B, run func(b *testing.B, env *benchEnv, value string)) {
	for _, shape := range benchShapes {
		b.Run(fmt.Sprintf("secrets=%d/value=%s", shape.secrets, shape.value), func(b *testing.B) {
			env := newBenchEnv(b, shape.secrets)
			value := benchValue(shape.value)
			env.do(b, logical.UpdateOperation, "secrets/target", map[string]any{"data": map[string]any{"password": value}})
			b.ReportAllocs()
			b.ResetTimer()
			run(b, env, value)
		})
	}
}

func BenchmarkRead(b *testing.B) {
	runBenchShapes(b, func(b *testing.B, env *benchEnv, _ string) {
		for i := 0; i < b.N; i++ {
			env.do(b, logical.ReadOperation, "secrets/target", nil)
		}
	})
}

func BenchmarkWrite(b *testing.B) {
	runBenchShapes(b, func(b *testing.B, env *benchEnv, value string) {
		data := map[string]any{"data": map[string]any{"password": value}}
		for i := 0; i < b.N; i++ {
			env.do(b, logical.UpdateOperation, "secrets/target", data)
		}
	})
}

func BenchmarkCASWrite(b *testing.B) {
	runBenchShapes(b, func(b *testing.B, env *benchEnv, value string) {
		version := env.do(b, logical.ReadOperation, "secrets/target", nil).Data["version"].(int64)
		for i := 0; i < b.N; i++ {
			data := map[string]any{"data": map[string]any{"password": value}, "cas": version}
			version = env.do(b, logical.UpdateOperation, "secrets/target", data).Data["version"].(int64)
		}
	})
}

func BenchmarkList(b *testing.B) {
	runBenchShapes(b, func(b *testing.B, env *benchEnv, _ string) {
		for i := 0; i < b.N; i++ {
			env.do(b, logical.ListOperation, "secrets/folder/", nil)
		}
	})
}

// BenchmarkMetadataCacheFull fills one mount's metadata cache to its bound, with
// names and times shaped like real ones, and reports the heap it holds.
func BenchmarkMetadataCacheFull(b *testing.B) {
	var before, after runtime.MemStats
	for i := 0; i < b.N; i++ {
		runtime.GC()
		runtime.ReadMemStats(&before)
		cache := newMetadataCache(metadataCacheSize)
		for n := 0; n < metadataCacheSize; n++ {
			created := time.Now().UTC().Format(time.RFC3339Nano)
			updated := time.Now().UTC().Format(time.RFC3339Nano)
			cache.Add(fmt.Sprintf("team/app/s%06d", n), &secretMetadata{Version: 2, CreatedTime: created, UpdatedTime: updated})
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(cache)
	}
	held := float64(after.HeapAlloc) - float64(before.HeapAlloc)
	b.ReportMetric(held/(1<<20), "MiB/full-cache")
	b.ReportMetric(held/metadataCacheSize, "B/entry")
}
