package e2e

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vault-reference/vault-plugin-secrets-reference/dynamic/e2e/leases"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/cluster"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/recorder"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/verdict"
)

// Crashes and outages with leases live: the plugin killed mid-create, Redis
// restarted, Redis down while leases expire. Each may delay a revocation,
// never lose one.

const (
	// rollbackPeriod is how often Vault and OpenBao ask each mount to roll
	// back its write-ahead log entries older than walMinAge.
	rollbackPeriod = time.Minute
	// revokeRetried bounds how long a credential may outlive its lease when
	// the revocation failed: the server tries again 10 to 30 s later (its
	// first backoff, 20 s give or take half), after an attempt that may
	// have waited on a stopped Redis until the plugin died (1.5 s), plus a
	// revocation's own time and a probe's.
	revokeRetried = 33 * time.Second
	// userKeptPastRollback names the check that a user whose create never
	// completed is gone once the rollback ran.
	userKeptPastRollback = "half-made-user-outlived-the-rollback"
	// userKeptPastRetry names the check that the users of leases that died
	// while Redis was down are gone once the server retried.
	userKeptPastRetry = "user-outlived-the-revocation-retry"
	// userDeletedMidCreate names the check that the rollback leaves alone a
	// user whose create may still be running.
	userDeletedMidCreate = "user-deleted-before-walMinAge"
	// noIssueOnceBack names the check that the plugin issues again once
	// Redis is back.
	noIssueOnceBack = "no-credential-issued-once-redis-was-back"
)

// TestOutage_RollbackDeletesTheUserOfACreateKilledMidway kills the plugin
// while a create waits on a stopped Redis, after its write-ahead log entry
// and its ACL SETUSER went out: Redis makes the user once resumed, no lease
// ever names it, and the rollback deletes it within walMinAge and one
// rollback period. A revoke killed the same way may leave its user gone
// (Redis runs its ACL DELUSER once resumed) and its lease to revoke: the
// server's next revocation of it finds the user gone, and must succeed.
func TestOutage_RollbackDeletesTheUserOfACreateKilledMidway(t *testing.T) {
	c, r := setUp(t, 1)
	p := start(t, c, r, 4)
	time.Sleep(3 * time.Second)
	_, lease := p.do(leases.Input{Kind: leases.Issue, Role: role})
	if lease == nil {
		t.Fatal("an issue before the fault: got no lease, want one")
	}

	written, halfMade := p.killPluginMidCreate(lease)
	bound := walMinAge + rollbackPeriod + 5*time.Second
	took := p.waitUsersGone(halfMade, written, bound, "the create's write-ahead log entry", userKeptPastRollback)
	if took < walMinAge {
		t.Errorf("half-made users gone %v after their write-ahead log entry, want no sooner than walMinAge (%v): the rollback must leave a create in progress alone",
			took.Round(time.Millisecond), walMinAge)
		verdict.Violation(t, userDeletedMidCreate, halfMade...)
	}
	t.Logf("rollback deleted %d half-made user(s) %v after the create's write-ahead log entry (bound %v: walMinAge %v, rollback period %v, slack)",
		len(halfMade), took.Round(time.Millisecond), bound, walMinAge, rollbackPeriod)
	p.finish(leases.Bounds{Revoke: 0, Expiry: revokeRetried})
}

// killPluginMidCreate stops Redis, sends a create and a revoke of lease,
// kills the plugin once both wait on Redis, and resumes Redis. It returns
// when the create was sent (its write-ahead log entry was written just
// after) and the users Redis then holds that no lease names.
func (p *proof) killPluginMidCreate(lease *leases.Lease) (time.Duration, []string) {
	t := p.t
	t.Helper()
	pid := p.redis.PID()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP redis-server: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGCONT) })
	var issued, revoked recorder.Op
	var wg sync.WaitGroup
	wg.Add(2)
	sent := p.rec.Now()
	go func() { defer wg.Done(); issued, _ = p.do(leases.Input{Kind: leases.Issue, Role: role}) }()
	time.Sleep(200 * time.Millisecond)
	go func() { defer wg.Done(); revoked, _ = p.do(leases.Input{Kind: leases.Revoke, Lease: lease}) }()
	// Long enough for the plugin to write the entry and send its commands.
	time.Sleep(time.Second)
	killed := p.rec.Now()
	processes := killPluginProcesses(t, p.c.Nodes[0])
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatalf("SIGCONT redis-server: %v", err)
	}
	wg.Wait()

	users := pluginUsers(t, p.redis)
	revokedUser := "still in Redis"
	if !slices.Contains(users, lease.Username) {
		revokedUser = "gone"
	}
	// Issues of the clients' in flight now reach the ledger.
	time.Sleep(500 * time.Millisecond)
	var halfMade []string
	for _, u := range users {
		if !slices.ContainsFunc(p.ledger.Leases(), func(l *leases.Lease) bool { return l.Username == u }) {
			halfMade = append(halfMade, u)
		}
	}
	t.Logf("%d plugin process(es) killed at %v, %v after the create was sent; the create got %q; the revoke %q, its user %s; users no lease names: %v",
		processes, killed.Round(time.Millisecond), (killed - sent).Round(time.Millisecond), oneLine(issued.Answer), oneLine(revoked.Answer), revokedUser, halfMade)
	if len(halfMade) == 0 {
		verdict.Undecided(t, userKeptPastRollback)
		t.Fatalf("users no lease names after a create was killed mid-way: got none of %v, want the one it half made", users)
	}
	return sent, halfMade
}

