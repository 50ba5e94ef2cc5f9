package bench

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vault-reference/vault-plugin-secrets-reference/dynamic/e2e/leases"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/cluster"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/recorder"
)

// Every scenario runs the lease proof's clients on all engines at once,
// each against its own Redis, and judges each with the proof's checks and
// bounds. The kills each strike burst creates per engine sent together,
// killDelay after they were sent.
const (
	clientsPerEngine = 4
	scenarioTime     = 15 * time.Second
	kills            = 5
	killEvery        = 2 * time.Second
	burst            = 8
	killDelay        = 5 * time.Millisecond
	// rollbackPass is how long after a fault a user the reference left may
	// stay: Vault's rollback runs every minute, and takes write-ahead log
	// entries older than walMinAge; the sweep, on the same tick, deletes a
	// user past its lease's longest life (max_ttl) and a minute.
	rollbackPass = 2*time.Minute + roleMaxTTL + walMinAge + 5*time.Second
)

var checkBounds = leases.Bounds{Revoke: 0, Expiry: 2 * time.Second}

// The scenarios, as the report names them.
const (
	noFault      = "no fault"
	redisRestart = "Redis restarted while leases expire"
	pluginKilled = "plugin processes killed while creates are in flight"
)

// outcome is what one scenario left of one engine.
type outcome struct {
	scenario string
	engine   *engine
	issued   int
	// failed are issues refused or unanswered; inFlight those sent before
	// a kill that returned after it.
	failed, inFlight int
	// violations counts, by check, the leases the checks found one in.
	violations map[string]int
	// kept are the leases the server still held once every one had died.
	kept int
	// revokeErrors counts, by error, the attempts to revoke that Vault
	// logged as failed.
	revokeErrors map[string]int
	// orphans are the engine's users in Redis once every lease had died,
	// and left those still there at the end of the run; leased tells the
	// users an issue returned, whose leases the server failed to revoke,
	// from users no answer named.
	orphans, left []string
	leased        map[string]bool
}

// unleased counts the users of names that no issue returned.
func (o *outcome) unleased(names []string) int {
	n := 0
	for _, u := range names {
		if !o.leased[u] {
			n++
		}
	}
	return n
}

// watch is one engine's traffic in a scenario: a recorder of its clients,
// the ledger of its leases, and a prober trying their credentials.
type watch struct {
	e      *engine
	rec    *recorder.Recorder
	ledger *leases.Ledger
	prober *leases.Prober
	kills  []time.Duration
	// revokeErrors are the node log's counts when it began.
	revokeErrors map[string]int
	bursts       sync.WaitGroup
	stop         chan struct{}
	done         chan struct{}
}

// faults runs each scenario on every engine of list, and counts again, a
// rollback pass after the last kill, the users each scenario left.
func faults(t *testing.T, c *cluster.Cluster, list []*engine) []*outcome {
	t.Helper()
	var all []*outcome
	all = append(all, scenario(t, c, list, noFault, func(ws []*watch) {
		time.Sleep(scenarioTime)
	})...)
	all = append(all, scenario(t, c, list, redisRestart, func(ws []*watch) {
		time.Sleep(scenarioTime / 2)
		restartRedis(t, list)
		time.Sleep(scenarioTime / 2)
	})...)
	var lastKill time.Time
	all = append(all, scenario(t, c, list, pluginKilled, func(ws []*watch) {
		n := c.Nodes[0]
		for range kills {
			time.Sleep(killEvery)
			for _, w := range ws {
				w.sendBurst(n)
			}
			time.Sleep(killDelay)
			killPluginProcesses(t, n, ws)
			lastKill = time.Now()
		}
		time.Sleep(scenarioTime - kills*killEvery)
	})...)
	time.Sleep(time.Until(lastKill.Add(rollbackPass)))
	for _, o := range all {
		now := map[string]bool{}
		for _, u := range users(t, o.engine) {
			now[u] = true
		}
		for _, u := range o.orphans {
			if now[u] {
				o.left = append(o.left, u)
			}
		}
	}
	return all
}

// scenario runs the lease proof's clients against every engine while fault
// does its work, then waits until every lease has died and judges what
// each engine left.
func scenario(t *testing.T, c *cluster.Cluster, list []*engine, name string, fault func([]*watch)) []*outcome {
	t.Helper()
	before := map[*engine]map[string]bool{}
	var ws []*watch
	for _, e := range list {
		before[e] = map[string]bool{}
		for _, u := range users(t, e) {
			before[e][u] = true
		}
		w := &watch{e: e, rec: recorder.New(c, leases.Traffic{Mount: e.mount}), ledger: &leases.Ledger{MaxTTL: map[string]time.Duration{role: roleMaxTTL}},
			stop: make(chan struct{}), done: make(chan struct{})}
		w.prober = &leases.Prober{Redis: e.redis, Ledger: w.ledger, Now: w.rec.Now}
		w.revokeErrors = revokeErrors(c.Nodes[0], e)
		var specs []recorder.Spec
		for range clientsPerEngine {
			specs = append(specs, recorder.Spec{Client: &leases.Client{Role: role, Ledger: w.ledger, Prober: w.prober, Pace: 1500 * time.Millisecond}})
		}
		go func() { defer close(w.done); w.prober.Run(w.stop, 250*time.Millisecond) }()
		w.rec.Start(time.Now().UnixNano(), specs...)
		ws = append(ws, w)
	}
	fault(ws)

	// Let the probers see the last lease die, a bound and a probe after.
	var last time.Time
	for _, w := range ws {
		w.rec.Stop()
		w.bursts.Wait()
		for _, l := range w.ledger.Leases() {
			if at := time.Now().Add(l.ExpiresBy - w.rec.Now()); at.After(last) {
				last = at
			}
		}
	}
	time.Sleep(time.Until(last.Add(checkBounds.Expiry + time.Second)))
	var outcomes []*outcome
	for _, w := range ws {
		close(w.stop)
		<-w.done
		outcomes = append(outcomes, judge(t, c, w, name, before[w.e]))
	}
	return outcomes
}

