package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// userRecord is stored for each user the plugin issued, from just after
// Redis made it until its lease is revoked: the sweep deletes a user of
// this mount that has none, and one past the longest its lease could live.
type userRecord struct {
	Role     string `json:"role"`
	IssuedAt int64  `json:"issued_at"`
	// MaxTTL is the role's max_ttl in seconds when the user was issued; 0
	// is the mount's, whatever it is when the sweep runs.
	MaxTTL int64 `json:"max_ttl"`
}

func userStorageKey(username string) string { return "users/" + username }

// sweepGrace is how long past its lease's longest life a user is left to
// the server's own revocation before the sweep deletes it: a server that
// revokes late, or a clock that differs between nodes, must not race it.
const sweepGrace = time.Minute

// sweep deletes the users of this mount that no lease will ever revoke,
// which a lease's revocation cannot reach:
//   - a user without a record: issued after the snapshot the server was
//     restored from, whose lease the restore forgot;
//   - a user past its lease's longest life plus sweepGrace: issued by a
//     node that died before it stored the lease.
//
// Vault calls it with the WAL rollback, about once a minute, on the active
// node. Users whose create is in flight have a WAL entry, and are left to
// it: Redis's users are listed first, then the WAL entries, then the
// records, so that a create that made its user before the first listing
// shows in one of the other two.
func (b *backend) sweep(ctx context.Context, req *logical.Request) error {
	if b.usernameTag == "" {
		return nil // no mount identity: its users cannot be told from others'
	}
	err := b.withConn(ctx, req.Storage, func(conn *connection) error {
		users, err := conn.ACLUsers(ctx).Result()
		if err != nil {
			return fmt.Errorf("ACL USERS: %w", err)
		}
		inFlight, err := walUsers(ctx, req.Storage)
		if err != nil {
			return err
		}
		var errs []error
		for _, user := range users {
			if !strings.HasPrefix(user, b.userPrefix()) || inFlight[user] {
				continue
			}
			if stale, err := b.outlivedItsLease(ctx, req.Storage, user); err != nil || !stale {
				errs = append(errs, err)
				continue
			}
			if err := deleteUser(ctx, conn, user); err != nil {
				errs = append(errs, err)
				continue
			}
			errs = append(errs, req.Storage.Delete(ctx, userStorageKey(user)))
		}
		return errors.Join(errs...)
	})
	if errors.Is(err, errNoConfig) {
		return nil
	}
	return err
}

// outlivedItsLease tells whether no lease can still need user: it has no
// record, or is past the longest its lease could live.
func (b *backend) outlivedItsLease(ctx context.Context, s logical.Storage, user string) (bool, error) {
	var rec userRecord
	found, err := getJSON(ctx, s, userStorageKey(user), &rec)
	if err != nil {
		return false, err
	}
	if !found {
		return true, nil
	}
	maxTTL := seconds(rec.MaxTTL)
	if maxTTL == 0 {
		maxTTL = b.System().MaxLeaseTTL()
	}
	return time.Since(time.Unix(rec.IssuedAt, 0)) > maxTTL+sweepGrace, nil
}

// walUsers are the users named by a WAL entry: creates in flight, or
// abandoned ones the rollback will undo.
func walUsers(ctx context.Context, s logical.Storage) (map[string]bool, error) {
	ids, err := framework.ListWAL(ctx, s)
	if err != nil {
		return nil, err
	}
	users := map[string]bool{}
	for _, id := range ids {
		entry, err := framework.GetWAL(ctx, s, id)
		if err != nil {
			return nil, err
		}
		if entry == nil || entry.Kind != walKindUser {
			continue
		}
		var w userWAL
		if err := decodeMap(entry.Data, &w); err != nil {
			return nil, err
		}
		users[w.Username] = true
	}
	return users, nil
}
