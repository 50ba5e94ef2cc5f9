package faults

import (
	"fmt"
	"math/rand"
	"syscall"
	"time"

	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/cluster"
)

// KillPlugin is kill -9 of the active node's plugin processes: the server
// starts a new one, and sends the requests in flight to it once more.
var KillPlugin Injector = killPlugin{}

// Reload is a global plugin reload: every node stops its plugin processes
// and starts new ones.
var Reload Injector = reload{}

type killPlugin struct{}

func (killPlugin) Name() string         { return "kill -9 of the plugin" }
func (killPlugin) Bound() time.Duration { return sameActive }

func (killPlugin) hit(c *cluster.Cluster, f *Fault, _ *rand.Rand, now func() time.Duration) {
	pids := cluster.ProcessesUnder(f.Node.PluginDir)
	if len(pids) == 0 {
		c.T.Fatalf("%s is active but runs no plugin process; want one to kill", f.Node.ID)
	}
	f.Start = now()
	for pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	f.Detail = fmt.Sprintf("%d process(es)", len(pids))
}

type reload struct{}

func (reload) Name() string         { return "global plugin reload" }
func (reload) Bound() time.Duration { return sameActive }

func (reload) hit(c *cluster.Cluster, f *Fault, _ *rand.Rand, _ func() time.Duration) {
	f.Node.Server.MustCLI(c.T, cluster.Tested.ReloadArgs(cluster.Plugin.Name, true)...)
}
