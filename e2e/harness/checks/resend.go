package checks

import (
	"time"

	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/cluster"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/faults"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/recorder"
)

// The narrow exceptions of the history check: when the server may have
// applied a mutation twice, and when a node may have answered from its own
// state. Each reasons only in times, nodes and whether an operation
// mutates; the model decides what that means for its operations.

// resentByServer tells whether the server may have sent mutation o to the
// plugin twice: a request in flight when the plugin process serving it
// exits is sent once more, to a new process. o was in flight from its call
// until it could last take effect; an exit happened between when the
// process was last seen and when it was seen gone. Only the active node's
// plugin runs a mutation: on a cluster whose standbys run plugins of their
// own, to answer reads, the exit of one that was a standby all along sends
// nothing again.
func resentByServer(d faults.Disturbances, o recorder.Op) bool {
	if !o.In.Mutates() {
		return false
	}
	for _, e := range d.Exits {
		if o.Call <= e.Gone && openUntil(o, o.Return+pendingFor) >= e.Alive &&
			(!d.StandbyReads || mayHaveBeenActive(d, e.Node, o.Call, e.Gone)) {
			return true
		}
	}
	return false
}

// resentAcrossFailover tells whether mutation o may have been applied twice
// because the active node changed while it was in flight through a standby.
// A standby forwards a request to the active node; when forwarding fails
// (the active node stopped or lost its leadership after it had applied it),
// it falls back to a 307 redirect to the node it now knows as active, and
// the client, as Vault's own does, sends the request again there. So: o
// went to a node other than the one last seen active when o was sent; o
// returned after that node last said it was active (before, forwarding to
// it could not have failed); and another node was seen active before o
// returned, or within SeenLate after (the watcher's lag).
func resentAcrossFailover(d faults.Disturbances, o recorder.Op) bool {
	if !o.In.Mutates() {
		return false
	}
	var activeAtCall *cluster.Node
	var lastSaidActive time.Duration
	for _, a := range d.Actives {
		switch {
		case a.At <= o.Call || a.Node == activeAtCall:
			activeAtCall, lastSaidActive = a.Node, a.At
		case a.At > o.Return+faults.SeenLate:
			return false
		case activeAtCall != nil && a.Node != activeAtCall:
			return activeAtCall != o.Node && o.Return > lastSaidActive
		}
	}
	return false
}

// resentWhenDeposed tells whether mutation o may have been applied once
// more, as late as until, after its client may already have had its answer
// through a retry elsewhere: on a server that forwards what its storage
// refused as "node is not the leader", an active node deposed while it
// held o sends o on to the new active node when it finds out. A paused
// active node finds out when it resumes, and has sent on what it held once
// the fault is over, when every node serves again (SeenLate after, for the
// watcher's lag). What it held is what was in flight, its client still
// waiting, when it stopped; what reached it while it was stopped had not
// applied and is sent on once.
func resentWhenDeposed(d faults.Disturbances, o recorder.Op) (resent bool, until time.Duration) {
	if !d.ForwardsWhenDeposed || !o.In.Mutates() {
		return false, 0
	}
	for _, f := range d.Faults {
		if f.Kind == faults.Pause.Name() && o.Call <= f.Start && o.Return >= f.Start {
			return true, f.End + faults.SeenLate
		}
	}
	return false, 0
}

// mayHaveBeenActive tells whether n may have been the active node at some
// moment from from to to: it said so at the last look before, at a look in
// between, or at the first look after; with no look after, it may have.
func mayHaveBeenActive(d faults.Disturbances, n *cluster.Node, from, to time.Duration) bool {
	last := false
	for _, a := range d.Actives {
		switch {
		case a.At <= from:
			last = a.Node == n
		case a.Node == n:
			return true
		case a.At >= to:
			return last
		}
	}
	return true
}

// answeredAfterPause tells whether o was answered by a node that had been
// paused, within staleWindow of its SIGCONT.
func answeredAfterPause(d faults.Disturbances, o recorder.Op) bool {
	for _, f := range d.Faults {
		if f.Kind == faults.Pause.Name() && o.Node == f.Node && o.Return >= f.Resumed && o.Call <= f.Resumed+staleWindow {
			return true
		}
	}
	return false
}

// answeredByStandby tells whether o may have been answered by a standby
// from its own state, on a cluster whose standbys answer reads: unless the
// node it went to said it was active before o was sent and after o
// returned, and no other node said so in between.
func answeredByStandby(d faults.Disturbances, o recorder.Op) bool {
	if !d.StandbyReads {
		return false
	}
	before, after := false, false
	for _, a := range d.Actives {
		switch {
		case a.At <= o.Call:
			before = a.Node == o.Node
		case a.At >= o.Return:
			after = a.Node == o.Node
			return !before || !after
		case a.Node != o.Node:
			return true
		}
	}
	return true
}
