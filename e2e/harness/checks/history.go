// Package checks judges a recorded history: linearizability against an
// API's model, one key at a time, with each narrow exception counted;
// progress outside the faults' windows; how long each fault kept every
// client without an answer; and convergence of every node after the faults.
// Each check that fails a test also records a verdict naming itself, for
// `make mutants`.
package checks

import (
	"fmt"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/faults"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/recorder"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/report"
)

// Model is what the history check needs of an API's model.
type Model interface {
	// Porcupine is the model each key's history is checked against; its
	// inputs and outputs are the recorder's Input and Output values.
	Porcupine() porcupine.Model
	// Judge says what the check makes of o.
	Judge(o recorder.Op) Judgement
	// SentTwice returns o marked as sent twice, and its other send, which
	// may have applied at any moment before o's answer, or not at all; when
	// late, also after o's answer, up to the moment the check gives it.
	SentTwice(o recorder.Op, late bool) (other, marked recorder.Op)
	// FromOwnState tells whether o's answer may come from the state of the
	// node that answered rather than from the active node's: a read, or a
	// decision made from one.
	FromOwnState(o recorder.Op) bool
	// Stale judges such an answer against the history: stale if it returned
	// a state already replaced before it was sent, impossible if it returned
	// what no state of that key ever was.
	Stale(o recorder.Op, history []recorder.Op) (stale, impossible bool)
}

// Judgement is what the history check makes of one operation.
type Judgement int

const (
	// Check: it is held to the model.
	Check Judgement = iota
	// Ignore: it had no effect to check (nothing reached the plugin, or a
	// read got no answer).
	Ignore
	// Unexpected: an answer the API never gives; it fails the test.
	Unexpected
)

// pendingFor is how long after its client gave up an operation without a
// definite answer may still take effect: a write that reached raft before
// its leader died or was deposed is committed, or dropped, by the next
// leader as soon as it is elected. A longer bound lets each such operation
// overlap more of the history, and the check's cost grows fast with the
// operations that overlap.
const pendingFor = 10 * time.Second

// staleWindow is how long after its SIGCONT a paused active node may still
// answer from its own, stale, state (the server's behaviour, not the plugin's).
const staleWindow = 3 * time.Second

// checkBudget bounds the whole check; a key whose history is not decided
// within it makes the check fail as timed out.
const checkBudget = 4 * time.Minute

// decideWithin bounds the check of one key's history, so that one costly
// history cannot keep the others from being checked.
const decideWithin = 30 * time.Second

// maxViolations ends the check once this many keys' histories are refused.
const maxViolations = 3

// Violation is one key whose history the model refuses.
type Violation struct {
	Key string
	// Linearized is the end of the longest order porcupine found that
	// explains the history; Next are the operations none of which can follow it.
	Linearized []string
	Next       []string
	Visualised string
}

// Checked is the outcome of checking a history.
type Checked struct {
	Result     porcupine.CheckResult
	Operations int
	Violations []Violation
	Undecided  []string // keys porcupine gave up on
	// SetAside are the answers a node gave from its own state, a resumed
	// node's or a standby's, held only to the model's Stale; Stale are those
	// that returned what was replaced before they were sent; Impossible
	// those that returned what never was.
	SetAside   []recorder.Op
	Stale      []recorder.Op
	Impossible []recorder.Op
	Unexpected []recorder.Op
	// ExitResent counts the mutations in flight when a plugin process
	// exited; Redirected those in flight through a standby while the
	// active node changed: each may have applied twice. Deposed counts the
	// mutations an active node held when it was deposed (some also counted
	// in the others), whose other send may also come after their answer.
	ExitResent  int
	Redirected  int
	Deposed     int
	CheckerTook time.Duration
}

// entry is an operation as the check sees it: until is when it may last
// have taken effect.
type entry struct {
	recorder.Op
	until time.Duration
}

