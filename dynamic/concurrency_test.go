package main

import (
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// Vault calls the plugin from many goroutines: issues, revokes, role writes
// and a rotation of the admin password at once leave every revoked user
// gone and every live one working.
func TestConcurrency_IssueRevokeAndRotateAtOnce(t *testing.T) {
	r := startRedis(t)
	e := newEnv(t, r, time.Minute)
	e.must(logical.UpdateOperation, "roles/r", map[string]any{"commands": "+get"})
	type issued struct{ user, password string }
	var mu sync.Mutex
	var kept []issued
	var wg sync.WaitGroup
	for worker := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 8 {
				resp, err := e.do(logical.ReadOperation, "creds/r", nil)
				if err != nil || resp.IsError() {
					t.Errorf("creds: got %v, %v; want a user", resp, err)
					return
				}
				user := resp.Data["username"].(string)
				if (worker+i)%2 == 0 {
					mu.Lock()
					kept = append(kept, issued{user, resp.Data["password"].(string)})
					mu.Unlock()
					continue
				}
				if _, err := e.lease(logical.RevokeOperation, resp.Secret); err != nil {
					t.Errorf("revoke of %s: got %v, want success", user, err)
				}
			}
		}()
	}
	wg.Add(2)
	for path, data := range map[string]map[string]any{"rotate-root": nil, "roles/r": {"ttl": 60}} {
		go func() {
			defer wg.Done()
			if resp, err := e.do(logical.UpdateOperation, path, data); err != nil || resp.IsError() {
				t.Errorf("write %s: got %v, %v; want success", path, resp, err)
			}
		}()
	}
	wg.Wait()
	if got := len(pluginUsers(t, r)); got != len(kept) {
		t.Fatalf("Redis's users after 48 issues, half revoked: got %d, want %d", got, len(kept))
	}
	for _, u := range kept {
		mustLogIn(t, r, u.user, u.password)
	}
}
