package e2e

import (
	"context"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vault-reference/vault-plugin-secrets-reference/dynamic/e2e/leases"
	"github.com/vault-reference/vault-plugin-secrets-reference/dynamic/redistest"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/cluster"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/recorder"
)

// The role every proof issues from: leases short enough that many expire
// in a run, renewals that reach max_ttl.
const (
	role       = "app"
	roleTTL    = 4 * time.Second
	roleMaxTTL = 5 * time.Second
)

// probePeriod is how often the prober tries every credential: the first
// refusal it sees may come this much after the credential died.
const probePeriod = 250 * time.Millisecond

// userPrefix begins the name of every user the plugin makes.
const userPrefix = "v-"

// proof is one run of clients issuing, renewing, revoking and letting
// leases expire through a cluster, with a prober trying every credential
// against Redis.
type proof struct {
	t      *testing.T
	c      *cluster.Cluster
	redis  *redistest.Server
	rec    *recorder.Recorder
	ledger *leases.Ledger
	prober *leases.Prober
	stop   chan struct{}
	done   chan struct{}
}

// setUp starts Redis and a cluster of size nodes with the plugin
// configured for it and the role written.
func setUp(t *testing.T, size int) (*cluster.Cluster, *redistest.Server) {
	t.Helper()
	r, err := redistest.Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	c := cluster.Start(t, size)
	a := c.Active()
	cluster.Must(t, a, http.StatusNoContent, "PUT", mount+"/config", map[string]any{
		"address": r.Addr, "username": redistest.PluginUser, "password": r.PluginPassword, "save_acl": true,
	})
	cluster.Must(t, a, http.StatusNoContent, "PUT", mount+"/roles/"+role, map[string]any{
		"commands": "+ping", "ttl": int(roleTTL.Seconds()), "max_ttl": int(roleMaxTTL.Seconds()),
	})
	return c, r
}

// start runs clients clients and the prober until finish.
func start(t *testing.T, c *cluster.Cluster, r *redistest.Server, clients int) *proof {
	t.Helper()
	p := &proof{t: t, c: c, redis: r, rec: recorder.New(c, leases.Traffic{Mount: mount}),
		ledger: &leases.Ledger{MaxTTL: map[string]time.Duration{role: roleMaxTTL, longRole: longMaxTTL}}, stop: make(chan struct{}), done: make(chan struct{})}
	p.prober = &leases.Prober{Redis: r, Ledger: p.ledger, Now: p.rec.Now}
	var specs []recorder.Spec
	for range clients {
		specs = append(specs, recorder.Spec{Client: p.client()})
	}
	go func() { defer close(p.done); p.prober.Run(p.stop, probePeriod) }()
	t.Cleanup(func() {
		select {
		case <-p.stop:
		default:
			close(p.stop)
		}
		<-p.done
	})
	p.rec.Start(time.Now().UnixNano(), specs...)
	return p
}

// client is one client of the role's, sending through any node.
func (p *proof) client() *leases.Client {
	return &leases.Client{Role: role, Ledger: p.ledger, Prober: p.prober, Pace: 1500 * time.Millisecond}
}

// finish stops the clients, lets the prober watch every lease die, and
// checks: every credential worked while its lease lived and died within
// bounds after; Redis holds no user of the plugin's, and the server no
// lease of the mount's.
func (p *proof) finish(bounds leases.Bounds) {
	t := p.t
	t.Helper()
	p.rec.Stop()
	stopped := p.rec.Now()
	var last time.Duration
	for _, l := range p.ledger.Leases() {
		last = max(last, l.ExpiresBy)
	}
	// Let the prober see the last lease die, a bound and a probe after; or
	// less, once it saw every credential refused, since it tries those no
	// more.
	for deadline := last + bounds.Expiry + time.Second; p.rec.Now() < deadline && !p.everyDeathSeen(); {
		time.Sleep(250 * time.Millisecond)
	}
	close(p.stop)
	<-p.done

	all, probes := p.ledger.Leases(), p.prober.Probes()
	leases.MustHold(t, leases.Check(all, probes, bounds))
	leases.MustLeaveNoOrphans(t, p.halfMadeUsersGone(stopped, bounds.HalfMade), userPrefix)
	p.mustLeaveNoLeases()
	var revoked, renewed int
	for _, l := range all {
		if l.RevokeReturn > 0 {
			revoked++
		}
		renewed += l.Renewals
	}
	t.Logf("%d leases issued, %d renewals, %d revoked, the rest expired; %d logins tried", len(all), renewed, revoked, len(probes))
	figure(t, "revoke to refusal", leases.LongestDeath(all, probes, true), bounds.Revoke+probePeriod)
	figure(t, "expiry to refusal", leases.LongestDeath(all, probes, false), bounds.Expiry+probePeriod)
}

