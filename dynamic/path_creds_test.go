package main

import (
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

func TestCreds_IssuedUserHasTheRolesRules(t *testing.T) {
	e := newEnv(t, sharedRedis, time.Minute)
	e.must(logical.UpdateOperation, "roles/cache", map[string]any{"key_patterns": "cache:*", "commands": "+get,+set"})
	user, password, _ := e.issue("cache")
	if want := e.b.userPrefix() + "cache-"; !strings.HasPrefix(user, want) || !strings.HasPrefix(want, usernamePrefix) {
		t.Fatalf("username: got %q, want it to begin with %q, the mount's prefix and the role", user, want)
	}
	c := sharedRedis.Client(user, password)
	defer c.Close()
	ctx := context.Background()
	if err := c.Set(ctx, "cache:a", "1", 0).Err(); err != nil {
		t.Fatalf("SET cache:a as the issued user: got %v, want it allowed", err)
	}
	for _, cmd := range [][]any{{"SET", "other:a", "1"}, {"DEL", "cache:a"}} {
		if err := c.Do(ctx, cmd...).Err(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
			t.Fatalf("%v as the issued user: got %v, want NOPERM", cmd, err)
		}
	}
}

func TestCreds_LeaseCarriesWhatRenewAndRevokeNeed(t *testing.T) {
	e := newEnv(t, sharedRedis, time.Minute)
	e.must(logical.UpdateOperation, "roles/r", map[string]any{"ttl": 30, "max_ttl": 90})
	user, _, secret := e.issue("r")
	lease, err := parseLeaseData(secret.InternalData)
	if err != nil {
		t.Fatal(err)
	}
	if want := (leaseData{Username: user, Role: "r", TTL: 30, MaxTTL: 90}); *lease != want {
		t.Fatalf("lease data: got %+v, want %+v", *lease, want)
	}
	if secret.TTL != 30*time.Second || secret.MaxTTL != 90*time.Second || !secret.Renewable {
		t.Fatalf("lease: got ttl %v, max_ttl %v, renewable %v; want 30s, 1m30s, true", secret.TTL, secret.MaxTTL, secret.Renewable)
	}
	if wal := e.walEntries(); len(wal) != 0 {
		t.Fatalf("WAL entries after an issue: got %v, want none", wal)
	}
}

func TestCreds_RefusesWhatCannotBeIssued(t *testing.T) {
	e := newEnv(t, sharedRedis, time.Minute)
	e.refused(logical.ReadOperation, "creds/nosuchrole", nil, `name: no role "nosuchrole"`)
	e.must(logical.UpdateOperation, "roles/r", nil)
	e.must(logical.DeleteOperation, "config", nil)
	e.refused(logical.ReadOperation, "creds/r", nil, "write config first")
}

// A create whose end never reached storage (the WAL entry's delete failed,
// as when the plugin dies) leaves a user without a lease: the rollback
// deletes it, once the entry is old enough.
func TestCreds_RollbackDeletesAUserWhoseCreateNeverCompleted(t *testing.T) {
	e := newEnv(t, sharedRedis, time.Minute)
	before := e.failedCreate(t, &e.storage.failDelete, "wal/")
	halfMade := pluginUsers(t, sharedRedis)
	if len(halfMade) != len(before)+1 {
		t.Fatalf("Redis's users after the failed create: got %v, want one more than %v", halfMade, before)
	}
	if err := e.rollback(false); err != nil {
		t.Fatal(err)
	}
	if got := pluginUsers(t, sharedRedis); !slices.Equal(got, halfMade) {
		t.Fatalf("users after a rollback before the entry's minimum age: got %v, want %v kept", got, halfMade)
	}
	if err := e.rollback(true); err != nil {
		t.Fatal(err)
	}
	if got := pluginUsers(t, sharedRedis); !slices.Equal(got, before) {
		t.Fatalf("users after the rollback: got %v, want %v", got, before)
	}
	if wal := e.walEntries(); len(wal) != 0 {
		t.Fatalf("WAL entries after the rollback: got %v, want none", wal)
	}
}

// A create whose record storage refuses, as it does on an active node
// deposed mid-create, deletes the user it made at once: the new active node
// may have rolled its WAL entry back before the user was made.
func TestCreds_FailedCreateDeletesItsUserAtOnce(t *testing.T) {
	e := newEnv(t, sharedRedis, time.Minute)
	before := e.failedCreate(t, &e.storage.failPut, userStorageKey(""))
	if got := pluginUsers(t, sharedRedis); !slices.Equal(got, before) {
		t.Fatalf("users after the failed create, before any rollback: got %v, want %v", got, before)
	}
}

// A create that took as long as the rollback waits may have had its user
// deleted under it: it must not hand out a lease for that user.
func TestCreds_SlowerThanTheRollbackWaitsIsRefused(t *testing.T) {
	e := newEnv(t, sharedRedis, time.Second)
	e.must(logical.UpdateOperation, "roles/r", nil)
	before := pluginUsers(t, sharedRedis)
	resp, err := e.do(logical.ReadOperation, "creds/r", nil)
	if err == nil || !strings.Contains(err.Error(), "as long as the rollback waits") {
		t.Fatalf("creds with a rollback minimum age of 1s: got %v, %v; want an error saying it took as long as the rollback waits", resp, err)
	}
	if got := pluginUsers(t, sharedRedis); !slices.Equal(got, before) {
		t.Fatalf("users after the refused create: got %v, want %v", got, before)
	}
}

// failedCreate writes role r and issues a user of it while storage refuses
// the keys under prefix through fail, which must make the create fail; it
// returns Redis's users from before the create.
func (e *testEnv) failedCreate(t *testing.T, fail *atomic.Pointer[string], prefix string) []string {
	t.Helper()
	e.must(logical.UpdateOperation, "roles/r", nil)
	before := pluginUsers(t, sharedRedis)
	fail.Store(&prefix)
	defer fail.Store(nil)
	if resp, err := e.do(logical.ReadOperation, "creds/r", nil); err == nil {
		t.Fatalf("creds with storage refusing %s: got %v, want an error", prefix, resp)
	}
	return before
}
