package main

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// A snapshot restore rewinds the plugin's storage and the server's leases,
// not Redis: users issued since have no record and no lease. The sweep
// deletes them, and nothing of a live lease's, a create in flight's or
// another mount's.
func TestSweep_DeletesUsersThatNoLeaseWillRevoke(t *testing.T) {
	r := startRedis(t)
	e := newEnv(t, r, time.Minute)
	other := newEnv(t, r, time.Minute)
	for _, env := range []*testEnv{e, other} {
		env.must(logical.UpdateOperation, "roles/r", map[string]any{"max_ttl": 60})
	}
	kept, keptPassword, _ := e.issue("r")
	forgotten, _, _ := e.issue("r")
	othersUser, othersPassword, _ := other.issue("r")
	ctx := context.Background()
	if err := e.storage.Delete(ctx, userStorageKey(forgotten)); err != nil {
		t.Fatal(err)
	}
	// A create in flight: its WAL entry is written, its record not yet.
	inFlight, err := e.b.newUsername("r")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := framework.PutWAL(ctx, e.storage, walKindUser, &userWAL{Username: inFlight}); err != nil {
		t.Fatal(err)
	}
	if err := r.Observer().ACLSetUser(ctx, inFlight, "on", ">p").Err(); err != nil {
		t.Fatal(err)
	}
	// Past its lease's longest life: a node that made it died before it
	// stored the lease.
	stale, _, _ := e.issue("r")
	if err := putJSON(ctx, e.storage, userStorageKey(stale), userRecord{Role: "r", IssuedAt: time.Now().Add(-60*time.Second - sweepGrace - time.Second).Unix(), MaxTTL: 60}); err != nil {
		t.Fatal(err)
	}

	if err := e.rollback(false); err != nil {
		t.Fatal(err)
	}
	users := pluginUsers(t, r)
	for _, gone := range []string{forgotten, stale} {
		if slices.Contains(users, gone) {
			t.Errorf("users after the sweep: got %s still there, want it deleted", gone)
		}
	}
	for _, there := range []string{kept, othersUser, inFlight} {
		if !slices.Contains(users, there) {
			t.Errorf("users after the sweep: got %v, want %s kept", users, there)
		}
	}
	mustLogIn(t, r, kept, keptPassword)
	mustLogIn(t, r, othersUser, othersPassword)
}

// A user of a role with no max_ttl may live as long as the mount's maximum
// lease TTL, as that is when the sweep counts from.
func TestSweep_CountsFromTheMountsMaximumWhenTheRoleHasNone(t *testing.T) {
	e := newEnv(t, sharedRedis, time.Minute)
	e.must(logical.UpdateOperation, "roles/r", nil)
	user, password, _ := e.issue("r")
	ctx := context.Background()
	twoMinutesAgo := userRecord{Role: "r", IssuedAt: time.Now().Add(-2 * time.Minute).Unix()}
	if err := putJSON(ctx, e.storage, userStorageKey(user), twoMinutesAgo); err != nil {
		t.Fatal(err)
	}
	if err := e.rollback(false); err != nil {
		t.Fatal(err)
	}
	mustLogIn(t, sharedRedis, user, password)
}

func TestRevoke_DeletesTheUsersRecord(t *testing.T) {
	e := newEnv(t, sharedRedis, time.Minute)
	e.must(logical.UpdateOperation, "roles/r", nil)
	user, _, secret := e.issue("r")
	if entry, err := e.storage.Get(context.Background(), userStorageKey(user)); err != nil || entry == nil {
		t.Fatalf("record of an issued user: got %v, %v; want one", entry, err)
	}
	if _, err := e.lease(logical.RevokeOperation, secret); err != nil {
		t.Fatal(err)
	}
	if entry, err := e.storage.Get(context.Background(), userStorageKey(user)); err != nil || entry != nil {
		t.Fatalf("record after revoke: got %v, %v; want none", entry, err)
	}
}
