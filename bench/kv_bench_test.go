// Package bench measures HashiCorp's KV engine in process, under the same
// benchmark names and shapes as the plugin's own bench_test.go, so benchstat can
// compare them. KV_VERSION=1 or 2 chooses the KV engine's version.
package bench

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	kv "github.com/hashicorp/vault-plugin-secrets-kv"
	"github.com/hashicorp/vault/sdk/logical"
)

var shapes = []struct {
	secrets int
	value   string
}{
	{1000, "small"}, {1000, "64KiB"}, {100000, "small"}, {100000, "64KiB"},
}

func value(size string) string {
	if size == "64KiB" {
		return strings.Repeat("v", 64<<10)
	}
	return "s3cr3t-value"
}

// engine maps the plugin's paths and bodies onto one version of the KV engine.
type engine struct {
	version string
	backend logical.Backend
	storage logical.Storage
}

func kvVersion() string {
	if v := os.Getenv("KV_VERSION"); v != "" {
		return v
	}
	return "1"
}

func (e *engine) dataPath(name string) string {
	if e.version == "2" {
		return "data/" + name
	}
	return name
}

func (e *engine) listPath(folder string) string {
	if e.version == "2" {
		return "metadata/" + folder
	}
	return folder
}

func (e *engine) body(v string, cas int64) map[string]interface{} {
	if e.version == "2" {
		body := map[string]interface{}{"data": map[string]interface{}{"password": v}}
		if cas >= 0 {
			body["options"] = map[string]interface{}{"cas": cas}
		}
		return body
	}
	return map[string]interface{}{"password": v}
}

var engines = map[int]*engine{}

func newEngine(b *testing.B, secrets int) *engine {
	if e, ok := engines[secrets]; ok {
		return e
	}
	ctx := context.Background()
	conf := &logical.BackendConfig{
		Logger:      hclog.NewNullLogger(),
		System:      logical.TestSystemView(),
		StorageView: &logical.InmemStorage{},
		BackendUUID: "bench",
		Config:      map[string]string{"version": kvVersion()},
	}
	backend, err := kv.Factory(ctx, conf)
	if err != nil {
		b.Fatal(err)
	}
	e := &engine{version: kvVersion(), backend: backend, storage: conf.StorageView}
	// Version 2 upgrades its storage layout in the background after mounting.
	for {
		req := &logical.Request{Operation: logical.ReadOperation, Path: "config", Storage: e.storage}
		if resp, err := backend.HandleRequest(ctx, req); e.version == "1" || (err == nil && !resp.IsError()) {
			break
		}
	}
	for i := 0; i < secrets; i++ {
		e.do(b, logical.CreateOperation, e.dataPath(fmt.Sprintf("folder/s%06d", i)), e.body(value("small"), -1))
	}
	engines[secrets] = e
	return e
}

func (e *engine) do(b *testing.B, op logical.Operation, path string, data map[string]interface{}) *logical.Response {
	ctx := context.Background()
	req := &logical.Request{Operation: op, Path: path, Data: data, Storage: e.storage}
	if op == logical.CreateOperation || op == logical.UpdateOperation {
		found, exists, err := e.backend.HandleExistenceCheck(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		if found {
			req.Operation = logical.CreateOperation
			if exists {
				req.Operation = logical.UpdateOperation
			}
		}
	}
	resp, err := e.backend.HandleRequest(ctx, req)
	if err != nil || resp.IsError() {
		b.Fatalf("%s %s: %v %v", op, path, resp, err)
	}
	return resp
}

func runShapes(b *testing.B, run func(b *testing.B, e *engine, v string)) {
	for _, shape := range shapes {
		b.Run(fmt.Sprintf("secrets=%d/value=%s", shape.secrets, shape.value), func(b *testing.B) {
			e := newEngine(b, shape.secrets)
			v := value(shape.value)
			e.do(b, logical.UpdateOperation, e.dataPath("target"), e.body(v, -1))
			b.ReportAllocs()
			b.ResetTimer()
			run(b, e, v)
		})
	}
}

func BenchmarkRead(b *testing.B) {
	runShapes(b, func(b *testing.B, e *engine, _ string) {
		for i := 0; i < b.N; i++ {
			e.do(b, logical.ReadOperation, e.dataPath("target"), nil)
		}
	})
}

func BenchmarkWrite(b *testing.B) {
	runShapes(b, func(b *testing.B, e *engine, v string) {
		body := e.body(v, -1)
		for i := 0; i < b.N; i++ {
			e.do(b, logical.UpdateOperation, e.dataPath("target"), body)
		}
	})
}

func BenchmarkCASWrite(b *testing.B) {
	if kvVersion() == "1" {
		b.Skip("KV version 1 has no check-and-set")
	}
	runShapes(b, func(b *testing.B, e *engine, v string) {
		version := e.do(b, logical.ReadOperation, e.dataPath("target"), nil).Data["metadata"].(map[string]interface{})["version"].(uint64)
		for i := 0; i < b.N; i++ {
			resp := e.do(b, logical.UpdateOperation, e.dataPath("target"), e.body(v, int64(version)))
			version = resp.Data["version"].(uint64)
		}
	})
}

func BenchmarkList(b *testing.B) {
	runShapes(b, func(b *testing.B, e *engine, _ string) {
		for i := 0; i < b.N; i++ {
			e.do(b, logical.ListOperation, e.listPath("folder/"), nil)
		}
	})
}
