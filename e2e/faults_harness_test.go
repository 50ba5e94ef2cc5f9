package e2e

import (
	"fmt"
	"math/rand"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The faults a cluster test injects, and what the cluster does by itself
// while it runs. Each fault waits, before it returns, until the cluster has
// recovered: every node up, unsealed and a caught-up voter, and the plugin
// serving through every node.
const (
	faultKillActive  = "kill -9 of the active node"
	faultPause       = "SIGSTOP of the active node"
	faultStepDown    = "step-down"
	faultKillPlugin  = "kill -9 of the plugin"
	faultReload      = "global plugin reload"
	faultKillStandby = "kill -9 of a standby"
	// faultElection is not injected: an election the machine caused itself
	// (a starved 2-core machine can), seen by the watcher.
	faultElection = "election nobody caused"
)

var faultKinds = []string{faultKillActive, faultPause, faultStepDown, faultKillPlugin, faultReload, faultKillStandby}

// outageBound is, per kind of fault, the longest time clients may all go
// without a definite answer. Where the active node changes: an election (2
// to 5 s here), after which the new active node serves once the requests
// forwarded to the old one have ended, which may take a client's deadline
// (4 s) twice; measured up to 8.2 s. Where it does not: measured under
// 0.1 s. An election nobody caused is bounded by its own window.
var outageBound = map[string]time.Duration{
	faultKillActive:  13 * time.Second,
	faultPause:       13 * time.Second,
	faultStepDown:    13 * time.Second,
	faultKillPlugin:  time.Second,
	faultReload:      time.Second,
	faultKillStandby: time.Second,
	faultElection:    2 * electionSpan,
}

// pauseFor is how long a paused node stays stopped: longer than an election
// (heartbeat and election timeouts are 1 s with performance_multiplier = 1).
const pauseFor = 5500 * time.Millisecond

// electionSpan is how long before the watcher sees a new active node
// requests may already fail (the old one lost its quorum, followers wait an
// election timeout and vote), and how long after it they may still fail
// (the new active node sets up its mounts).
const electionSpan = 5 * time.Second

// seenLate bounds how long after an election the watcher may see it: it
// asks every 250 ms, each node with a 500 ms deadline.
const seenLate = 2 * time.Second

// probePath is read to tell that the plugin serves; it is outside every
// checked history.
var probePath = mount + "/secrets/probe"

// fault is one fault: from start to end the cluster was disturbed and
// recovering; resumed is when a paused node got SIGCONT.
type fault struct {
	kind    string
	node    *node
	start   time.Duration
	end     time.Duration
	resumed time.Duration
	detail  string
}

func (f fault) String() string { return fmt.Sprintf("%s (%s)", f.kind, f.node.id) }

func (f fault) window() window { return window{from: f.start, to: f.end} }

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
		orphans := f.node.mustKillPluginProcesses(c.t)
		if orphans == 0 {
			// The README tells operators to look for it.
			c.t.Errorf("%s was killed, active, and left no plugin process behind", f.node.id)
		}
		f.detail = fmt.Sprintf("%s active; %d orphaned plugin process(es) killed", next.id, orphans)
		c.restart(f.node)
	case faultPause:
		c.pause(&f, now)
	case faultStepDown:
		must(c.t, f.node, http.StatusNoContent, "PUT", "sys/step-down", nil)
		f.detail = c.waitOtherActive(f.node).id + " active"
	case faultKillPlugin:
		pids := processesUnder(f.node.pluginDir)
		if len(pids) == 0 {
			c.t.Fatalf("%s is active but runs no plugin process", f.node.id)
		}
		f.start = now()
		for pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		f.detail = fmt.Sprintf("%d process(es)", len(pids))
	case faultReload:
		f.node.srv.mustCLI(c.t, tested.reloadArgs(true)...)
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

// pause stops the active node for pauseFor, waits for another to take
// over, and lets it go on.
func (c *cluster) pause(f *fault, now func() time.Duration) {
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
}

// disturbances are what happened to a cluster while a history was recorded.
type disturbances struct {
	faults []fault
	exits  []pluginExit
	// actives say which node was active when, for a cluster whose
	// standbys answer reads themselves (standbyReads).
	actives      []activeSeen
	standbyReads bool
}

// windows are the stretches in which requests may fail.
func (d disturbances) windows() []window {
	var w []window
	for _, f := range d.faults {
		w = append(w, f.window())
	}
	return w
}

// resentByVault tells whether Vault may have sent write o to the plugin
// twice: a request in flight when the plugin process serving it exits is
// sent once more, to a new process. o was in flight from its call until it
// could last take effect; an exit happened between when the process was
// last seen and when it was seen gone. Only the active node's plugin runs a
// write: on a cluster whose standbys run plugins of their own, to answer
// reads, the exit of one that was a standby all along sends nothing again.
func (d disturbances) resentByVault(o op) bool {
	if o.in.Kind != opWrite && o.in.Kind != opCAS {
		return false
	}
	for _, e := range d.exits {
		if o.call <= e.gone && openUntil(o, o.ret+pendingFor) >= e.alive &&
			(!d.standbyReads || d.mayHaveBeenActive(e.node, o.call, e.gone)) {
			return true
		}
	}
	return false
}

// resentAcrossFailover tells whether write o may have been applied twice
// because the active node changed while it was in flight through a standby.
// A standby forwards a write to the active node; when forwarding fails (the
// active node stopped or lost its leadership after it had applied the write),
// it falls back to a 307 redirect to the node it now knows as active, and the
// client, as Vault's own does, sends the write again there. So: o went to a
// node other than the one last seen active when o was sent, and another node
// was seen active before o returned, or within seenLate after, the watcher's
// lag.
func (d disturbances) resentAcrossFailover(o op) bool {
	if o.in.Kind != opWrite && o.in.Kind != opCAS {
		return false
	}
	var activeAtCall *node
	for _, a := range d.actives {
		switch {
		case a.at <= o.call:
			activeAtCall = a.node
		case a.at > o.ret+seenLate:
			return false
		case activeAtCall != nil && a.node != activeAtCall:
			return activeAtCall != o.node
		}
	}
	return false
}

// mayHaveBeenActive tells whether n may have been the active node at some
// moment from from to to: it said so at the last look before, at a look in
// between, or at the first look after; with no look after, it may have.
func (d disturbances) mayHaveBeenActive(n *node, from, to time.Duration) bool {
	last := false
	for _, a := range d.actives {
		switch {
		case a.at <= from:
			last = a.node == n
		case a.node == n:
			return true
		case a.at >= to:
			return last
		}
	}
	return true
}

// answeredAfterPause tells whether o is a read answered by a node that had
// been paused, within staleWindow of its SIGCONT.
func (d disturbances) answeredAfterPause(o op) bool {
	if o.in.Kind != opRead {
		return false
	}
	for _, f := range d.faults {
		if f.kind == faultPause && o.node == f.node && o.ret >= f.resumed && o.call <= f.resumed+staleWindow {
			return true
		}
	}
	return false
}

// answeredByStandby tells whether o may have been answered by a standby
// from its own state: a read, or the 403 of a write whose create-or-update
// decision (an existence check, itself a read) the standby made. On a
// cluster with standby reads, unless the node it went to said it was active
// before o was sent and after o returned, and no other node said so in
// between.
func (d disturbances) answeredByStandby(o op) bool {
	if !d.standbyReads || o.in.Kind != opRead && o.out.Outcome != outDenied {
		return false
	}
	before, after := false, false
	for _, a := range d.actives {
		switch {
		case a.at <= o.call:
			before = a.node == o.node
		case a.at >= o.ret:
			after = a.node == o.node
			return !before || !after
		case a.node != o.node:
			return true
		}
	}
	return true
}

// pluginExit is a plugin process that ended while its Vault ran, last seen
// alive at alive and seen gone at gone.
type pluginExit struct {
	node        *node
	pid         int
	alive, gone time.Duration
}

// watcher follows, while a history is recorded, the plugin processes of
// every node, to time each exit, and the active node, to see elections.
type watcher struct {
	c    *cluster
	now  func() time.Duration
	stop chan struct{}
	done sync.WaitGroup

	mu        sync.Mutex
	exits     []pluginExit
	elections []time.Duration
	actives   []activeSeen
}

// activeSeen is a node that said, at that moment, it was the active one.
type activeSeen struct {
	at   time.Duration
	node *node
}

// watchPluginsEvery is how often the watcher asks whether a known plugin
// process still runs: it bounds how precisely an exit is timed.
const watchPluginsEvery = 20 * time.Millisecond

func startWatcher(c *cluster, now func() time.Duration) *watcher {
	w := &watcher{c: c, now: now, stop: make(chan struct{})}
	w.done.Add(2)
	go w.watchPlugins()
	go w.watchElections()
	return w
}

// disturbances ends the watch and returns what it saw beside the faults
// injected, each election that no fault explains as a fault of its own.
func (w *watcher) disturbances(injected []fault) disturbances {
	close(w.stop)
	w.done.Wait()
	d := disturbances{faults: append([]fault(nil), injected...), exits: w.exits, actives: w.actives, standbyReads: w.c.standbyReads}
	for _, at := range w.elections {
		explained := false
		for _, f := range injected {
			explained = explained || at >= f.start && at <= f.end+seenLate
		}
		if !explained {
			d.faults = append(d.faults, fault{kind: faultElection, node: &node{id: "?"},
				start: at - electionSpan, end: at + electionSpan, detail: fmt.Sprintf("seen at %v", at.Round(time.Millisecond))})
		}
	}
	return d
}

type watched struct {
	node   *node
	parent int
	alive  time.Duration
}

func (w *watcher) watchPlugins() {
	defer w.done.Done()
	known := map[int]*watched{}
	var lastList time.Time
	for {
		select {
		case <-w.stop:
			return
		case <-time.After(watchPluginsEvery):
		}
		if time.Since(lastList) > 250*time.Millisecond {
			lastList = time.Now()
			w.discover(known)
		}
		for pid, p := range known {
			if syscall.Kill(pid, 0) == nil {
				p.alive = w.now()
				continue
			}
			delete(known, pid)
			// A plugin that outlived its killed Vault has no Vault to resend to.
			if syscall.Kill(p.parent, 0) == nil {
				w.mu.Lock()
				w.exits = append(w.exits, pluginExit{node: p.node, pid: pid, alive: p.alive, gone: w.now()})
				w.mu.Unlock()
			}
		}
	}
}

// discover adds the plugin processes started since the last look.
func (w *watcher) discover(known map[int]*watched) {
	for _, n := range w.c.nodes {
		for _, p := range processesWhere(func(p process) bool { return strings.HasPrefix(p.args, n.pluginDir+"/") }) {
			if _, ok := known[p.pid]; !ok {
				known[p.pid] = &watched{node: n, parent: p.parent, alive: w.now()}
			}
		}
	}
}

// watchElections asks every node, four times a second, when the active
// node it knows became active; a time not seen before is an election.
func (w *watcher) watchElections() {
	defer w.done.Done()
	seen := map[string]bool{}
	client := &http.Client{Timeout: 500 * time.Millisecond}
	for {
		select {
		case <-w.stop:
			return
		case <-time.After(250 * time.Millisecond):
		}
		for _, n := range w.c.nodes {
			r, err := sendWith(client, n.addr(), "", "GET", "sys/leader", nil)
			if self, _ := r.body["is_self"].(bool); err == nil && self {
				w.mu.Lock()
				w.actives = append(w.actives, activeSeen{at: w.now(), node: n})
				w.mu.Unlock()
			}
			since, _ := r.body["active_time"].(string)
			if err != nil || since == "" || since == "0001-01-01T00:00:00Z" || seen[since] {
				continue
			}
			isNew := len(seen) > 0
			seen[since] = true
			if isNew {
				w.mu.Lock()
				w.elections = append(w.elections, w.now())
				w.mu.Unlock()
			}
		}
	}
}
