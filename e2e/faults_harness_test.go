package e2e

import (
	"fmt"
	"math/rand"
	"net/http"
	"sort"
	"strings"
	"syscall"
	"time"
)

// The faults a cluster test injects. Each waits, before it returns, until the
// cluster has recovered: every node up, unsealed and a caught-up voter, and
// the plugin serving through the active node.
const (
	faultKillActive  = "kill -9 of the active node"
	faultPause       = "SIGSTOP of the active node"
	faultStepDown    = "step-down"
	faultKillPlugin  = "kill -9 of the plugin"
	faultReload      = "global plugin reload"
	faultKillStandby = "kill -9 of a standby"
)

var faultKinds = []string{faultKillActive, faultPause, faultStepDown, faultKillPlugin, faultReload, faultKillStandby}

// pauseFor is how long a paused node stays stopped: longer than an election
// (heartbeat and election timeouts are 1 s with performance_multiplier = 1).
const pauseFor = 5500 * time.Millisecond

// probePath is read to tell that the plugin serves; it is outside every
// checked history.
var probePath = mount + "/secrets/probe"

// inject runs one fault of kind and returns it, timed by now.
func (c *cluster) inject(kind string, rng *rand.Rand, now func() time.Duration) fault {
	c.t.Helper()
	f := fault{kind: kind, node: c.active()}
	// It starts when the fault hits, after what the harness does to prepare it.
	f.start = now()
	switch kind {
	case faultKillActive:
		f.start = now() - time.Since(f.node.kill(c.t))
		next := c.waitOtherActive(f.node)
		orphans := f.node.killPlugins(c.t)
		f.detail = fmt.Sprintf("%s active; %d orphaned plugin process(es) killed", next.id, orphans)
		c.restart(f.node)
	case faultPause:
		pid, stopped := f.node.srv.cmd.Process.Pid, time.Now()
		f.start = now()
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			c.t.Fatalf("SIGSTOP %s: %v", f.node.id, err)
		}
		f.node.paused = true
		next := c.waitOtherActive(f.node)
		elected := now() - f.start
		time.Sleep(time.Until(stopped.Add(pauseFor)))
		if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
			c.t.Fatalf("SIGCONT %s: %v", f.node.id, err)
		}
		f.resumed = now()
		f.node.paused = false
		f.detail = fmt.Sprintf("%s active after %v; resumed after %v", next.id, elected.Round(time.Millisecond),
			(f.resumed - f.start).Round(time.Millisecond))
		c.waitStandby(f.node)
	case faultStepDown:
		c.must(f.node, http.StatusNoContent, "PUT", "sys/step-down", nil)
		f.detail = c.waitOtherActive(f.node).id + " active"
	case faultKillPlugin:
		pids := processesUnder(f.node.pluginDir)
		f.start = now()
		for pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		if len(pids) == 0 {
			c.t.Fatalf("%s is active but runs no plugin process", f.node.id)
		}
		f.detail = fmt.Sprintf("%d process(es)", len(pids))
	case faultReload:
		f.node.srv.mustCLI(c.t, "plugin", "reload", "-type=secret", "-plugin="+pluginName, "-scope=global")
	case faultKillStandby:
		standbys := c.standbys()
		f.node = standbys[rng.Intn(len(standbys))]
		f.start = now() - time.Since(f.node.kill(c.t))
		c.restart(f.node)
	default:
		c.t.Fatalf("no fault %q", kind)
	}
	c.waitServing()
	f.end = now()
	return f
}

// restart starts a node that was killed, unseals it and waits until it is a
// caught-up voter again.
func (c *cluster) restart(n *node) {
	c.t.Helper()
	n.killPlugins(c.t)
	if err := n.start(); err != nil {
		c.t.Fatal(err)
	}
	c.unseal(n)
	c.waitCaughtUp(n)
	c.waitVoters(len(c.nodes))
}

// waitStandby waits until n, resumed after a pause, knows it is a standby.
func (c *cluster) waitStandby(n *node) {
	c.t.Helper()
	waitFor(c.t, 30*time.Second, n.id+" says it is a standby", func() (bool, string) {
		r, err := sendWith(healthHTTP, n.addr(), "", "GET", "sys/health", nil)
		return err == nil && r.status == http.StatusTooManyRequests, fmt.Sprint(r, err)
	})
	c.waitCaughtUp(n)
}

// waitServing waits until every node answers and the plugin serves a read
// through the active node.
func (c *cluster) waitServing() {
	c.t.Helper()
	a := c.active()
	waitFor(c.t, 30*time.Second, "the plugin serves through "+a.id, func() (bool, string) {
		r, err := send(a.addr(), c.token, "GET", probePath, nil)
		return err == nil && (r.status == http.StatusOK || r.status == http.StatusNotFound && !strings.Contains(r.raw, "route")), fmt.Sprint(r, err)
	})
	for _, n := range c.nodes {
		if _, err := sendWith(healthHTTP, n.addr(), "", "GET", "sys/health", nil); err != nil {
			c.t.Fatalf("%s does not answer: %v", n.id, err)
		}
	}
}

// longestOutage is the longest time within f with no operation of history
// answered by the plugin.
func longestOutage(history []op, f fault) time.Duration {
	var answered []time.Duration
	for _, o := range history {
		if o.out.Outcome != outAmbiguous && o.out.Outcome != outRefused && o.out.Outcome != outUnexpected &&
			o.ret >= f.start && o.ret <= f.end {
			answered = append(answered, o.ret)
		}
	}
	sort.Slice(answered, func(i, j int) bool { return answered[i] < answered[j] })
	longest, last := time.Duration(0), f.start
	for _, at := range append(answered, f.end) {
		longest = max(longest, at-last)
		last = at
	}
	return longest
}
