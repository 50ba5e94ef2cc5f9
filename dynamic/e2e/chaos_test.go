package e2e

import (
	"math/rand"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/vault-reference/vault-plugin-secrets-reference/dynamic/e2e/leases"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/checks"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/faults"
)

// chaosExpiryBound bounds how long after its latest expiry a credential may
// still work while faults hit the cluster: the active node that should
// revoke it may be the one killed, paused or stepped down, and the next one
// revokes it only once it is active (an election, and the requests the old
// one held ending: faults' own bound for a change of active node), then
// restores and revokes the expired leases.
const chaosExpiryBound = 20 * time.Second

// halfMadeWithin bounds how long after the clients stopped a user may
// outlive a create that a fault cut short. Left with its write-ahead log
// entry, the rollback deletes it walMinAge and at most a rollback period
// after the fault (a new active node ticks a period after it took over);
// answered by the plugin but its lease never stored, the sweep deletes it
// a rollback period after its lease's longest life and the plugin's grace
// of a minute.
const halfMadeWithin = roleMaxTTL + time.Minute + rollbackPeriod + 10*time.Second

// TestChaos_LeasesUnderFaults runs the lease clients against a 3-node
// cluster while the harness's faults hit it, each kind once in an order
// drawn from CHAOS_SEED: kill -9 and SIGSTOP of the active node, step-down,
// kill -9 of a standby, of the plugin, a global reload. Every credential
// must work while its lease lives and die within chaosExpiryBound of its
// expiry, an acknowledged revoke must have deleted it, and once every lease
// is dead the server holds no lease and Redis no user of the plugin's,
// but those of creates the faults cut short, until the rollback or the
// sweep deletes them.
func TestChaos_LeasesUnderFaults(t *testing.T) {
	seed := time.Now().UnixNano()
	if s := os.Getenv("CHAOS_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseInt(s, 10, 64); err != nil {
			t.Fatalf("CHAOS_SEED: %v, want an integer", err)
		}
	}
	t.Logf("CHAOS_SEED=%d", seed)
	rng := rand.New(rand.NewSource(seed))
	c, r := setUp(t, 3)
	p := start(t, c, r, 6)
	watch := faults.Watch(c, p.rec.Now)
	time.Sleep(4 * time.Second)
	schedule := append([]faults.Injector(nil), faults.Kinds...)
	rng.Shuffle(len(schedule), func(i, j int) { schedule[i], schedule[j] = schedule[j], schedule[i] })
	var injected []faults.Fault
	for _, kind := range schedule {
		time.Sleep(time.Duration(2000+rng.Intn(2000)) * time.Millisecond)
		f := faults.Inject(c, kind, rng, p.rec.Now)
		injected = append(injected, f)
		t.Logf("%v-%v %s: %s", f.Start.Round(time.Millisecond), f.End.Round(time.Millisecond), f, f.Detail)
	}
	time.Sleep(2 * time.Second)
	p.finish(leases.Bounds{Revoke: 0, Expiry: chaosExpiryBound, HalfMade: halfMadeWithin})
	checks.MustRecoverWithin(t, p.rec.History(), watch.Disturbances(injected).Faults)
}
