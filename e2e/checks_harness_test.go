package e2e

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// The checks of a recorded history: linearizability against the model, one
// secret at a time; the reads a resumed node answered, against a weaker
// rule; and progress, outside the faults' windows.

// pendingFor is how long after its client gave up an operation without a
// definite answer may still take effect: a write that reached raft before
// its leader died or was deposed is committed, or dropped, by the next
// leader as soon as it is elected, 2 to 5 s here. A longer bound lets each
// such operation overlap more of the history, and the check's cost grows
// fast with the operations that overlap.
const pendingFor = 10 * time.Second

// staleWindow is how long after its SIGCONT a paused active node may still
// answer reads from its own, stale, state (Vault's behaviour, not the plugin's).
const staleWindow = 3 * time.Second

// checkBudget bounds the whole check; a secret whose history is not decided
// within it makes the check fail as timed out.
const checkBudget = 4 * time.Minute

// decideWithin bounds the check of one secret's history, so that one
// costly history cannot keep the others from being checked.
const decideWithin = 30 * time.Second

// maxViolations ends the check once this many secrets' histories are refused.
const maxViolations = 3

// timedOutMarker is what a report says when porcupine gave up: `make mutants`
// does not count such a failure as a bug caught.
const timedOutMarker = "the history check timed out"

// violation is one secret whose history the model refuses.
type violation struct {
	path string
	// linearized is the end of the longest order porcupine found that
	// explains the history; next are the operations none of which can follow it.
	linearized []string
	next       []string
	visualised string
}

// checked is the outcome of checking a history.
type checked struct {
	result     porcupine.CheckResult
	operations int
	violations []violation
	undecided  []string // secrets porcupine gave up on
	// setAside are the reads a resumed node answered within staleWindow,
	// checked only by impossibleStaleRead; stale are those that returned
	// what was overwritten before they were sent.
	setAside    []op
	stale       []op
	impossible  []op // set-aside reads that returned what was never there
	unexpected  []op
	sentTwice   int  // writes in flight when a plugin process exited, which may have applied twice
	redirected  int  // writes in flight through a standby while the active node changed, likewise
	history     []op // what was checked, kept for versionsBehind
	checkerTook time.Duration
}

// checkHistory checks the recorded operations: each write in flight on a
// Vault whose plugin process exited, or through a standby while the active
// node changed, gets a twin, its first send, which may have applied at any
// moment before the write's answer; the reads a resumed
// node answered right after its SIGCONT are held to impossibleStaleRead;
// everything else must be linearizable. A secret whose history is not gets
// porcupine's visualisation, with the faults annotated, in a file under dir.
func checkHistory(history []op, d disturbances, end time.Duration, dir, name string) checked {
	var res checked
	var kept []op
	for _, o := range history {
		switch {
		case o.out.Outcome == outUnexpected:
			res.unexpected = append(res.unexpected, o)
		case o.out.Outcome == outRefused, o.in.Kind == opRead && o.out.Outcome == outAmbiguous:
			// Nothing reached Vault, or nothing came back: no effect to check.
		default:
			resent, redirected := d.resentByVault(o), d.resentAcrossFailover(o)
			if resent || redirected {
				o.in.SentTwice = true
				res.sentTwice += boolInt(resent)
				res.redirected += boolInt(redirected && !resent)
				first := o
				first.out, first.ret = opOutput{Outcome: outFirstSend}, openUntil(o, end)
				kept = append(kept, first)
			}
			kept = append(kept, o)
		}
	}
	var rest []op
	for _, o := range kept {
		if !d.answeredAfterPause(o) && !d.answeredByStandby(o) {
			rest = append(rest, o)
			continue
		}
		res.setAside = append(res.setAside, o)
		if overwritten(o, kept) {
			res.stale = append(res.stale, o)
		}
		if impossibleStaleRead(o, kept) {
			res.impossible = append(res.impossible, o)
		}
	}
	res.operations = len(rest)
	began := time.Now()
	res.result = porcupine.Ok
	model := secretModel.ToModel()
	for _, part := range byPath(rest) {
		if len(res.violations) == maxViolations {
			break
		}
		ops := operations(part, end)
		budget := min(decideWithin, checkBudget-time.Since(began))
		result, info := porcupine.CheckOperationsVerbose(model, ops, max(budget, time.Second))
		switch result {
		case porcupine.Illegal:
			res.result = porcupine.Illegal
			v := explain(ops, info)
			v.visualised = visualise(model, info, d.faults, dir, fmt.Sprintf("%s-%d", name, len(res.violations)))
			res.violations = append(res.violations, v)
		case porcupine.Unknown:
			res.undecided = append(res.undecided, part[0].in.Path)
		}
	}
	if res.result == porcupine.Ok && len(res.undecided) > 0 {
		res.result = porcupine.Unknown
	}
	res.checkerTook = time.Since(began)
	return res
}

