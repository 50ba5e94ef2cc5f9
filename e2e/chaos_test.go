package e2e

import (
	"fmt"
	"math/rand"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/api/model"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/api/traffic"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/checks"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/cluster"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/faults"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/recorder"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/report"
)

// baselineFor is the fault-free stretch a chaos run starts with: its rate of
// acknowledged writes is what every later quiet period is held to.
const baselineFor = 4 * time.Second

// servingWithin bounds how long after the mount is enabled every node
// serves it: an OpenBao standby that answers reads itself says "no handler
// for route" until it has set the mount up.
const servingWithin = 2 * time.Second

// renameEvery is how often the clients move to new names, so that each
// secret's history stays short enough to decide within seconds, also when
// it is not linearizable.
const renameEvery = 2 * time.Second

// TestChaos_HistoryIsLinearizableUnderFaults records what clients of a
// 3-node cluster see while faults hit it, and checks the history: it is
// linearizable against the API's model; outside the faults' windows every
// request gets a definite answer; every quiet period makes progress at a
// rate near the run's fault-free start. CHAOS_SEED repeats a run's schedule
// and operations; CHAOS_DURATION makes it a long run, with faults drawn at
// random after each kind has run once.
func TestChaos_HistoryIsLinearizableUnderFaults(t *testing.T) {
	seed, duration := chaosSettings(t)
	chaos(t, cluster.Shared(t), seed, duration)
}

// TestChaos_StandbyReadsReturnWrittenStates runs the same chaos on a cluster
// whose standbys answer reads themselves, from their own copy of raft and
// their own plugin process: OpenBao's default. A read a standby answered
// may return an older state of that secret, never one that was not written
// there; every other operation must be linearizable, as on any cluster.
func TestChaos_StandbyReadsReturnWrittenStates(t *testing.T) {
	if !cluster.Tested.StandbyReads {
		t.Skipf("%s has no standby reads: a standby forwards every request (TestCluster_StandbysRunNoPlugin checks it)", cluster.Tested.Title)
	}
	seed, duration := chaosSettings(t)
	res, history := chaos(t, cluster.New(t, 3, false, true), seed, duration)
	behind := map[int64]int{}
	for _, o := range res.Stale {
		behind[model.VersionsBehind(history, o)]++
	}
	t.Logf("standby reads: %d answers held to the weaker rule, %d of them stale reads (versions behind: how many) %v",
		len(res.SetAside), len(res.Stale), behind)
}

// TestCluster_StandbysRunNoPlugin: Vault Community has no standby reads,
// so a standby forwards every request and starts no plugin process.
func TestCluster_StandbysRunNoPlugin(t *testing.T) {
	if cluster.Tested.StandbyReads {
		t.Skipf("%s's standbys answer reads from plugin processes of their own (TestChaos_StandbyReadsReturnWrittenStates checks them)", cluster.Tested.Title)
	}
	c := cluster.Shared(t)
	for _, n := range c.Standbys() {
		if pids := cluster.ProcessesUnder(n.PluginDir); len(pids) > 0 {
			t.Fatalf("standby %s runs plugin processes %v, want none", n.ID, pids)
		}
	}
}

// chaos records clients of cluster c while faults hit it, then checks the
// history, progress, recovery and convergence, and returns what the
// history check found and the history.
func chaos(t *testing.T, c *cluster.Cluster, seed int64, duration time.Duration) (checks.Checked, []recorder.Op) {
	rng := rand.New(rand.NewSource(seed))
	began := time.Now()
	c.WaitServing()
	if ready := time.Since(began); ready > servingWithin {
		t.Errorf("every node served the plugin only %v after the first was asked to, want within %v", ready, servingWithin)
	}
	// Names no earlier run used, a few at a time, so that clients contend.
	names := func(round int) []string {
		var paths []string
		for _, name := range []string{"a", "b", "c"} {
			paths = append(paths, fmt.Sprintf("%s/secrets/chaos/%d/%d/%s", mount, seed, round, name))
		}
		return paths
	}
	tr := traffic.New(c, names(0))
	tr.WithScopedTokens(c)
	rec := recorder.New(c, tr)
	watch := faults.Watch(c, rec.Now)
	rec.Start(seed, recorder.Spec{Pinned: c.Nodes[0], Client: tr.Client()}, recorder.Spec{Pinned: c.Nodes[1], Client: tr.Client()},
		recorder.Spec{Pinned: c.Nodes[2], Client: tr.Client()}, recorder.Spec{Client: tr.Client()},
		recorder.Spec{Client: tr.CreateOnly()}, recorder.Spec{Client: tr.UpdateOnly()})
	rec.Repeat(seed-1, func(rng *rand.Rand) { tr.Race(rec, rng) })
	rec.Every(renameEvery, func(round int) { tr.Use(names(round)) })
	defer rec.Stop()
	time.Sleep(baselineFor)
	injected := injectFaults(t, c, rng, rec.Now, duration)
	time.Sleep(2 * time.Second)
	rec.Stop()
	d := watch.Disturbances(injected)
	history := rec.History()

	checks.MustProgress(t, history, d, rec.Now())
	res := checks.History(model.Secrets{}, history, d, rec.Now(), cluster.FailureDir, fmt.Sprintf("chaos-%d", seed))
	checks.MustBeLinearizable(t, seed, res)
	checks.MustRecoverWithin(t, history, d.Faults)
	checks.MustSetUpMountsWithin(t, history, d.Faults)
	write, read := traffic.ChangeConfig(c)
	checks.MustConverge(t, c, write, read)
	if t.Failed() {
		t.Logf("the history: %s", report.SaveHistory(t, history))
	}
	return res, history
}

// injectFaults injects each kind of fault once, in an order drawn from rng,
// then faults drawn at random until duration has passed, 2 to 4 s apart.
func injectFaults(t *testing.T, c *cluster.Cluster, rng *rand.Rand, now func() time.Duration, duration time.Duration) []faults.Fault {
	schedule := append([]faults.Injector(nil), faults.Kinds...)
	rng.Shuffle(len(schedule), func(i, j int) { schedule[i], schedule[j] = schedule[j], schedule[i] })
	var injected []faults.Fault
	for i := 0; i < len(schedule) || now() < duration; i++ {
		kind := faults.Kinds[rng.Intn(len(faults.Kinds))]
		if i < len(schedule) {
			kind = schedule[i]
		}
		time.Sleep(time.Duration(2000+rng.Intn(2000)) * time.Millisecond)
		f := faults.Inject(c, kind, rng, now)
		injected = append(injected, f)
		t.Logf("%v-%v %s: %s", f.Start.Round(time.Millisecond), f.End.Round(time.Millisecond), f, f.Detail)
	}
	return injected
}

// chaosSettings reads CHAOS_SEED (default: the clock) and CHAOS_DURATION
// (default: one fault of each kind).
func chaosSettings(t *testing.T) (int64, time.Duration) {
	seed := time.Now().UnixNano()
	if s := os.Getenv("CHAOS_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseInt(s, 10, 64); err != nil {
			t.Fatalf("CHAOS_SEED: %v, want an integer", err)
		}
	}
	var duration time.Duration
	if d := os.Getenv("CHAOS_DURATION"); d != "" {
		var err error
		if duration, err = time.ParseDuration(d); err != nil {
			t.Fatalf("CHAOS_DURATION: %v, want a duration such as 10m", err)
		}
	}
	t.Logf("CHAOS_SEED=%d", seed)
	return seed, duration
}
