package checks

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/cluster"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/faults"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/recorder"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/verdict"
)

// The names each check records in its verdicts: the one definition that
// `make mutants` reports.
const (
	HistoryRefused      = "history refused"
	HistoryUndecided    = "history undecided"
	OutsideTheAPI       = "answer outside the API"
	ImpossibleStaleRead = "impossible stale read"
	FailureWithoutFault = "failure without a fault"
	NoProgress          = "no progress"
	SlowRecovery        = "slow recovery"
	MountNotSetUp       = "mount not set up"
	StaleCache          = "stale cache"
)

// minQuietRate is the share of the baseline's acknowledged mutations per
// second that every quiet period must reach.
const minQuietRate = 0.3

// noHandlerWithin bounds how long a node may answer "404 no handler for
// route" within one fault, until it has set the mount up after it started,
// rejoined or changed role.
const noHandlerWithin = 2 * time.Second

// texts are the operations as a verdict lists them.
func texts(ops []recorder.Op) []string {
	var s []string
	for _, o := range ops {
		s = append(s, o.String())
	}
	return s
}

// MustBeLinearizable fails the test unless History found nothing, and logs
// what each exception admitted.
func MustBeLinearizable(t *testing.T, seed int64, res Checked) {
	t.Helper()
	for i, o := range res.Unexpected {
		if i < 10 {
			t.Errorf("unexpected answer, want one the API gives: %s", o)
		}
	}
	if len(res.Unexpected) > 0 {
		verdict.Violation(t, OutsideTheAPI, texts(res.Unexpected)...)
	}
	for _, o := range res.Impossible {
		t.Errorf("an answer from a node's own state returned what was never there, want an older state at most: %s", o)
	}
	if len(res.Impossible) > 0 {
		verdict.Violation(t, ImpossibleStaleRead, texts(res.Impossible)...)
	}
	for _, v := range res.Violations {
		t.Errorf("CHAOS_SEED=%d: %s is not linearizable, want it to be. Explained up to:\n\t%s\nthen none of these can come next:\n\t%s\nvisualisation: %s",
			seed, v.Key, strings.Join(v.Linearized, "\n\t"), strings.Join(v.Next, "\n\t"), v.Visualised)
		verdict.Violation(t, HistoryRefused, v.Next...)
	}
	if res.Result == porcupine.Unknown {
		t.Errorf("CHAOS_SEED=%d: the history check timed out for %v, want a decision", seed, res.Undecided)
		verdict.Undecided(t, HistoryUndecided, res.Undecided...)
	}
	t.Logf("%d operations checked in %v: %s; may have applied twice: %d mutations in flight when a plugin process exited, "+
		"%d through a standby while the active node changed; %d held by an active node when it was deposed, maybe also after their answer; %d answers of a resumed node or a standby were held to "+
		"the weaker rule, %d of them stale", res.Operations, res.CheckerTook.Round(time.Millisecond), res.Result,
		res.ExitResent, res.Redirected, res.Deposed, len(res.SetAside), len(res.Stale))
}

// MustProgress fails the test for every request that got no definite
// answer outside the faults' windows, and for every quiet period in which a
// client got no answer or the cluster acknowledged mutations at less than
// minQuietRate of the run's fault-free start.
func MustProgress(t *testing.T, history []recorder.Op, d faults.Disturbances, end time.Duration) {
	t.Helper()
	p := CheckProgress(history, d.Windows(), 0, end)
	for _, f := range d.Faults {
		t.Logf("window %v-%v of %s (%s): %d requests without a definite answer", f.Start.Round(time.Millisecond),
			f.End.Round(time.Millisecond), f, f.Detail, Unanswered(history, f.Window()))
	}
	for i, o := range p.Failures {
		if i < 10 {
			t.Errorf("no definite answer outside every fault's window, want one: %s", o)
		}
	}
	if len(p.Failures) > 0 {
		verdict.Violation(t, FailureWithoutFault, texts(p.Failures)...)
	}
	senders := map[int]bool{}
	for _, o := range history {
		senders[o.Sender] = true
	}
	var rates []string
	for _, q := range p.Quiet {
		period := fmt.Sprintf("quiet period %v-%v", q.From.Round(time.Millisecond), q.To.Round(time.Millisecond))
		rates = append(rates, fmt.Sprintf("%.0f", q.Rate()))
		if q.Rate() < minQuietRate*p.Baseline {
			t.Errorf("%s: %d mutations acknowledged, %.0f/s, want at least %.0f%% of the fault-free %.0f/s",
				period, q.Acked, q.Rate(), 100*minQuietRate, p.Baseline)
			verdict.Violation(t, NoProgress, period)
		}
		for s := range senders {
			if q.Answered[s] == 0 {
				t.Errorf("%s: client %d got no definite answer, want at least one", period, s)
				verdict.Violation(t, NoProgress, fmt.Sprintf("%s: client %d", period, s))
			}
		}
	}
	t.Logf("progress: %d requests without a definite answer outside the windows; mutations acknowledged per second in "+
		"the quiet periods %v (the first is the fault-free baseline)", len(p.Failures), rates)
}

