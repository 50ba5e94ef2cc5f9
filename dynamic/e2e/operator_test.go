package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vault-reference/vault-plugin-secrets-reference/dynamic/e2e/leases"
	"github.com/vault-reference/vault-plugin-secrets-reference/dynamic/redistest"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/cluster"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/recorder"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/verdict"
)

// What an operator does to a mount with leases live: delete the role,
// rotate the admin password, upgrade the plugin, revoke every lease of a
// role, disable the mount. Each leaves every lease revocable, and every
// credential dead once its lease is.

const (
	// operatorActionFailed names the check that the operator's command
	// succeeded and took effect: a failed revocation fails revoke -prefix
	// and disable.
	operatorActionFailed = "operator-action-failed"
	// usersLeftByOperator names the check that Redis holds no user of a
	// lease once the operator's revocation of it returned.
	usersLeftByOperator = "users-left-once-the-operator-revoked-their-leases"
	// noLeaseAcross names what a test of an action needs to decide
	// anything: a lease live across the action.
	noLeaseAcross = "no-lease-lived-across-the-action"
)

// TestOperator_DeletingTheRoleLeavesItsLeasesRevocable deletes the role
// while its leases live: each lease carries what its renewals and its
// revocation need, so they go on without the role, and one lease renewed
// again and again stops at its own max_ttl.
func TestOperator_DeletingTheRoleLeavesItsLeasesRevocable(t *testing.T) {
	c, r := setUp(t, 1)
	p := start(t, c, r, 4)
	_, kept := p.do(leases.Input{Kind: leases.Issue, Role: role})
	if kept == nil {
		t.Fatal("an issue before the role's deletion: got no lease, want one")
	}
	renewed := make(chan struct{})
	go func() { defer close(renewed); p.renewUntilPastMaxTTL(kept) }()
	time.Sleep(4 * time.Second)
	from := p.rec.Now()
	p.operatorRuns("delete", mount+"/roles/"+role)
	to := p.rec.Now()
	// The clients renew and revoke what they hold; their issues are refused.
	<-renewed
	p.finish(leases.Bounds{Revoke: 0, Expiry: 2 * time.Second})
	p.mustHaveLivedAcross("the role's deletion", from, to)
}

// renewUntilPastMaxTTL renews lease every half TTL until its max_ttl is
// past: the ledger holds any renewal that let it live longer. The clients
// renew a lease for a few seconds only, short of its max_ttl.
func (p *proof) renewUntilPastMaxTTL(lease *leases.Lease) {
	for p.rec.Now() < lease.MaxBy {
		time.Sleep(roleTTL / 2)
		p.do(leases.Input{Kind: leases.Renew, Lease: lease})
	}
}

// TestOperator_RotatingTheAdminPasswordLeavesEarlierLeasesRevocable runs
// rotate-root while leases live: the plugin revokes the leases issued
// before with the new password, and Redis refuses the old one.
func TestOperator_RotatingTheAdminPasswordLeavesEarlierLeasesRevocable(t *testing.T) {
	c, r := setUp(t, 1)
	p := start(t, c, r, 4)
	time.Sleep(4 * time.Second)
	from := p.rec.Now()
	p.operatorRuns("write", "-f", mount+"/rotate-root")
	to := p.rec.Now()
	err := r.CanLogIn(context.Background(), redistest.PluginUser, r.PluginPassword)
	if err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
		t.Errorf("the admin's first password once rotate-root returned: got %v, want WRONGPASS", err)
		verdict.Violation(t, operatorActionFailed, fmt.Sprint("the first password after rotate-root: ", err))
	}
	time.Sleep(3 * time.Second)
	p.finish(leases.Bounds{Revoke: 0, Expiry: 2 * time.Second})
	p.mustHaveLivedAcross("rotate-root", from, to)
}