// halfMadeUsersGone waits, until within after the clients stopped at the
// latest, for Redis to hold no user of the plugin's, and returns those it
// holds then.
func (p *proof) halfMadeUsersGone(stopped, within time.Duration) []string {
	t := p.t
	t.Helper()
	users, deadline := pluginUsers(t, p.redis), stopped+within
	if len(users) == 0 || p.rec.Now() >= deadline {
		return users
	}
	left := users
	for len(users) > 0 && p.rec.Now() < deadline {
		time.Sleep(time.Second)
		users = pluginUsers(t, p.redis)
	}
	t.Logf("users no lease names once every lease died, of creates a fault cut short: %v; %d left %v after the clients stopped (bound %v)",
		left, len(users), (p.rec.Now() - stopped).Round(time.Second), within)
	return users
}

// everyDeathSeen tells whether the prober saw each lease's credential
// refused after the lease may have died. Ask once the clients have stopped.
func (p *proof) everyDeathSeen() bool {
	seen := map[*leases.Lease]bool{}
	for _, pr := range p.prober.Probes() {
		if pr.Outcome == leases.Refused && pr.Call > pr.Lease.MustWorkUntil() {
			seen[pr.Lease] = true
		}
	}
	return len(seen) == len(p.ledger.Leases())
}

// pluginUsers are the users Redis holds that the plugin made, as the tests'
// own user reads them.
func pluginUsers(t *testing.T, r *redistest.Server) []string {
	t.Helper()
	users, err := r.Users(context.Background())
	if err != nil {
		t.Fatalf("ACL USERS: %v", err)
	}
	var made []string
	for _, u := range users {
		if strings.HasPrefix(u, userPrefix) {
			made = append(made, u)
		}
	}
	return made
}

// do sends one operation through the first node, outside the clients, as
// send does.
func (p *proof) do(in leases.Input) (recorder.Op, *leases.Lease) {
	return p.send(p.c.Nodes[0], in)
}

// livedAcross are the leases issued before from that lived on past to:
// whatever revoked or expired them did it after to. Ask once the clients
// have stopped.
func (p *proof) livedAcross(from, to time.Duration) []*leases.Lease {
	var across []*leases.Lease
	for _, l := range p.ledger.Leases() {
		if l.IssueReturn < from && l.MustWorkUntil() > to {
			across = append(across, l)
		}
	}
	return across
}

// mustLeaveNoLeases fails the test if the server still holds a lease of a
// role the ledger has leases of: one it could not revoke. The server
// deletes a lease just after its revoke, so a lease whose user is already
// gone gets a moment to go too.
func (p *proof) mustLeaveNoLeases() {
	t := p.t
	t.Helper()
	a := p.c.Active()
	roles := map[string]bool{role: true}
	for _, l := range p.ledger.Leases() {
		roles[l.Role] = true
	}
	for _, name := range slices.Sorted(maps.Keys(roles)) {
		var r cluster.Reply
		var err error
		_ = cluster.Poll(3*time.Second, func() (bool, string) {
			r, err = cluster.Send(a.Addr(), a.RootToken(), "LIST", "sys/leases/lookup/"+mount+"/creds/"+name, nil)
			return err != nil || r.Status == http.StatusNotFound, r.String()
		})
		if err != nil {
			t.Fatalf("listing role %s's leases: %v", name, err)
		}
		if keys, _ := r.Data()["keys"].([]any); r.Status != http.StatusNotFound || len(keys) > 0 {
			t.Errorf("role %s's leases once every one died: got %s, want none (404)", name, r)
			leases.LeftBehind(t, r.Raw)
		}
	}
}

// TestLeases_CredentialsLiveOnlyWhileTheirLeasesDo is the proof with no
// fault: the bounds every other proof widens.
func TestLeases_CredentialsLiveOnlyWhileTheirLeasesDo(t *testing.T) {
	c, r := setUp(t, 1)
	p := start(t, c, r, 4)
	time.Sleep(20 * time.Second)
	p.finish(leases.Bounds{Revoke: 0, Expiry: 2 * time.Second})
}
