package bench

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/cluster"
)

// How many leases each bound is measured on, and how often their
// credentials are tried.
const (
	boundLeases = 20
	loginEvery  = 10 * time.Millisecond
)

// bounds are how long after a lease died its credential was first refused.
type bounds struct {
	afterRevoke, afterExpiry []time.Duration
	// workedAfterRevoke counts leases whose credential logged in after
	// their revoke was acknowledged; refusedEarly those refused before
	// they could have expired.
	workedAfterRevoke, refusedEarly int
}

// measureBounds issues leases of e and revokes them, then issues more and
// lets them expire, trying each credential until Redis refuses it.
func measureBounds(t *testing.T, n *cluster.Node, e *engine) bounds {
	t.Helper()
	var b bounds
	for range boundLeases {
		user, password, lease, _ := issue(t, n, e)
		cluster.Must(t, n, http.StatusNoContent, "PUT", "sys/leases/revoke", map[string]any{"lease_id": lease})
		acknowledged := time.Now()
		refused, worked := firstRefusal(e, user, password, acknowledged)
		b.afterRevoke = append(b.afterRevoke, refused.Sub(acknowledged))
		b.workedAfterRevoke += min(worked, 1)
	}

	var mu sync.Mutex
	var wg sync.WaitGroup
	for range boundLeases {
		user, password, _, expiry := issue(t, n, e)
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Until(expiry) - 200*time.Millisecond)
			refused, _ := firstRefusal(e, user, password, time.Now())
			mu.Lock()
			defer mu.Unlock()
			if refused.Before(expiry) {
				b.refusedEarly++
			}
			b.afterExpiry = append(b.afterExpiry, refused.Sub(expiry))
		}()
		// Spread the expiries, so that the logins tried at each are few.
		time.Sleep(250 * time.Millisecond)
	}
	wg.Wait()
	t.Logf("%s: first refused login after an acknowledged revoke: median %v, longest %v; after expiry: median %v, longest %v",
		e.name, median(b.afterRevoke), longest(b.afterRevoke), median(b.afterExpiry), longest(b.afterExpiry))
	return b
}

// issue reads a credential of e and returns it, its lease, and the earliest
// its lease can expire: the issue's call plus the lease's TTL.
func issue(t *testing.T, n *cluster.Node, e *engine) (user, password, lease string, expiry time.Time) {
	t.Helper()
	call := time.Now()
	r := cluster.Must(t, n, http.StatusOK, "GET", e.creds(), nil)
	user, _ = r.Data()["username"].(string)
	password, _ = r.Data()["password"].(string)
	lease, _ = r.Body["lease_id"].(string)
	seconds, _ := r.Body["lease_duration"].(float64)
	return user, password, lease, call.Add(time.Duration(seconds) * time.Second)
}

// firstRefusal tries the credential every loginEvery from the moment given
// until Redis refuses it, and returns when the refused login was sent and
// how many logins before it worked. It gives up after a minute, returning
// then.
func firstRefusal(e *engine, user, password string, from time.Time) (time.Time, int) {
	worked := 0
	for next := from; time.Since(from) < time.Minute; next = next.Add(loginEvery) {
		time.Sleep(time.Until(next))
		call := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := e.redis.CanLogIn(ctx, user, password)
		cancel()
		switch {
		case err == nil:
			worked++
		case strings.Contains(err.Error(), "WRONGPASS"):
			return call, worked
		}
	}
	return time.Now(), worked
}