// killPluginProcesses is kill -9 of the node's plugin processes. It returns
// how many once they are gone: the server may have started others already,
// to send the requests in flight once more.
func killPluginProcesses(t *testing.T, n *cluster.Node) int {
	t.Helper()
	pids := cluster.ProcessesUnder(n.PluginDir)
	if len(pids) == 0 {
		t.Fatalf("%s's plugin processes: got none, want one to kill", n.ID)
	}
	for pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	cluster.WaitFor(t, 5*time.Second, "every killed plugin process gone", func() (bool, string) {
		live := cluster.ProcessesUnder(n.PluginDir)
		for pid := range pids {
			if _, ok := live[pid]; ok {
				return false, fmt.Sprintf("process %d running", pid)
			}
		}
		return true, ""
	})
	return len(pids)
}

// oneLine is a server's answer on one line, for the log.
func oneLine(answer string) string { return strings.Join(strings.Fields(answer), " ") }

// waitUsersGone waits until Redis holds none of users, and returns how long
// after since that was; past since+bound it fails the test with check.
// after says what since was, for the failure.
func (p *proof) waitUsersGone(users []string, since, bound time.Duration, after, check string) time.Duration {
	t := p.t
	t.Helper()
	for {
		left := slices.DeleteFunc(pluginUsers(t, p.redis), func(u string) bool { return !slices.Contains(users, u) })
		if len(left) == 0 {
			return p.rec.Now() - since
		}
		if p.rec.Now() > since+bound {
			t.Errorf("users of %v still in Redis %v after %s: got %v, want none", users, bound, after, left)
			verdict.Violation(t, check, left...)
			return p.rec.Now() - since
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// TestOutage_RedisRestartKeepsUsersAndAnOutageOnlyDelaysRevocation restarts
// Redis, whose users outlive it in its aclfile (save_acl), then stops it
// while leases expire: the server's revocations fail, and its retry, once
// Redis is back, deletes every user of a lease that died meanwhile.
func TestOutage_RedisRestartKeepsUsersAndAnOutageOnlyDelaysRevocation(t *testing.T) {
	c, r := setUp(t, 1)
	p := start(t, c, r, 4)
	time.Sleep(3 * time.Second)
	restarted := p.rec.Now()
	r.Stop()
	if err := r.Restart(); err != nil {
		t.Fatalf("restarting Redis: %v", err)
	}
	t.Logf("Redis restarted: down %v", (p.rec.Now() - restarted).Round(time.Millisecond))
	time.Sleep(3 * time.Second)

	down := p.rec.Now()
	r.Stop()
	// Long enough for leases to expire, short of the server's first retry.
	time.Sleep(6 * time.Second)
	if err := r.Restart(); err != nil {
		t.Fatalf("starting Redis again: %v", err)
	}
	back := p.rec.Now()
	// Issues work again.
	time.Sleep(2 * time.Second)
	p.rec.Stop()

	var diedWhileDown, deadByBack []*leases.Lease
	var users []string
	for _, l := range p.ledger.Leases() {
		if l.DeadBy() <= back {
			deadByBack = append(deadByBack, l)
			users = append(users, l.Username)
		}
		if l.MustWorkUntil() >= down && l.DeadBy() <= back {
			diedWhileDown = append(diedWhileDown, l)
		}
	}
	if !slices.ContainsFunc(p.ledger.Leases(), func(l *leases.Lease) bool { return l.IssueCall > back }) {
		t.Errorf("credentials issued once Redis was back: got none in 2 s, want some")
		verdict.Violation(t, noIssueOnceBack)
	}
	if len(diedWhileDown) == 0 {
		verdict.Undecided(t, userKeptPastRetry)
		t.Fatalf("leases that died while Redis was down [%v, %v]: got none, want some, or the outage proves nothing", down, back)
	}
	took := p.waitUsersGone(users, back, revokeRetried, "Redis was back", userKeptPastRetry)
	t.Logf("Redis down %v; %d leases died meanwhile; every user of the %d leases dead by then gone %v after Redis was back",
		(back - down).Round(time.Millisecond), len(diedWhileDown), len(deadByBack), took.Round(time.Millisecond))
	p.finish(leases.Bounds{Revoke: 0, Expiry: revokeRetried})
}
