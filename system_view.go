package main

import (
	"sync"
	"time"

	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"
)

// cachedSystemView answers from memory the two questions the framework asks
// Vault before a request to a path declared with Operations, to decide
// whether to forward it: the node's replication state (every request) and
// whether the mount is local (every write and delete). For an external plugin
// each is a gRPC round trip back to Vault; what the cache saves is measured
// by make bench (BENCHMARKS.md).
//
// It answers wrongly only if the node's replication state changes while this
// mount stays set up, and then for at most ttl: the framework would forward a
// request it should handle, or handle one it should forward. Vault sets its
// mounts up afresh whenever a node changes role (active, standby, performance
// standby, secondary), so this takes a change that Vault makes without doing
// so. Whether the mount is local is fixed when it is enabled, so that answer
// is kept for the mount's life.
type cachedSystemView struct {
	logical.SystemView
	ttl time.Duration

	mu      sync.Mutex
	state   consts.ReplicationState
	expires time.Time

	localMount func() bool
}

// newCachedSystemView asks Vault for the replication state again once ttl
// has passed since it last did.
func newCachedSystemView(system logical.SystemView, ttl time.Duration) *cachedSystemView {
	return &cachedSystemView{SystemView: system, ttl: ttl, localMount: sync.OnceValue(system.LocalMount)}
}

func (c *cachedSystemView) LocalMount() bool { return c.localMount() }

func (c *cachedSystemView) ReplicationState() consts.ReplicationState {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := time.Now(); now.After(c.expires) {
		c.state = c.SystemView.ReplicationState()
		c.expires = now.Add(c.ttl)
	}
	return c.state
}
