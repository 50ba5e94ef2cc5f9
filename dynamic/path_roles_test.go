package main

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

func TestRoles_WriteReadListDelete(t *testing.T) {
	e := newEnv(t, sharedRedis, time.Minute)
	e.must(logical.UpdateOperation, "roles/cache", map[string]any{
		"key_patterns": "cache:*", "channel_patterns": []any{"news.*"}, "commands": "+@read,+set,-keys", "ttl": "1m", "max_ttl": 600,
	})
	e.must(logical.UpdateOperation, "roles/empty", nil)
	got := e.must(logical.ReadOperation, "roles/cache", nil).Data
	want := map[string]any{
		"key_patterns": []string{"cache:*"}, "channel_patterns": []string{"news.*"}, "commands": []string{"+@read", "+set", "-keys"},
		"ttl": int64(60), "max_ttl": int64(600),
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("role read: got %v, want %v", got, want)
	}
	if keys := e.must(logical.ListOperation, "roles/", nil).Data["keys"]; !reflect.DeepEqual(keys, []string{"cache", "empty"}) {
		t.Fatalf("roles list: got %v, want [cache empty]", keys)
	}
	e.must(logical.DeleteOperation, "roles/cache", nil)
	if resp := e.must(logical.ReadOperation, "roles/cache", nil); resp != nil {
		t.Fatalf("role read after delete: got %v, want nothing", resp.Data)
	}
}

func TestRoles_UpdateKeepsTheFieldsNotGiven(t *testing.T) {
	e := newEnv(t, sharedRedis, time.Minute)
	e.must(logical.UpdateOperation, "roles/r", map[string]any{"commands": "+get", "ttl": 30, "max_ttl": 60})
	e.must(logical.UpdateOperation, "roles/r", map[string]any{"ttl": 45})
	got := e.must(logical.ReadOperation, "roles/r", nil).Data
	if !reflect.DeepEqual(got["commands"], []string{"+get"}) || got["ttl"] != int64(45) || got["max_ttl"] != int64(60) {
		t.Fatalf("role after updating ttl: got %v, want commands [+get], ttl 45, max_ttl 60", got)
	}
}

func TestRoles_RefuseBadRulesNamingTheField(t *testing.T) {
	e := newEnv(t, sharedRedis, time.Minute)
	before := pluginUsers(t, sharedRedis)
	for _, tc := range []struct {
		data map[string]any
		want string
	}{
		// Redis's own refusals.
		{map[string]any{"commands": "+nosuchcommand"}, "commands: Redis refused it"},
		{map[string]any{"commands": "+@nosuchcategory"}, "commands: Redis refused it"},
		// Rules that are not about commands, or that an aclfile cannot hold.
		{map[string]any{"commands": "nopass"}, `commands: "nopass" must begin with + or -`},
		{map[string]any{"commands": ">secret"}, "must begin with + or -"},
		{map[string]any{"commands": "+"}, "commands: an empty entry"},
		{map[string]any{"key_patterns": []any{"a b"}}, "key_patterns"},
		{map[string]any{"channel_patterns": []any{"x\ty"}}, "channel_patterns"},
		{map[string]any{"key_patterns": []any{""}}, "key_patterns: an empty entry"},
		// Durations.
		{map[string]any{"ttl": 120, "max_ttl": 60}, "ttl: want at most max_ttl"},
		{map[string]any{"ttl": -1}, "ttl"},
		{map[string]any{"max_ttl": "forever"}, "max_ttl"},
		{map[string]any{"rules": "+get"}, `unknown field "rules"`},
	} {
		e.refused(logical.UpdateOperation, "roles/bad", tc.data, tc.want)
	}
	if resp := e.must(logical.ReadOperation, "roles/bad", nil); resp != nil {
		t.Fatalf("role read after refused writes: got %v, want nothing stored", resp.Data)
	}
	if after := pluginUsers(t, sharedRedis); !slices.Equal(after, before) {
		t.Fatalf("Redis's users after checking rules: got %v, want %v as before", after, before)
	}
	if wal := e.walEntries(); len(wal) != 0 {
		t.Fatalf("WAL entries after checking rules: got %v, want none", wal)
	}
}

func TestRoles_RefusedUpdateKeepsTheRole(t *testing.T) {
	e := newEnv(t, sharedRedis, time.Minute)
	e.must(logical.UpdateOperation, "roles/r", map[string]any{"commands": "+get"})
	e.refused(logical.UpdateOperation, "roles/r", map[string]any{"commands": "+nosuchcommand"}, "commands")
	if got := e.must(logical.ReadOperation, "roles/r", nil).Data["commands"]; !reflect.DeepEqual(got, []string{"+get"}) {
		t.Fatalf("role after a refused update: got commands %v, want [+get]", got)
	}
}