// TestOperator_UpgradedPluginRevokesTheOldVersionsLeases upgrades the mount
// to newVersion while leases live, as the README tells an operator: install
// the binary, register it, tune the mount, reload. The new version renews
// and revokes every lease the old one issued.
func TestOperator_UpgradedPluginRevokesTheOldVersionsLeases(t *testing.T) {
	c, r := setUp(t, 1)
	n := c.Nodes[0]
	p := start(t, c, r, 4)
	time.Sleep(4 * time.Second)
	from := p.rec.Now()
	n.Install(t, newVersion)
	p.operatorRuns("plugin", "register", "-sha256="+pluginSHA[newVersion], "-version="+newVersion,
		"-command="+cluster.Plugin.Command(newVersion), "secret", pluginName)
	p.operatorRuns("secrets", "tune", "-plugin-version="+newVersion, mount)
	p.operatorRuns(cluster.Tested.ReloadArgs(pluginName, false)...)
	err := cluster.Poll(10*time.Second, func() (bool, string) {
		v := cluster.Must(t, n, http.StatusOK, "GET", "sys/mounts/"+mount, nil).Data()["running_plugin_version"]
		return v == newVersion, fmt.Sprint(v)
	})
	to := p.rec.Now()
	if err != nil {
		verdict.Violation(t, operatorActionFailed, "running_plugin_version after the reload: "+err.Error())
		t.Fatalf("%s's running_plugin_version after the reload: %v, want %s", mount, err, newVersion)
	}
	for _, args := range cluster.ProcessesUnder(n.PluginDir) {
		if !strings.HasSuffix(args, cluster.Plugin.Command(newVersion)) {
			t.Errorf("plugin processes after the upgrade: got %s, want only %s", args, cluster.Plugin.Command(newVersion))
			verdict.Violation(t, operatorActionFailed, "a plugin process after the upgrade: "+args)
		}
	}
	time.Sleep(3 * time.Second)
	p.finish(leases.Bounds{Revoke: 0, Expiry: 2 * time.Second})
	p.mustHaveLivedAcross("the upgrade", from, to)
}

// TestOperator_RevokePrefixDeletesEveryUserAtOnce revokes every lease of
// the role with the CLI, synchronously: once it returns, Redis holds no
// user of them.
func TestOperator_RevokePrefixDeletesEveryUserAtOnce(t *testing.T) {
	c, r := setUp(t, 1)
	p := start(t, c, r, 4)
	time.Sleep(4 * time.Second)
	// An issue answered while the revocation runs may be revoked before its
	// client's first login, which the checks would take for a credential
	// refused at issue: let none be in flight.
	p.rec.Stop()
	p.operatorRevokes("lease", "revoke", "-prefix", "-sync", mount+"/creds/"+role)
	p.finish(leases.Bounds{Revoke: 0, Expiry: 2 * time.Second})
}

// TestOperator_DisablingTheMountDeletesEveryUser disables the mount, which
// revokes every lease of it first: once it returns, Redis holds no user of
// them and the server no lease. One user an operator deleted by hand
// before: its lease, already gone from Redis, must not block the disable.
func TestOperator_DisablingTheMountDeletesEveryUser(t *testing.T) {
	c, r := setUp(t, 1)
	p := start(t, c, r, 4)
	time.Sleep(4 * time.Second)
	// As for revoke -prefix: let no issue be in flight. Stop once a lease
	// lives on long enough for its user to be deleted by hand first: the
	// clients' pace, not the clock, decides when one does.
	p.stopWithALeaseLive(3*time.Second, 10*time.Second)
	p.deleteUserByHand()
	p.operatorRevokes("secrets", "disable", mount)
	if r := cluster.Must(t, c.Nodes[0], http.StatusOK, "GET", "sys/mounts", nil); r.Data()[mount+"/"] != nil {
		t.Errorf("the mounts once secrets disable %s returned: got %s/ among them, want it gone", mount, mount)
		verdict.Violation(t, operatorActionFailed, "the mount after secrets disable: "+r.Raw)
	}
	// The mount is gone, but the server keeps leases by their path: the
	// list of them finish asks for still shows any it failed to revoke.
	p.finish(leases.Bounds{Revoke: 0, Expiry: 2 * time.Second})
}