// History checks the recorded operations against m. Each mutation that
// may have been sent twice (sentTwice) gets a twin, its first send; the
// answers a node gave from its own state (fromOwnState) are held to m's
// Stale; everything else must be linearizable. A key whose history is not
// gets porcupine's visualisation, with the faults annotated, in a file
// under dir.
func History(m Model, history []recorder.Op, d faults.Disturbances, end time.Duration, dir, name string) Checked {
	var res Checked
	var kept []entry
	for _, o := range history {
		switch m.Judge(o) {
		case Unexpected:
			res.Unexpected = append(res.Unexpected, o)
		case Check:
			e := entry{Op: o, until: openUntil(o, end)}
			exit, redirected := resentByServer(d, o), resentAcrossFailover(d, o)
			deposed, lateUntil := resentWhenDeposed(d, o)
			if exit || redirected || deposed {
				other, marked := m.SentTwice(o, deposed)
				res.ExitResent += boolInt(exit)
				res.Redirected += boolInt(redirected && !exit)
				res.Deposed += boolInt(deposed)
				kept = append(kept, entry{Op: other, until: max(e.until, lateUntil)})
				e.Op = marked
			}
			kept = append(kept, e)
		}
	}
	all := make([]recorder.Op, len(kept))
	for i, e := range kept {
		all[i] = e.Op
	}
	var rest []entry
	for _, e := range kept {
		if !answeredAfterPause(d, e.Op) && !answeredByStandby(d, e.Op) || !m.FromOwnState(e.Op) {
			rest = append(rest, e)
			continue
		}
		res.SetAside = append(res.SetAside, e.Op)
		stale, impossible := m.Stale(e.Op, all)
		if stale {
			res.Stale = append(res.Stale, e.Op)
		}
		if impossible {
			res.Impossible = append(res.Impossible, e.Op)
		}
	}
	res.Operations = len(rest)
	began := time.Now()
	res.Result = porcupine.Ok
	model := m.Porcupine()
	for _, part := range byKey(rest) {
		if len(res.Violations) == maxViolations {
			break
		}
		ops := operations(part)
		budget := min(decideWithin, checkBudget-time.Since(began))
		result, info := porcupine.CheckOperationsVerbose(model, ops, max(budget, time.Second))
		switch result {
		case porcupine.Illegal:
			res.Result = porcupine.Illegal
			v := explain(model, part[0].In.Key(), ops, info)
			v.Visualised = report.Visualise(model, info, d.Faults, dir, fmt.Sprintf("%s-%d", name, len(res.Violations)))
			res.Violations = append(res.Violations, v)
		case porcupine.Unknown:
			res.Undecided = append(res.Undecided, part[0].In.Key())
		}
	}
	if res.Result == porcupine.Ok && len(res.Undecided) > 0 {
		res.Result = porcupine.Unknown
	}
	res.CheckerTook = time.Since(began)
	return res
}

// openUntil is when o may last have taken effect: its return if its client
// learned what happened, else up to pendingFor later, but not after end.
func openUntil(o recorder.Op, end time.Duration) time.Duration {
	if o.Out.Definite() {
		return o.Return
	}
	return min(end, o.Return+pendingFor)
}

// byKey splits a history into one history per key, those with the fewest
// operations without a definite answer first: each such operation may take
// effect anywhere after its call, so they make a history costly to refuse,
// and a violation in a quiet stretch is found in milliseconds.
func byKey(history []entry) [][]entry {
	parts := map[string][]entry{}
	for _, e := range history {
		parts[e.In.Key()] = append(parts[e.In.Key()], e)
	}
	keys := make([]string, 0, len(parts))
	for k := range parts {
		keys = append(keys, k)
	}
	open := func(k string) (n int) {
		for _, e := range parts[k] {
			n += boolInt(e.until != e.Return)
		}
		return n
	}
	sort.Slice(keys, func(i, j int) bool {
		oi, oj := open(keys[i]), open(keys[j])
		return oi < oj || oi == oj && keys[i] < keys[j]
	})
	result := make([][]entry, len(keys))
	for i, k := range keys {
		result[i] = parts[k]
	}
	return result
}

// operations converts entries to porcupine's operations.
func operations(history []entry) []porcupine.Operation {
	ops := make([]porcupine.Operation, len(history))
	for i, e := range history {
		ops[i] = porcupine.Operation{ClientId: e.Client, Input: e.In, Output: e.Out,
			Call: int64(e.Call), Return: int64(e.until), Metadata: e.Node.ID + ": " + e.Answer}
	}
	return ops
}

// explain names, for one key's refused history, the end of the longest
// order porcupine found that explains it, and the first operations called
// that the order leaves out: one of them is what no state allows.
func explain(model porcupine.Model, key string, part []porcupine.Operation, info porcupine.LinearizationInfo) Violation {
	v := Violation{Key: key}
	text := func(o porcupine.Operation) string {
		return fmt.Sprintf("[%v, %v] %s via %v", time.Duration(o.Call).Round(time.Millisecond),
			time.Duration(o.Return).Round(time.Millisecond), model.DescribeOperation(o.Input, o.Output), o.Metadata)
	}
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
		done[text(o)] = true
		if i >= len(longest)-3 {
			v.Linearized = append(v.Linearized, text(o))
		}
	}
	rest := append([]porcupine.Operation(nil), part...)
	sort.Slice(rest, func(i, j int) bool { return rest[i].Call < rest[j].Call })
	for _, o := range rest {
		if t := text(o); !done[t] && len(v.Next) < 3 {
			v.Next = append(v.Next, t)
		}
	}
	return v
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
