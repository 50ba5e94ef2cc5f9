// Package faults injects faults into a cluster, one family per file behind
// one interface, and watches what the cluster does by itself meanwhile:
// plugin processes that exit, elections, which node is active. Each fault
// waits, before it returns, until the cluster has recovered: every node up,
// unsealed and a caught-up voter, and the plugin serving through every node.
package faults

import (
	"fmt"
	"math/rand"
	"time"

	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/cluster"
)

// Injector is one family of faults.
type Injector interface {
	// Name is what reports call the fault.
	Name() string
	// Bound is the longest time clients may all go without a definite
	// answer while it disturbs the cluster.
	Bound() time.Duration
	// hit does the fault to f.Node, the active node, or to a node it
	// chooses, and notes in f when it hit and what followed.
	hit(c *cluster.Cluster, f *Fault, rng *rand.Rand, now func() time.Duration)
}

// Kinds are the faults a chaos run injects, each once, then at random.
var Kinds = []Injector{KillActive, Pause, StepDown, KillPlugin, Reload, KillStandby}

// changeOfActive bounds an outage where the active node changes: an
// election (heartbeat and election timeouts are 1 s), after which the new
// active node serves once the requests forwarded to the old one have ended,
// which may take a client's deadline (4 s) twice.
const changeOfActive = 13 * time.Second

// sameActive bounds an outage where the active node stays.
const sameActive = time.Second

// Fault is one fault: from Start to End the cluster was disturbed and
// recovering; Resumed is when a paused node got SIGCONT.
type Fault struct {
	Kind    string
	Bound   time.Duration
	Node    *cluster.Node
	Start   time.Duration
	End     time.Duration
	Resumed time.Duration
	Detail  string
}

func (f Fault) String() string { return fmt.Sprintf("%s (%s)", f.Kind, f.Node.ID) }

// Window is the stretch of time in which the fault may fail requests.
func (f Fault) Window() Window { return Window{From: f.Start, To: f.End} }

// Window is a stretch of time in which a fault may fail requests.
type Window struct{ From, To time.Duration }

// Inject does one fault of kind to c's active node (or a node the kind
// chooses), waits until the cluster serves again, and returns it, timed by now.
func Inject(c *cluster.Cluster, kind Injector, rng *rand.Rand, now func() time.Duration) Fault {
	c.T.Helper()
	f := Fault{Kind: kind.Name(), Bound: kind.Bound(), Node: c.Active()}
	// It starts when the fault hits, after what the harness does to prepare it.
	f.Start = now()
	kind.hit(c, &f, rng, now)
	c.WaitServing()
	f.End = now()
	return f
}