// judge checks one engine's ledger against its probes, and counts the
// leases the server kept and the users Redis kept.
func judge(t *testing.T, c *cluster.Cluster, w *watch, name string, before map[string]bool) *outcome {
	t.Helper()
	o := &outcome{scenario: name, engine: w.e, violations: map[string]int{}, leased: map[string]bool{}}
	for _, op := range w.rec.History() {
		in := op.In.(leases.Input)
		if in.Kind != leases.Issue {
			continue
		}
		if !op.Out.Acknowledged() {
			o.failed++
		}
		for _, k := range w.kills {
			if op.Call < k && k < op.Return {
				o.inFlight++
				break
			}
		}
	}
	o.issued = len(w.ledger.Leases())
	for _, l := range w.ledger.Leases() {
		o.leased[l.Username] = true
	}
	found := map[string]map[*leases.Lease]bool{}
	for _, v := range leases.Check(w.ledger.Leases(), w.prober.Probes(), checkBounds) {
		if found[v.Check] == nil {
			found[v.Check] = map[*leases.Lease]bool{}
		}
		found[v.Check][v.Lease] = true
	}
	for check, ls := range found {
		o.violations[check] = len(ls)
	}
	n := c.Nodes[0]
	r, err := cluster.Send(n.Addr(), n.Token, "LIST", "sys/leases/lookup/"+w.e.creds(), nil)
	if err != nil {
		t.Fatalf("listing the leases of %s: %v", w.e.creds(), err)
	}
	if r.Status == http.StatusOK {
		keys, _ := r.Data()["keys"].([]any)
		o.kept = len(keys)
	}
	o.revokeErrors = revokeErrors(n, w.e)
	for err, count := range w.revokeErrors {
		if o.revokeErrors[err] -= count; o.revokeErrors[err] == 0 {
			delete(o.revokeErrors, err)
		}
	}
	for _, u := range users(t, w.e) {
		if !before[u] {
			o.orphans = append(o.orphans, u)
		}
	}
	t.Logf("%s, %s: %d leases issued, %d issues failed (%d in flight at a kill), leases with violations %v, failed revocations %v, %d leases kept, %d users left in Redis (%d no issue returned)",
		name, w.e.name, o.issued, o.failed, o.inFlight, o.violations, o.revokeErrors, o.kept, len(o.orphans), o.unleased(o.orphans))
	return o
}

// sendBurst sends burst creates through n at once, each as a client of its
// own whose lease is left to expire, and returns as they are sent.
func (w *watch) sendBurst(n *cluster.Node) {
	for range burst {
		w.bursts.Add(1)
		go func() {
			defer w.bursts.Done()
			o := w.rec.Do(w.rec.NewClient(), -1, n, leases.Input{Kind: leases.Issue, Role: role})
			if lease := w.ledger.Saw(o); lease != nil {
				w.prober.Try(lease, true)
			}
		}()
	}
}

// killPluginProcesses is kill -9 of every plugin process of the node's
// Vault, ours and the database engine's, at once; each watch notes when.
func killPluginProcesses(t *testing.T, n *cluster.Node, ws []*watch) {
	t.Helper()
	pids := cluster.ProcessesUnder(n.PluginDir)
	if len(pids) == 0 {
		t.Fatalf("%s runs no plugin process, want some to kill", n.ID)
	}
	for _, w := range ws {
		w.kills = append(w.kills, w.rec.Now())
	}
	for pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// restartRedis stops every engine's Redis (SIGTERM) and starts it again, at
// once: each loads the users its aclfile holds.
func restartRedis(t *testing.T, list []*engine) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, len(list))
	for i, e := range list {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.redis.Stop()
			errs[i] = e.redis.Restart()
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// revokeErrors counts, by error, the attempts to revoke the engine's
// leases that the node's Vault logged as failed; the error is the last
// cause Vault gives, such as "plugin shutdown".
func revokeErrors(n *cluster.Node, e *engine) map[string]int {
	errs := map[string]int{}
	for _, line := range strings.Split(n.Logs[len(n.Logs)-1].String(), "\n") {
		if !strings.Contains(line, "failed to revoke lease: lease_id="+e.mount+"/") {
			continue
		}
		_, err, _ := strings.Cut(line, `error="`)
		err, _, _ = strings.Cut(err, `" attempts=`)
		if i := strings.LastIndex(err, "err: "); i >= 0 {
			err = err[i+len("err: "):]
		}
		errs[err]++
	}
	return errs
}

// users are the users of the engine's Redis that the engine made.
func users(t *testing.T, e *engine) []string {
	t.Helper()
	all, err := e.redis.Users(context.Background())
	if err != nil {
		t.Fatalf("ACL USERS of %s's Redis: %v", e.name, err)
	}
	var made []string
	for _, u := range all {
		if strings.HasPrefix(u, e.prefix) {
			made = append(made, u)
		}
	}
	return made
}
