package main

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/vault-reference/vault-plugin-secrets-reference/dynamic/redistest"
)

func storedPassword(t *testing.T, e *testEnv) string {
	t.Helper()
	cfg, err := readConfig(context.Background(), e.storage)
	if err != nil || cfg == nil {
		t.Fatalf("stored config: got %v, %v; want one", cfg, err)
	}
	return cfg.Password
}

func TestRotateRoot_OnlyVaultKnowsTheNewPassword(t *testing.T) {
	r := startRedis(t)
	e := newEnv(t, r, time.Minute)
	e.must(logical.UpdateOperation, "rotate-root", nil)
	rotated := storedPassword(t, e)
	if rotated == r.PluginPassword {
		t.Fatal("stored password after rotate-root: got the old one, want a new one")
	}
	mustNotLogIn(t, r, redistest.PluginUser, r.PluginPassword)
	mustLogIn(t, r, redistest.PluginUser, rotated)
	if wal := e.walEntries(); len(wal) != 0 {
		t.Fatalf("WAL entries after rotate-root: got %v, want none", wal)
	}
	// The plugin goes on with the new password, also after Redis restarts.
	r.Stop()
	if err := r.Restart(); err != nil {
		t.Fatal(err)
	}
	e.must(logical.UpdateOperation, "roles/r", nil)
	user, password, secret := e.issue("r")
	mustLogIn(t, r, user, password)
	if _, err := e.lease(logical.RevokeOperation, secret); err != nil {
		t.Fatalf("revoke after rotate-root and a restart of Redis: got %v, want success", err)
	}
}

func TestRotateRoot_NeedsSaveACL(t *testing.T) {
	r := startRedis(t)
	e := newEnv(t, r, time.Minute)
	e.must(logical.UpdateOperation, "config", map[string]any{"save_acl": false})
	e.refused(logical.UpdateOperation, "rotate-root", nil, "save_acl")
	mustLogIn(t, r, redistest.PluginUser, r.PluginPassword)
	e.must(logical.DeleteOperation, "config", nil)
	e.refused(logical.UpdateOperation, "rotate-root", nil, "write config first")
}

// A rotation that failed to store the new password leaves Redis with both:
// the plugin still logs in with the old one, and the rollback removes the
// new one.
func TestRotateRoot_RollbackUndoesARotationThatWasNeverStored(t *testing.T) {
	r := startRedis(t)
	e := newEnv(t, r, time.Minute)
	configKey := configStorageKey
	e.storage.failPut.Store(&configKey)
	if resp, err := e.do(logical.UpdateOperation, "rotate-root", nil); err == nil {
		t.Fatalf("rotate-root with storage refusing the config: got %v, want an error", resp)
	}
	e.storage.failPut.Store(nil)
	w := rotationInWAL(t, e)
	mustLogIn(t, r, redistest.PluginUser, w.NewPassword)
	if err := e.rollback(true); err != nil {
		t.Fatal(err)
	}
	mustLogIn(t, r, redistest.PluginUser, r.PluginPassword)
	mustNotLogIn(t, r, redistest.PluginUser, w.NewPassword)
	if got := storedPassword(t, e); got != r.PluginPassword {
		t.Fatal("stored password after the rollback: got another, want the old one kept")
	}
}

// A rotation stored but not finished (the old password not yet removed)
// is finished by the rollback.
func TestRotateRoot_RollbackFinishesARotationThatWasStored(t *testing.T) {
	r := startRedis(t)
	e := newEnv(t, r, time.Minute)
	walPrefix := "wal/"
	e.storage.failDelete.Store(&walPrefix)
	e.do(logical.UpdateOperation, "rotate-root", nil)
	e.storage.failDelete.Store(nil)
	w := rotationInWAL(t, e)
	// Give the old password back, as if the plugin died before removing it.
	if err := r.Observer().ACLSetUser(context.Background(), redistest.PluginUser, ">"+w.OldPassword).Err(); err != nil {
		t.Fatal(err)
	}
	if err := e.rollback(true); err != nil {
		t.Fatal(err)
	}
	mustNotLogIn(t, r, redistest.PluginUser, w.OldPassword)
	mustLogIn(t, r, redistest.PluginUser, storedPassword(t, e))
	if storedPassword(t, e) != w.NewPassword {
		t.Fatal("stored password after the rollback: got another, want the rotation's new one")
	}
}

func rotationInWAL(t *testing.T, e *testEnv) *rotationWAL {
	t.Helper()
	ids := e.walEntries()
	if len(ids) != 1 {
		t.Fatalf("WAL entries after a failed rotation: got %v, want one", ids)
	}
	entry, err := framework.GetWAL(context.Background(), e.storage, ids[0])
	if err != nil || entry.Kind != walKindRotateRoot {
		t.Fatalf("WAL entry: got %+v, %v; want a %s entry", entry, err, walKindRotateRoot)
	}
	var w rotationWAL
	if err := decodeMap(entry.Data, &w); err != nil {
		t.Fatal(err)
	}
	return &w
}
