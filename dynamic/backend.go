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
	"github.com/redis/go-redis/v9"
)

// version is what Vault reports as the plugin's running version; the
// Makefile sets it with -ldflags "-X main.version=...".
var version = "v0.0.0-dev"

// walRollbackMinAge is how old a write-ahead log entry must be before the
// rollback takes its operation for abandoned: longer than any create or
// rotation takes. A string, so that tests can shorten it with -ldflags -X;
// the release build keeps this default.
var walRollbackMinAge = "10m"

// backend issues Redis ACL users with leases.
type backend struct {
	*framework.Backend

	// roleLocks serialise writes and deletes of one role; creates of
	// credentials read a role once and need no lock.
	roleLocks []*locksutil.LockEntry

	// connLock is held for reading while a request uses conn, and for
	// writing while config or rotate-root replaces it: a rotation never
	// changes the admin password under a create or a revoke in flight.
	connLock sync.RWMutex
	conn     *connection

	// usernameTag tells this mount's users from other mounts' on the same
	// Redis (from the mount's BackendUUID); empty, the sweep does nothing.
	usernameTag string
}

// Setup is the framework's, and takes the mount's identity for its users'
// names.
func (b *backend) Setup(ctx context.Context, conf *logical.BackendConfig) error {
	b.usernameTag = strings.ReplaceAll(conf.BackendUUID, "-", "")
	if len(b.usernameTag) > 8 {
		b.usernameTag = b.usernameTag[:8]
	}
	return b.Backend.Setup(ctx, conf)
}

// userPrefix begins the name of every user this mount makes.
func (b *backend) userPrefix() string {
	if b.usernameTag == "" {
		return usernamePrefix
	}
	return usernamePrefix + b.usernameTag + "-"
}

// connection is a client for the stored config, and what the config says
// to do after each change of users.
type connection struct {
	*redis.Client
	saveACL bool
}

// save makes a change of users survive a restart of Redis, when the config
// asks for it (a Redis that loads its users from an aclfile).
func (c *connection) save(ctx context.Context) error {
	if !c.saveACL {
		return nil
	}
	if err := c.Do(ctx, "ACL", "SAVE").Err(); err != nil {
		return fmt.Errorf("ACL SAVE: %w", err)
	}
	return nil
}

// Factory is the logical.Factory Vault calls once per mount.
func Factory(ctx context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
	minAge, err := time.ParseDuration(walRollbackMinAge)
	if err != nil || minAge <= 0 {
		return nil, fmt.Errorf("built with walRollbackMinAge %q, want a positive duration", walRollbackMinAge)
	}
	b := newBackend(minAge)
	if err := b.Setup(ctx, conf); err != nil {
		return nil, err
	}
	return b, nil
}

func newBackend(walMinAge time.Duration) *backend {
	b := &backend{roleLocks: locksutil.CreateLocks()}
	b.Backend = &framework.Backend{
		Help:           backendHelp,
		BackendType:    logical.TypeLogical,
		RunningVersion: version,
		PathsSpecial: &logical.Paths{
			// The admin password, and the passwords a rotation holds.
			SealWrapStorage: []string{configStorageKey, "wal/"},
		},
		Paths: []*framework.Path{
			b.pathConfig(), b.pathRotateRoot(), b.pathRoles(), b.pathRolesList(), b.pathCreds(),
		},
		Secrets:           []*framework.Secret{b.redisUser()},
		WALRollback:       b.walRollback,
		PeriodicFunc:      b.sweep,
		WALRollbackMinAge: walMinAge,
		Invalidate:        b.invalidate,
		Clean:             func(context.Context) { b.resetConn(nil) },
	}
	return b
}

// invalidate is called on performance standbys and replicas when another
// node changed a storage key: a new config means a new connection.
func (b *backend) invalidate(_ context.Context, key string) {
	if key == configStorageKey {
		b.resetConn(nil)
	}
}

// resetConn replaces the connection, closing the one it replaces.
func (b *backend) resetConn(c *connection) {
	b.connLock.Lock()
	defer b.connLock.Unlock()
	b.swapConn(c)
}

// swapConn is resetConn for a caller that holds connLock.
func (b *backend) swapConn(c *connection) {
	if b.conn != nil {
		_ = b.conn.Close()
	}
	b.conn = c
}

// errNoConfig is the caller's mistake: nothing can reach Redis before config
// is written.
var errNoConfig = fmt.Errorf("the mount has no config: write %s first", configRoute)

// withConn runs do with a client for the stored config. The first use
// after a change of config connects under the write lock, so one request
// connects and the others wait for it.
func (b *backend) withConn(ctx context.Context, s logical.Storage, do func(*connection) error) error {
	b.connLock.RLock()
	if c := b.conn; c != nil {
		defer b.connLock.RUnlock()
		return do(c)
	}
	b.connLock.RUnlock()

	b.connLock.Lock()
	defer b.connLock.Unlock()
	c, err := b.lockedConn(ctx, s)
	if err != nil {
		return err
	}
	return do(c)
}

// lockedConn returns the client, connecting it from the stored config if
// there is none; the caller holds connLock for writing.
func (b *backend) lockedConn(ctx context.Context, s logical.Storage) (*connection, error) {
	if b.conn != nil {
		return b.conn, nil
	}
	cfg, err := readConfig(ctx, s)
	if err != nil {
		return nil, err
	}
	if cfg == nil {
		return nil, errNoConfig
	}
	b.conn = cfg.connect()
	return b.conn, nil
}

// operationPrefix names the engine in its help and begins each of its
// operation IDs in Vault's OpenAPI document; make new-plugin renames it.
const operationPrefix = "redis-reference"

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

// entryExists is the existence check of a path whose entry is stored under
// key(d): a write to it is a create when there is none.
func entryExists(key func(*framework.FieldData) string) framework.ExistenceFunc {
	return func(ctx context.Context, req *logical.Request, d *framework.FieldData) (bool, error) {
		entry, err := req.Storage.Get(ctx, key(d))
		return entry != nil, err
	}
}

const backendHelp = `
The ` + operationPrefix + ` secrets engine issues Redis ACL users with leases.

Write the Redis address and an admin user at "config", define what a user may
do at "roles/<name>", and read "creds/<name>" for a new user and password that
live as long as their lease. Revoking the lease, or letting it expire, deletes
the user.
`