// operatorRuns runs a CLI command as the operator types it, and fails the
// test if it fails.
func (p *proof) operatorRuns(args ...string) {
	t := p.t
	t.Helper()
	if out, err := p.c.Nodes[0].Server.CLI(args...); err != nil {
		verdict.Violation(t, operatorActionFailed, strings.Join(args, " ")+": "+out)
		t.Fatalf("%s: %v, want it to succeed\n%s", strings.Join(args, " "), err, out)
	}
}

// operatorRevokes runs a CLI command that revokes every lease of the role
// before it returns, with the clients stopped, and checks that Redis then
// holds none of their users. The ledger learns that each lease was revoked
// over the command's run.
func (p *proof) operatorRevokes(args ...string) {
	t := p.t
	t.Helper()
	call := p.rec.Now()
	out, err := p.c.Nodes[0].Server.CLI(args...)
	ret := p.rec.Now()
	command := strings.Join(args, " ")
	if err != nil {
		t.Errorf("%s: %v, want it to succeed\n%s", command, err, out)
		verdict.Violation(t, operatorActionFailed, command+": "+out)
		return
	}
	var live []*leases.Lease
	for _, l := range p.ledger.Leases() {
		if l.DeadBy() <= call {
			continue
		}
		if l.MustWorkUntil() > call {
			live = append(live, l)
		}
		p.ledger.Saw(recorder.Op{In: leases.Input{Kind: leases.Revoke, Lease: l}, Out: leases.Output{Status: http.StatusNoContent},
			Call: call, Return: ret})
	}
	if len(live) == 0 {
		verdict.Undecided(t, usersLeftByOperator)
		t.Fatalf("leases live when %s began: got none, want some, or it proves nothing", command)
	}
	if left := pluginUsers(t, p.redis); len(left) > 0 {
		t.Errorf("Redis's users once %s returned: got %v, want none", command, left)
		verdict.Violation(t, usersLeftByOperator, left...)
	}
	t.Logf("%s revoked %d live leases in %v", command, len(live), (ret - call).Round(time.Millisecond))
}

// deleteUserByHand deletes, as an operator would in redis-cli, the user of
// the live lease that would live longest; the ledger learns that the
// lease's credential died then.
func (p *proof) deleteUserByHand() {
	t := p.t
	t.Helper()
	lease, expires := p.ledger.LastToExpire()
	if lease == nil || expires < p.rec.Now()+time.Second {
		t.Fatalf("a lease to delete the user of by hand: got %v, want one live for a second more", lease)
	}
	observer := p.redis.Observer()
	defer observer.Close()
	call := p.rec.Now()
	if err := observer.ACLDelUser(context.Background(), lease.Username).Err(); err != nil {
		t.Fatalf("ACL DELUSER %s: %v", lease.Username, err)
	}
	p.ledger.Saw(recorder.Op{In: leases.Input{Kind: leases.Revoke, Lease: lease}, Out: leases.Output{Status: http.StatusNoContent},
		Call: call, Return: p.rec.Now()})
	t.Logf("deleted %s, of %s, by hand", lease.Username, lease.ID)
}

// stopWithALeaseLive stops the clients once some lease lives at least
// margin more, or within at most, whichever comes first.
func (p *proof) stopWithALeaseLive(margin, within time.Duration) {
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if l, expires := p.ledger.LastToExpire(); l != nil && expires >= p.rec.Now()+margin {
			break
		}
	}
	p.rec.Stop()
}

// mustHaveLivedAcross fails the test unless some lease issued before from
// lived on past to, the span of what the operator did: without one, the
// test proves nothing about leases live across it.
func (p *proof) mustHaveLivedAcross(action string, from, to time.Duration) {
	t := p.t
	t.Helper()
	across := p.livedAcross(from, to)
	if len(across) == 0 {
		verdict.Undecided(t, noLeaseAcross)
		t.Fatalf("leases issued before %s [%v, %v] and live after it: got none, want some", action, from, to)
	}
	var revoked, renewed int
	for _, l := range across {
		if l.RevokeCall > to {
			revoked++
		}
		if l.Renewals > 0 {
			renewed++
		}
	}
	t.Logf("%d leases lived across %s, which took %v: %d of them revoked by their client after it, %d renewed at least once, the rest expired",
		len(across), action, (to - from).Round(time.Millisecond), revoked, renewed)
}
