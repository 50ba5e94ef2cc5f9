package faults

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/cluster"
)

// Election is not injected: an election the machine caused itself (a
// starved 2-core machine can), seen by the watcher. Its window is
// ElectionSpan either side of when it was seen.
const Election = "election nobody caused"

// ElectionSpan is how long before the watcher sees a new active node
// requests may already fail (the old one lost its quorum, followers wait an
// election timeout and vote), and how long after it they may still fail
// (the new active node sets up its mounts).
const ElectionSpan = 5 * time.Second

// SeenLate bounds how long after an election the watcher may see it: it
// asks every 250 ms, each node with a 500 ms deadline.
const SeenLate = 2 * time.Second

// Disturbances are what happened to a cluster while a history was recorded.
type Disturbances struct {
	Faults []Fault
	Exits  []PluginExit
	// Actives say which node said it was active when.
	Actives []ActiveSeen
	// StandbyReads: the cluster's standbys answer reads themselves.
	StandbyReads bool
	// ForwardsWhenDeposed: see cluster.Kind.
	ForwardsWhenDeposed bool
}

// Windows are the stretches in which requests may fail.
func (d Disturbances) Windows() []Window {
	var w []Window
	for _, f := range d.Faults {
		w = append(w, f.Window())
	}
	return w
}

// PluginExit is a plugin process that ended while its Vault ran, last seen
// alive at alive and seen gone at gone.
type PluginExit struct {
	Node        *cluster.Node
	PID         int
	Alive, Gone time.Duration
}

// Watcher follows, while a history is recorded, the plugin processes of
// every node, to time each exit, and the active node, to see elections.
type Watcher struct {
	c    *cluster.Cluster
	now  func() time.Duration
	stop chan struct{}
	done sync.WaitGroup

	mu        sync.Mutex
	exits     []PluginExit
	elections []time.Duration
	actives   []ActiveSeen
}

// ActiveSeen is a node that said, at that moment, it was the active one.
type ActiveSeen struct {
	At   time.Duration
	Node *cluster.Node
}

// watchPluginsEvery is how often the watcher asks whether a known plugin
// process still runs: it bounds how precisely an exit is timed.
const watchPluginsEvery = 20 * time.Millisecond

func Watch(c *cluster.Cluster, now func() time.Duration) *Watcher {
	w := &Watcher{c: c, now: now, stop: make(chan struct{})}
	w.done.Add(2)
	go w.watchPlugins()
	go w.watchElections()
	return w
}

// Disturbances ends the watch and returns what it saw beside the faults
// injected, each election that no fault explains as a fault of its own.
func (w *Watcher) Disturbances(injected []Fault) Disturbances {
	close(w.stop)
	w.done.Wait()
	d := Disturbances{Faults: append([]Fault(nil), injected...), Exits: w.exits, Actives: w.actives, StandbyReads: w.c.StandbyReads,
		ForwardsWhenDeposed: cluster.Tested.ForwardsWhenDeposed}
	for _, at := range w.elections {
		explained := false
		for _, f := range injected {
			explained = explained || at >= f.Start && at <= f.End+SeenLate
		}
		if !explained {
			d.Faults = append(d.Faults, Fault{Kind: Election, Bound: 2 * ElectionSpan, Node: &cluster.Node{ID: "?"},
				Start: at - ElectionSpan, End: at + ElectionSpan, Detail: fmt.Sprintf("seen at %v", at.Round(time.Millisecond))})
		}
	}
	return d
}

type watched struct {
	node   *cluster.Node
	parent int
	alive  time.Duration
}

func (w *Watcher) watchPlugins() {
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
				w.exits = append(w.exits, PluginExit{Node: p.node, PID: pid, Alive: p.alive, Gone: w.now()})
				w.mu.Unlock()
			}
		}
	}
}

// discover adds the plugin processes started since the last look.
func (w *Watcher) discover(known map[int]*watched) {
	for _, n := range w.c.Nodes {
		for _, p := range cluster.ProcessesWhere(func(p cluster.Process) bool { return strings.HasPrefix(p.Args, n.PluginDir+"/") }) {
			if _, ok := known[p.PID]; !ok {
				known[p.PID] = &watched{node: n, parent: p.Parent, alive: w.now()}
			}
		}
	}
}

// watchElections asks every node, four times a second, when the active
// node it knows became active; a time not seen before is an election.
func (w *Watcher) watchElections() {
	defer w.done.Done()
	seen := map[string]bool{}
	client := &http.Client{Timeout: 500 * time.Millisecond}
	for {
		select {
		case <-w.stop:
			return
		case <-time.After(250 * time.Millisecond):
		}
		for _, n := range w.c.Nodes {
			r, err := cluster.SendWith(client, n.Addr(), "", "GET", "sys/leader", nil)
			if self, _ := r.Body["is_self"].(bool); err == nil && self {
				w.mu.Lock()
				w.actives = append(w.actives, ActiveSeen{At: w.now(), Node: n})
				w.mu.Unlock()
			}
			since, _ := r.Body["active_time"].(string)
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
