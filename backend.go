package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/helper/locksutil"
	"github.com/hashicorp/vault/sdk/logical"
)

// version is what the plugin reports to Vault as its RunningVersion. Release builds
// set it with -ldflags "-X main.version=vX.Y.Z"; Vault refuses to run a plugin
// registered with a -version that differs from it.
var version = "v0.0.0-dev"

// backend is one mount of the engine. It holds no secret data: storage is the truth.
type backend struct {
	*framework.Backend

	// configLock guards config, the mount's settings as last read from or written
	// to storage; nil means "read storage on next use".
	configLock sync.RWMutex
	config     *configEntry

	// secretLocks serialise read-modify-write of one secret name without making
	// writers of different names wait on each other.
	secretLocks []*locksutil.LockEntry

	// configPath and secretPath are the paths whose writes HandleRequest and
	// HandleExistenceCheck answer before the framework (request.go).
	configPath, secretPath *framework.Path

	// metadata spares a write the storage reads of what it replaces
	// (metadata_cache.go).
	metadata *metadataCache
}

// Factory is the logical.Factory Vault calls once per mount.
func Factory(ctx context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
	b := newBackend()
	withCache := *conf
	withCache.System = newCachedSystemView(conf.System, time.Second)
	if err := b.Setup(ctx, &withCache); err != nil {
		return nil, err
	}
	return b, nil
}

func newBackend() *backend {
	b := &backend{secretLocks: locksutil.CreateLocks(), metadata: newMetadataCache(metadataCacheSize)}
	b.configPath, b.secretPath = b.pathConfig(), b.pathSecrets()
	b.Backend = &framework.Backend{
		Help:           backendHelp,
		BackendType:    logical.TypeLogical,
		RunningVersion: version,
		PathsSpecial: &logical.Paths{
			SealWrapStorage: []string{configStorageKey, secretStoragePrefix},
		},
		Paths:      []*framework.Path{b.configPath, b.secretPath, b.pathSecretsList()},
		Invalidate: b.invalidate,
	}
	return b
}

// invalidate is called on performance standbys and replicas when another node
// changed a storage key; what is cached of it must then be read again.
func (b *backend) invalidate(_ context.Context, key string) {
	switch {
	case key == configStorageKey:
		b.configLock.Lock()
		b.config = nil
		b.configLock.Unlock()
	case strings.HasPrefix(key, secretStoragePrefix):
		// Under the lock, so a writer that read storage before the change
		// cannot put the stale version back after this removal.
		name := key[len(secretStoragePrefix):]
		lock := locksutil.LockForKey(b.secretLocks, name)
		lock.Lock()
		b.metadata.Remove(name)
		lock.Unlock()
	}
}

// Storage keys are where v0.1.0 put its entries (testdata/v0.1.0), and stay
// there whatever the routes are called: keys built from a route would leave
// every stored entry behind in a release that renamed it.
const (
	configStorageKey    = "config"
	secretStoragePrefix = "secrets/"
)

// secretStorageKey is where the secret of the given name is stored; for a
// folder's name, ending in '/', the prefix its entries are listed under.
func secretStorageKey(name string) string {
	return secretStoragePrefix + name
}

// getJSON reads one storage entry into out; it reports false, not an error,
// when the key is absent.
func getJSON(ctx context.Context, s logical.Storage, key string, out any) (bool, error) {
	entry, err := s.Get(ctx, key)
	if err != nil || entry == nil {
		return false, err
	}
	if err := entry.DecodeJSON(out); err != nil {
		return false, fmt.Errorf("decoding %q: %w", key, err)
	}
	return true, nil
}

// putJSON writes value as one JSON storage entry.
func putJSON(ctx context.Context, s logical.Storage, key string, value any) error {
	entry, err := logical.StorageEntryJSON(key, value)
	if err != nil {
		return err
	}
	return s.Put(ctx, entry)
}

// operationPrefix names the engine in its help and begins each of its
// operation IDs in Vault's OpenAPI document; make new-plugin renames it.
const operationPrefix = "reference"

const backendHelp = `
The ` + operationPrefix + ` secrets engine stores static secrets: named sets of string
key/value pairs, versioned, with optional check-and-set writes.

Configure the mount at "config"; read, write, list and delete secrets under
"secrets/".
`