// byPath splits a history into one history per secret, those with the
// fewest operations without a definite answer first: each such operation
// may take effect anywhere after its call, so they make a history costly to
// refuse, and a violation in a quiet stretch is found in milliseconds.
func byPath(history []op) [][]op {
	parts := map[string][]op{}
	for _, o := range history {
		parts[o.in.Path] = append(parts[o.in.Path], o)
	}
	paths := make([]string, 0, len(parts))
	for p := range parts {
		paths = append(paths, p)
	}
	open := func(p string) (n int) {
		for _, o := range parts[p] {
			n += boolInt(!o.out.Outcome.definite())
		}
		return n
	}
	sort.Slice(paths, func(i, j int) bool {
		oi, oj := open(paths[i]), open(paths[j])
		return oi < oj || oi == oj && paths[i] < paths[j]
	})
	result := make([][]op, len(paths))
	for i, p := range paths {
		result[i] = parts[p]
	}
	return result
}

// explain names, for one secret's refused history, the end of the longest
// order porcupine found that explains it, and the first operations called
// that the order leaves out: one of them is what no state allows.
func explain(part []porcupine.Operation, info porcupine.LinearizationInfo) violation {
	v := violation{path: part[0].Input.(opInput).Path}
	var longest []porcupine.Operation
	if partials := info.PartialLinearizationsOperations(); len(partials) > 0 {
		for _, l := range partials[0] {
			if len(l) > len(longest) {
				longest = l
			}
		}
	}
	done := map[string]bool{}
	for i, o := range longest {
		done[opText(o)] = true
		if i >= len(longest)-3 {
			v.linearized = append(v.linearized, opText(o))
		}
	}
	rest := append([]porcupine.Operation(nil), part...)
	sort.Slice(rest, func(i, j int) bool { return rest[i].Call < rest[j].Call })
	for _, o := range rest {
		if text := opText(o); !done[text] && len(v.next) < 3 {
			v.next = append(v.next, text)
		}
	}
	return v
}

func opText(o porcupine.Operation) string {
	return fmt.Sprintf("[%v, %v] %s via %v", time.Duration(o.Call).Round(time.Millisecond),
		time.Duration(o.Return).Round(time.Millisecond), describe(o.Input.(opInput), o.Output.(opOutput)), o.Metadata)
}

// operations converts recorded operations to porcupine's, with an ambiguous
// one open for pendingFor after its return, or until end.
func operations(history []op, end time.Duration) []porcupine.Operation {
	ops := make([]porcupine.Operation, len(history))
	for i, o := range history {
		ops[i] = porcupine.Operation{ClientId: o.client, Input: o.in, Output: o.out,
			Call: int64(o.call), Return: int64(openUntil(o, end)), Metadata: o.node.id + ": " + o.answer}
	}
	return ops
}

// openUntil is when o may last have taken effect.
func openUntil(o op, end time.Duration) time.Duration {
	if o.out.Outcome.definite() || o.out.Outcome == outFirstSend {
		return o.ret
	}
	return min(end, o.ret+pendingFor)
}

// overwritten tells whether read o returned a state that an acknowledged
// write had replaced before o was sent: a stale read, whatever the order of
// the operations that overlap it.
func overwritten(o op, history []op) bool {
	if o.in.Kind != opRead || o.out.Outcome != outOK {
		return false
	}
	made := writeOf(o, history)
	if made == nil || !made.out.Outcome.definite() {
		return false
	}
	for _, w := range history {
		if w.in.Path == o.in.Path && w.in.Kind != opRead && w.in.Token != o.out.Token &&
			w.out.Outcome == outOK && w.call > made.ret && w.ret < o.call {
			return true
		}
	}
	return false
}

// writeOf is the write whose token read o returned, nil if none wrote it there.
func writeOf(o op, history []op) *op {
	for i := range history {
		if w := &history[i]; w.in.Path == o.in.Path && w.in.Token == o.out.Token && w.in.Kind != opRead && w.out.Outcome != outFirstSend {
			return w
		}
	}
	return nil
}

// versionsBehind is how many versions older than the newest one
// acknowledged before it was sent read o returned.
func (res checked) versionsBehind(o op) int64 {
	var newest int64
	for _, w := range res.history {
		if w.in.Path == o.in.Path && (w.in.Kind == opWrite || w.in.Kind == opCAS) && w.out.Outcome == outOK && w.ret < o.call {
			newest = max(newest, w.out.Version)
		}
	}
	return newest - o.out.Version
}

