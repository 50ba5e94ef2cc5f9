package faults

import (
	"fmt"
	"math/rand"
	"time"

	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/cluster"
)

// KillActive is kill -9 of the active node's server, as when its machine
// dies; it is then started again, unsealed and rejoins.
var KillActive Injector = killActive{}

// KillStandby is kill -9 of a standby, started again afterwards.
var KillStandby Injector = killStandby{}

type killActive struct{}

func (killActive) Name() string         { return "kill -9 of the active node" }
func (killActive) Bound() time.Duration { return changeOfActive }

func (killActive) hit(c *cluster.Cluster, f *Fault, _ *rand.Rand, now func() time.Duration) {
	f.Start = now() - time.Since(f.Node.Kill(c.T))
	next := c.WaitOtherActive(f.Node)
	orphans := f.Node.MustKillPluginProcesses(c.T)
	if orphans == 0 {
		// The docs tell operators to look for it.
		c.T.Errorf("%s was killed, active, and left no plugin process behind; want at least one orphan", f.Node.ID)
	}
	f.Detail = fmt.Sprintf("%s active; %d orphaned plugin process(es) killed", next.ID, orphans)
	c.Restart(f.Node)
}

type killStandby struct{}

func (killStandby) Name() string         { return "kill -9 of a standby" }
func (killStandby) Bound() time.Duration { return sameActive }

func (killStandby) hit(c *cluster.Cluster, f *Fault, rng *rand.Rand, now func() time.Duration) {
	standbys := c.Standbys()
	f.Node = standbys[rng.Intn(len(standbys))]
	f.Start = now() - time.Since(f.Node.Kill(c.T))
	c.Restart(f.Node)
}
