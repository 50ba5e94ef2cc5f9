package main

import (
	"context"
	"fmt"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/hashicorp/vault/sdk/logical"
)

// metadataCacheSize bounds the metadata cache of one mount. A name that fell
// out is read again from storage. What a full cache holds in memory is
// measured by BenchmarkMetadataCacheFull (make bench, BENCHMARKS.md).
const metadataCacheSize = 10000

// metadataCache maps a secret name to the metadata of its stored version, or
// to nil when it is known to be absent, so that an update costs one storage
// call instead of three. Values never enter it. It changes only under the
// name's lock, from what storage returned or accepted, and forgets a name on
// any storage error. It needs no other care in a cluster: Vault builds the
// mount anew on the node that becomes active and after a snapshot restore,
// and calls Invalidate where another node wrote. A write through sys/raw
// bypasses the plugin: reload it after one.
type metadataCache = lru.Cache[string, *secretMetadata]

func newMetadataCache(size int) *metadataCache {
	cache, err := lru.New[string, *secretMetadata](size)
	if err != nil {
		panic(err) // only a size below 1 fails
	}
	return cache
}

// secretExists tells Vault whether a write creates or updates, so a policy can
// grant "create" without "update". It reads the metadata cache without the
// name's lock: the handler checks again under the lock, so a stale answer
// costs the caller a retry, never an overwrite. A miss is not filled here: a
// fill outside the lock could race a write and cache the version it replaced.
func (b *backend) secretExists(ctx context.Context, s logical.Storage, name string) (bool, error) {
	if validateName("name", name) != nil {
		// The handler answers with the 400; storage would refuse such a key with a 500.
		return false, nil
	}
	if meta, ok := b.metadata.Get(name); ok {
		return meta != nil, nil
	}
	entry, err := s.Get(ctx, secretStorageKey(name))
	if err != nil {
		return false, fmt.Errorf("reading secret: %w", err)
	}
	return entry != nil, nil
}

// lockedMetadata returns the metadata of the stored version of a secret, nil
// when there is none, from the cache or else from storage, filling the cache.
// The caller holds the name's lock, so no write can land between the storage
// read and the fill.
func (b *backend) lockedMetadata(ctx context.Context, s logical.Storage, name string) (*secretMetadata, error) {
	if meta, ok := b.metadata.Get(name); ok {
		return meta, nil
	}
	entry, err := getSecret(ctx, s, secretStorageKey(name), false)
	if err != nil {
		return nil, fmt.Errorf("reading secret: %w", err)
	}
	var meta *secretMetadata
	if entry != nil {
		meta = &entry.secretMetadata
	}
	b.metadata.Add(name, meta)
	return meta, nil
}
