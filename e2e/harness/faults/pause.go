package faults

import (
	"fmt"
	"math/rand"
	"syscall"
	"time"

	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/cluster"
)

// Pause stops the active node with SIGSTOP for pauseFor, waits for another
// to take over, and lets it go on with SIGCONT: it takes requests but
// answers none meanwhile, and may answer from its stale state afterwards.
var Pause Injector = pause{}

// pauseFor is how long a paused node stays stopped: longer than an election
// (heartbeat and election timeouts are 1 s with performance_multiplier = 1).
const pauseFor = 5500 * time.Millisecond

type pause struct{}

func (pause) Name() string         { return "SIGSTOP of the active node" }
func (pause) Bound() time.Duration { return changeOfActive }

func (pause) hit(c *cluster.Cluster, f *Fault, _ *rand.Rand, now func() time.Duration) {
	pid, stopped := f.Node.Server.Cmd.Process.Pid, time.Now()
	f.Start = now()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		c.T.Fatalf("SIGSTOP %s: %v", f.Node.ID, err)
	}
	f.Node.Paused = true
	next := c.WaitOtherActive(f.Node)
	elected := now() - f.Start
	time.Sleep(time.Until(stopped.Add(pauseFor)))
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		c.T.Fatalf("SIGCONT %s: %v", f.Node.ID, err)
	}
	f.Resumed = now()
	f.Node.Paused = false
	f.Detail = fmt.Sprintf("%s active after %v; resumed after %v", next.ID, elected.Round(time.Millisecond),
		(f.Resumed - f.Start).Round(time.Millisecond))
	c.WaitStandby(f.Node)
}
