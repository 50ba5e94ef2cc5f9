package main

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"
)

type countingSystemView struct {
	logical.StaticSystemView
	replicationStateCalls, localMountCalls atomic.Int64
}

func (s *countingSystemView) ReplicationState() consts.ReplicationState {
	s.replicationStateCalls.Add(1)
	return s.StaticSystemView.ReplicationState()
}

func (s *countingSystemView) LocalMount() bool {
	s.localMountCalls.Add(1)
	return s.StaticSystemView.LocalMount()
}

// The framework asks Vault on every write whether the mount is local and in
// which replication state the node is: each a gRPC round trip for an external
// plugin.
func TestSystemView_AskedOfVaultOnce(t *testing.T) {
	system := &countingSystemView{}
	b, err := Factory(context.Background(), &logical.BackendConfig{
		Logger: hclog.NewNullLogger(), System: system, StorageView: &logical.InmemStorage{},
	})
	if err != nil {
		t.Fatal(err)
	}
	storage := &logical.InmemStorage{}
	op := logical.CreateOperation
	write := func() {
		resp, err := b.HandleRequest(context.Background(), &logical.Request{
			Operation: op, Path: "secrets/app", Storage: storage,
			Data: map[string]any{"data": map[string]any{"k": "v"}},
		})
		if err != nil || resp.IsError() {
			t.Fatalf("write: %v %v, want success", resp, err)
		}
		op = logical.UpdateOperation
	}
	for i := 0; i < 100; i++ {
		write()
	}
	if n := system.replicationStateCalls.Load(); n != 1 {
		t.Fatalf("100 writes asked Vault for the replication state %d times, want 1", n)
	}
	if n := system.localMountCalls.Load(); n != 1 {
		t.Fatalf("100 writes asked Vault whether the mount is local %d times, want 1", n)
	}
	cache := b.(*backend).System().(*cachedSystemView)
	cache.mu.Lock()
	cache.ttl, cache.expires = 0, time.Time{} // from now on every request asks again
	cache.mu.Unlock()
	write()
	write()
	if n := system.replicationStateCalls.Load(); n != 3 {
		t.Fatalf("after expiry: %d replication state calls, want 3", n)
	}
	if n := system.localMountCalls.Load(); n != 1 {
		t.Fatalf("the mount's locality was asked again: %d calls, want 1", n)
	}
}