// impossibleStaleRead holds a read a resumed node or a standby answered to
// what it may return, and a standby's 403 to a create-only write to a state
// the secret was once in: an older state of that secret, never a token no write sent there
// before the read returned, nor a version other than the one that write
// made, nor, for a write without an answer, above the highest acknowledged.
func impossibleStaleRead(o op, history []op) bool {
	if o.out.Outcome == outDenied && o.in.As == asCreateOnly {
		// Denied as existing: some write may have made it exist before.
		for _, w := range history {
			if w.in.Path == o.in.Path && (w.in.Kind == opWrite || w.in.Kind == opCAS) && w.call < o.ret && w.out.Outcome != outDenied {
				return false
			}
		}
		return true
	}
	if o.in.Kind != opRead || o.out.Outcome != outOK {
		return false
	}
	made := writeOf(o, history)
	switch {
	case made == nil || made.call > o.ret:
		return true
	case made.out.Outcome == outOK:
		return made.out.Version != o.out.Version
	}
	var acknowledged, unanswered int64
	for _, w := range history {
		if w.in.Path == o.in.Path && (w.in.Kind == opWrite || w.in.Kind == opCAS) && w.call < o.ret {
			if w.out.Outcome == outOK {
				acknowledged = max(acknowledged, w.out.Version)
			} else if !w.out.Outcome.definite() {
				unanswered += 2 // it may have landed twice
			}
		}
	}
	return o.out.Version < 1 || o.out.Version > acknowledged+unanswered
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// progress is what the progress check found.
type progress struct {
	failures []op // answers without a definite outcome outside every fault's window
	quiet    []quietPeriod
	baseline float64 // writes acknowledged per second before the first fault
}

// quietPeriod is a stretch between fault windows and what clients got in it.
type quietPeriod struct {
	from, to time.Duration
	acked    int         // writes acknowledged
	answered map[int]int // definite answers per client
}

func (q quietPeriod) rate() float64 { return float64(q.acked) / (q.to - q.from).Seconds() }

// minQuiet is the shortest quiet period the progress check rates.
const minQuiet = time.Second

// checkProgress finds every operation that failed outside the windows, and
// what each quiet period between them achieved; the first quiet period,
// before any fault, is the run's baseline.
func checkProgress(history []op, windows []window, from, to time.Duration) progress {
	var p progress
	inWindow := func(call, ret time.Duration) bool {
		for _, w := range windows {
			if call <= w.to && ret >= w.from {
				return true
			}
		}
		return false
	}
	for _, o := range history {
		if !o.out.Outcome.definite() && !inWindow(o.call, o.ret) {
			p.failures = append(p.failures, o)
		}
	}
	for _, q := range quietPeriods(windows, from, to) {
		q.answered = map[int]int{}
		for _, o := range history {
			if o.call >= q.from && o.ret <= q.to && o.out.Outcome.definite() {
				q.answered[o.in.Sender]++
				if o.out.Outcome == outOK && (o.in.Kind == opWrite || o.in.Kind == opCAS) {
					q.acked++
				}
			}
		}
		if len(p.quiet) == 0 {
			p.baseline = q.rate()
		}
		p.quiet = append(p.quiet, q)
	}
	return p
}

// window is a stretch of time in which a fault may fail requests.
type window struct{ from, to time.Duration }

// quietPeriods are the stretches of [from, to] at least minQuiet long that no
// window touches.
func quietPeriods(windows []window, from, to time.Duration) []quietPeriod {
	sorted := append([]window(nil), windows...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].from < sorted[j].from })
	var quiet []quietPeriod
	at := from
	for _, w := range append(sorted, window{from: to, to: to}) {
		if w.from-at >= minQuiet {
			quiet = append(quiet, quietPeriod{from: at, to: w.from})
		}
		at = max(at, w.to)
	}
	return quiet
}

// unanswered counts the requests without a definite answer that w admitted.
func unanswered(history []op, w window) int {
	n := 0
	for _, o := range history {
		if !o.out.Outcome.definite() && o.call <= w.to && o.ret >= w.from {
			n++
		}
	}
	return n
}

// noHandlerStretches returns, for each node that answered "no handler for
// route" to a request that overlapped window w, how long it did: from the
// call of its first such answer to the return of its last.
func noHandlerStretches(history []op, w window) map[*node]time.Duration {
	first, last := map[*node]time.Duration{}, map[*node]time.Duration{}
	for _, o := range history {
		if o.ret < w.from || o.call > w.to || !strings.Contains(o.answer, "no handler for route") {
			continue
		}
		if at, seen := first[o.node]; !seen || o.call < at {
			first[o.node] = o.call
		}
		last[o.node] = max(last[o.node], o.ret)
	}
	stretches := map[*node]time.Duration{}
	for n, from := range first {
		stretches[n] = last[n] - from
	}
	return stretches
}

// longestOutage is the longest time within w in which no client got a
// definite answer.
func longestOutage(history []op, w window) time.Duration {
	var answered []time.Duration
	for _, o := range history {
		if o.out.Outcome.definite() && o.ret >= w.from && o.ret <= w.to {
			answered = append(answered, o.ret)
		}
	}
	sort.Slice(answered, func(i, j int) bool { return answered[i] < answered[j] })
	longest, last := time.Duration(0), w.from
	for _, at := range append(answered, w.to) {
		longest = max(longest, at-last)
		last = at
	}
	return longest
}