// MustRecoverWithin fails the test for a fault in which no client got a
// definite answer for longer than its Bound, and logs the longest per kind.
func MustRecoverWithin(t *testing.T, history []recorder.Op, injected []faults.Fault) {
	t.Helper()
	longest := map[string]time.Duration{}
	for _, f := range injected {
		gap := LongestOutage(history, f.Window())
		if gap > f.Bound {
			t.Errorf("%s: no definite answer for %v, want at most %v", f, gap.Round(time.Millisecond), f.Bound)
			verdict.Violation(t, SlowRecovery, f.String())
		}
		longest[f.Kind] = max(longest[f.Kind], gap)
	}
	for kind, gap := range longest {
		t.Logf("%s: the longest time without a definite answer %v", kind, gap.Round(time.Millisecond))
	}
}

// MustSetUpMountsWithin fails the test for a node that, within one fault's
// window, answered "no handler for route" for longer than noHandlerWithin,
// and logs the longest per kind of fault. Outside the windows, any such
// answer already fails MustProgress.
func MustSetUpMountsWithin(t *testing.T, history []recorder.Op, injected []faults.Fault) {
	t.Helper()
	longest := map[string]time.Duration{}
	for _, f := range injected {
		for n, stretch := range NoHandlerStretches(history, f.Window()) {
			if stretch > noHandlerWithin {
				t.Errorf("%s: %s answered \"no handler for route\" for %v, want at most %v", f, n.ID, stretch.Round(time.Millisecond), noHandlerWithin)
				verdict.Violation(t, MountNotSetUp, f.String()+" on "+n.ID)
			}
			longest[f.Kind] = max(longest[f.Kind], stretch)
		}
	}
	t.Logf("the longest stretch in which one node answered \"404 no handler for route\", by kind of fault: %v", longest)
}

// convergeWithin bounds how long after the faults a change written through
// the active node takes to be what every node reads.
const convergeWithin = 2 * time.Second

// MustConverge fails the test unless, once the faults are over, every node
// reads a change just written through the active node within
// convergeWithin. read tells whether a node reads what write wrote; each
// node reads once before the write, so that a node that caches what it
// read has it cached, which only the plugin's Invalidate keeps right.
// write returns how to undo the change, for the tests that share the
// cluster.
func MustConverge(t *testing.T, c *cluster.Cluster, write func(active *cluster.Node) (undo func()), read func(n *cluster.Node) (bool, string)) {
	t.Helper()
	c.WaitServing()
	for _, n := range c.Nodes {
		read(n)
	}
	a := c.Active()
	defer write(a)()
	wrote, converged := time.Now(), true
	for _, n := range c.Nodes {
		if err := cluster.Poll(convergeWithin-time.Since(wrote), func() (bool, string) { return read(n) }); err != nil {
			t.Errorf("%s after the write through %s: %v, want the change within %v", n.ID, a.ID, err, convergeWithin)
			verdict.Violation(t, StaleCache, n.ID)
			converged = false
		}
	}
	if converged {
		t.Logf("every node read the change written through the active node within %v", time.Since(wrote).Round(time.Millisecond))
	}
}
