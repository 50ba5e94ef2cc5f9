package main

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/vault-reference/vault-plugin-secrets-reference/dynamic/redistest"
)

func TestConfig_ReadNeverReturnsThePassword(t *testing.T) {
	e := newEnv(t, sharedRedis, time.Minute)
	resp := e.must(logical.ReadOperation, "config", nil)
	if _, ok := resp.Data["password"]; ok {
		t.Fatalf("config read: got %v, want no password in it", resp.Data)
	}
	if resp.Data["address"] != sharedRedis.Addr || resp.Data["username"] != redistest.PluginUser || resp.Data["save_acl"] != true {
		t.Fatalf("config read: got %v, want the address %s, the user %s and save_acl written", resp.Data, sharedRedis.Addr, redistest.PluginUser)
	}
}

func TestConfig_WriteIsStoredOnlyOnceItLogsIn(t *testing.T) {
	e := newEnv(t, sharedRedis, time.Minute)
	e.refused(logical.UpdateOperation, "config", map[string]any{"password": "wrong"}, "password")
	e.must(logical.UpdateOperation, "roles/r", nil)
	user, password, _ := e.issue("r") // still reaches Redis with the stored password
	mustLogIn(t, sharedRedis, user, password)
}

func TestConfig_RefusesBadInputNamingTheField(t *testing.T) {
	e := newEnv(t, sharedRedis, time.Minute)
	for _, tc := range []struct {
		data map[string]any
		want string
	}{
		{map[string]any{"address": "no-port"}, "address"},
		{map[string]any{"address": "127.0.0.1:99999"}, "address"},
		{map[string]any{"address": ":6379"}, "address"},
		{map[string]any{"username": ""}, "username"},
		{map[string]any{"password": ""}, "password"},
		{map[string]any{"ca_cert": "x"}, "ca_cert"},
		{map[string]any{"tls": true, "ca_cert": "not PEM"}, "ca_cert"},
		{map[string]any{"save_acl": "sometimes"}, "save_acl"},
		{map[string]any{"ttl": 30}, `unknown field "ttl"`},
	} {
		e.refused(logical.UpdateOperation, "config", tc.data, tc.want)
	}
	if e.b.conn == nil {
		t.Fatal("after refused writes: got no connection, want the stored config's kept")
	}
}

func TestConfig_CreateNeedsAddressUserAndPassword(t *testing.T) {
	e := newEnv(t, sharedRedis, time.Minute)
	e.must(logical.DeleteOperation, "config", nil)
	e.refused(logical.UpdateOperation, "config", map[string]any{"username": "u", "password": "p"}, "address")
	e.refused(logical.UpdateOperation, "config", map[string]any{"address": sharedRedis.Addr, "password": "p"}, "username")
	e.refused(logical.UpdateOperation, "config", map[string]any{"address": sharedRedis.Addr, "username": "u"}, "password")
}

func TestConfig_UpdateKeepsTheFieldsNotGiven(t *testing.T) {
	e := newEnv(t, sharedRedis, time.Minute)
	e.must(logical.UpdateOperation, "config", map[string]any{"save_acl": false})
	cfg, err := readConfig(context.Background(), e.storage)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SaveACL || cfg.Address != sharedRedis.Addr || cfg.Password != sharedRedis.PluginPassword {
		t.Fatalf("stored after updating save_acl: got %+v, want save_acl false and the address and password kept", cfg)
	}
}

func TestConfig_DeleteLeavesNothingToReachRedisWith(t *testing.T) {
	e := newEnv(t, sharedRedis, time.Minute)
	e.must(logical.UpdateOperation, "roles/r", nil)
	e.must(logical.DeleteOperation, "config", nil)
	if resp := e.must(logical.ReadOperation, "config", nil); resp != nil {
		t.Fatalf("config read after delete: got %v, want nothing", resp.Data)
	}
	e.refused(logical.ReadOperation, "creds/r", nil, "write config first")
}
