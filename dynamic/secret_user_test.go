package main

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

func TestRevoke_DeletesTheUser(t *testing.T) {
	e := newEnv(t, sharedRedis, time.Minute)
	e.must(logical.UpdateOperation, "roles/r", nil)
	user, password, secret := e.issue("r")
	mustLogIn(t, sharedRedis, user, password)
	if _, err := e.lease(logical.RevokeOperation, secret); err != nil {
		t.Fatalf("revoke: got %v, want success", err)
	}
	mustNotLogIn(t, sharedRedis, user, password)
	if slices.Contains(pluginUsers(t, sharedRedis), user) {
		t.Fatalf("ACL USERS after revoke: got %s still listed, want it gone", user)
	}
}

// Vault retries a revocation until it succeeds; a user someone already
// deleted must not block it, nor the mount's disable.
func TestRevoke_AUserAlreadyGoneIsRevoked(t *testing.T) {
	e := newEnv(t, sharedRedis, time.Minute)
	e.must(logical.UpdateOperation, "roles/r", nil)
	_, _, secret := e.issue("r")
	for i := range 2 {
		if _, err := e.lease(logical.RevokeOperation, secret); err != nil {
			t.Fatalf("revoke %d of the same lease: got %v, want success", i+1, err)
		}
	}
}

func TestRevoke_NeedsNoRoleNorTheAdminPasswordItWasIssuedWith(t *testing.T) {
	r := startRedis(t)
	e := newEnv(t, r, time.Minute)
	e.must(logical.UpdateOperation, "roles/a", nil)
	e.must(logical.UpdateOperation, "roles/b", nil)
	userA, passwordA, leaseA := e.issue("a")
	userB, passwordB, leaseB := e.issue("b")
	e.must(logical.DeleteOperation, "roles/a", nil)
	e.must(logical.UpdateOperation, "roles/b", map[string]any{"commands": "+get", "ttl": 5})
	e.must(logical.UpdateOperation, "rotate-root", nil)
	for _, tc := range []struct {
		user, password string
		lease          *logical.Secret
	}{{userA, passwordA, leaseA}, {userB, passwordB, leaseB}} {
		if _, err := e.lease(logical.RevokeOperation, tc.lease); err != nil {
			t.Fatalf("revoke of %s after its role changed and root rotated: got %v, want success", tc.user, err)
		}
		mustNotLogIn(t, r, tc.user, tc.password)
	}
}

func TestRevoke_FailsWhileRedisIsDownAndSucceedsOnceBack(t *testing.T) {
	r := startRedis(t)
	e := newEnv(t, r, time.Minute)
	e.must(logical.UpdateOperation, "roles/r", nil)
	user, password, secret := e.issue("r")
	r.Stop()
	if _, err := e.lease(logical.RevokeOperation, secret); err == nil {
		t.Fatal("revoke with Redis stopped: got success, want an error, for Vault to retry")
	}
	if err := r.Restart(); err != nil {
		t.Fatal(err)
	}
	mustLogIn(t, r, user, password) // ACL SAVE kept it across the restart
	if _, err := e.lease(logical.RevokeOperation, secret); err != nil {
		t.Fatalf("revoke once Redis is back: got %v, want success", err)
	}
	mustNotLogIn(t, r, user, password)
}

func TestRevoke_ALeaseWithoutItsUsernameIsAnError(t *testing.T) {
	e := newEnv(t, sharedRedis, time.Minute)
	secret := &logical.Secret{InternalData: map[string]any{"secret_type": secretTypeUser}}
	if _, err := e.lease(logical.RevokeOperation, secret); err == nil || !strings.Contains(err.Error(), "no username") {
		t.Fatalf("revoke of a lease without a username: got %v, want an error saying so", err)
	}
}

func TestRenew_ExtendsByTheLeasesTTLWithinItsMaxTTL(t *testing.T) {
	e := newEnv(t, sharedRedis, time.Minute)
	e.must(logical.UpdateOperation, "roles/r", map[string]any{"ttl": 30, "max_ttl": 100})
	_, _, secret := e.issue("r")
	// The role changes and goes: renewals keep what the lease was issued with.
	e.must(logical.DeleteOperation, "roles/r", nil)
	for _, tc := range []struct {
		age  time.Duration
		want time.Duration
	}{{0, 30 * time.Second}, {80 * time.Second, 20 * time.Second}} {
		secret.IssueTime = time.Now().Add(-tc.age)
		resp, err := e.lease(logical.RenewOperation, secret)
		if err != nil || resp.IsError() {
			t.Fatalf("renew at %v: got %v, %v; want success", tc.age, resp, err)
		}
		if got := resp.Secret.TTL; got < tc.want-time.Second || got > tc.want {
			t.Fatalf("renew at %v of a lease with ttl 30s and max_ttl 100s: got ttl %v, want %v", tc.age, got, tc.want)
		}
	}
	secret.IssueTime = time.Now().Add(-101 * time.Second)
	resp, err := e.lease(logical.RenewOperation, secret)
	if err != nil || !resp.IsError() || !strings.Contains(resp.Error().Error(), "past the max TTL") {
		t.Fatalf("renew past max_ttl: got %v, %v; want a refusal saying it is past the max TTL", resp, err)
	}
}

func TestRenew_KeepsTheUserWorking(t *testing.T) {
	e := newEnv(t, sharedRedis, time.Minute)
	e.must(logical.UpdateOperation, "roles/r", nil)
	user, password, secret := e.issue("r")
	if _, err := e.lease(logical.RenewOperation, secret); err != nil {
		t.Fatal(err)
	}
	mustLogIn(t, sharedRedis, user, password)
	if err := sharedRedis.CanLogIn(context.Background(), user, password+"x"); err == nil {
		t.Fatalf("AUTH %s with a wrong password: got success, want WRONGPASS", user)
	}
}
