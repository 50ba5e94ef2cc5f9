package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"
)

// secretState is one secret as the API documents it: absent, or a version
// and the token of the write that made it.
type secretState struct {
	exists  bool
	version int64
	token   string
}

// applied is the state after in took effect on s, as its single apply or, for
// a write Vault sent twice, its two; nil when in cannot apply to s.
func applied(s secretState, in opInput) []secretState {
	next := func(v int64) secretState { return secretState{exists: true, version: v, token: in.Token} }
	switch in.Kind {
	case opWrite:
		if !s.exists {
			// Sent again, a create is refused: it exists now.
			return []secretState{next(1)}
		}
		if in.MayRepeat {
			return []secretState{next(s.version + 1), next(s.version + 2)}
		}
		return []secretState{next(s.version + 1)}
	case opCAS:
		if s.version == in.CAS && s.exists == (in.CAS > 0) {
			return []secretState{next(in.CAS + 1)}
		}
	case opDelete:
		return []secretState{{}}
	}
	return nil
}

// step is the plugin's documented behaviour for one operation: every state
// the secret may be in after it, none if the answer is impossible from s.
func step(s secretState, in opInput, out opOutput) []secretState {
	same := []secretState{s}
	switch out.Outcome {
	case outAmbiguous:
		return append(same, applied(s, in)...)
	case outAbsent:
		if !s.exists {
			return same
		}
	case outOK:
		if in.Kind == opRead {
			if s.exists && s.version == out.Version && s.token == out.Token {
				return same
			}
			return nil
		}
		for _, after := range applied(s, in) {
			if in.Kind == opDelete || after.version == out.Version {
				return []secretState{after}
			}
		}
	case outMismatch:
		var result []secretState
		if s.exists == (out.Version > 0) && s.version == out.Version && s.version != in.CAS {
			result = same
		}
		// Stored, then refused when Vault sent it again: its retry fails the check.
		if in.MayRepeat && out.Version == in.CAS+1 {
			result = append(result, applied(s, in)...)
		}
		return result
	case outCreatedMeanwhile:
		var result []secretState
		if s.exists {
			result = same
		}
		if in.MayRepeat && !s.exists && (in.Kind == opWrite || in.CAS == 0) {
			result = append(result, applied(s, in)...)
		}
		return result
	case outDeletedMeanwhile:
		if !s.exists {
			return same
		}
	}
	return nil
}

// secretModel is the model porcupine checks each path's history against.
var secretModel = porcupine.NondeterministicModel{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byPath := map[string][]porcupine.Operation{}
		var paths []string
		for _, o := range history {
			p := o.Input.(opInput).Path
			if _, ok := byPath[p]; !ok {
				paths = append(paths, p)
			}
			byPath[p] = append(byPath[p], o)
		}
		sort.Strings(paths)
		var parts [][]porcupine.Operation
		for _, p := range paths {
			parts = append(parts, byPath[p])
		}
		return parts
	},
	Init: func() []interface{} { return []interface{}{secretState{}} },
	Step: func(state, input, output interface{}) []interface{} {
		var next []interface{}
		for _, s := range step(state.(secretState), input.(opInput), output.(opOutput)) {
			next = append(next, s)
		}
		return next
	},
	DescribeOperation: func(input, output interface{}) string {
		in, out := input.(opInput), output.(opOutput)
		what := in.Kind.String()
		switch in.Kind {
		case opWrite:
			what += " " + in.Token
		case opCAS:
			what += fmt.Sprintf("=%d %s", in.CAS, in.Token)
		}
		if in.MayRepeat {
			what += " (may repeat)"
		}
		got := out.Outcome.String()
		switch {
		case out.Outcome == outOK && in.Kind != opDelete, out.Outcome == outMismatch:
			got += fmt.Sprintf(" v%d %s", out.Version, out.Token)
		}
		return fmt.Sprintf("%s %s -> %s", in.Path, what, got)
	},
	DescribeState: func(state interface{}) string {
		s := state.(secretState)
		if !s.exists {
			return "absent"
		}
		return fmt.Sprintf("v%d %s", s.version, s.token)
	},
	DescribeOperationMetadata: func(info interface{}) string { return fmt.Sprint(info) },
}

// fault is one injected fault: from start to end the cluster was disturbed
// and recovering; resumed is when a paused node got SIGCONT.
type fault struct {
	kind    string
	node    *node
	start   time.Duration
	end     time.Duration
	resumed time.Duration
	detail  string
}

func (f fault) String() string { return fmt.Sprintf("%s (%s)", f.kind, f.node.id) }

// restartsPlugin tells whether a fault may end a plugin process under a
// request, which Vault then sends to a new process once more.
func (f fault) restartsPlugin() bool {
	return f.kind == faultKillPlugin || f.kind == faultReload || f.kind == faultStepDown
}

// failureDir keeps what a failed cluster test leaves to look at: porcupine's
// visualisation of a history that is not linearizable, and the servers' logs.
const failureDir = ".chaos"

// staleWindow is how long after its SIGCONT a paused active node may still
// answer reads from its own, stale, state (Vault's behaviour, not the plugin's).
const staleWindow = 3 * time.Second

// checked is the outcome of checking a history.
type checked struct {
	result      porcupine.CheckResult
	operations  int
	setAside    []op // reads a resumed node answered within staleWindow, not checked
	stale       []op // those of them that returned what was overwritten before they were sent
	unexpected  []op
	visualised  string
	checkerTook time.Duration
}

// checkHistory checks the recorded operations against the model, with each
// write in flight while a plugin process ended allowed to land twice, and
// without the reads a resumed node answered right after its SIGCONT: those
// are set aside, and the ones that returned what an acknowledged write had
// replaced before they were sent are named. On a violation it writes
// porcupine's visualisation, with the faults annotated, to a file under dir.
func checkHistory(history []op, faults []fault, end time.Duration, dir, name string) checked {
	var res checked
	var kept []op
	for _, o := range history {
		switch {
		case o.out.Outcome == outUnexpected:
			res.unexpected = append(res.unexpected, o)
		case o.out.Outcome == outRefused, o.in.Kind == opRead && o.out.Outcome == outAmbiguous:
			// Nothing reached Vault, or nothing came back: no effect to check.
		default:
			ret := o.ret
			if o.out.Outcome == outAmbiguous {
				ret += pendingFor
			}
			for _, f := range faults {
				if o.in.Kind != opRead && f.restartsPlugin() && o.call <= f.end && ret >= f.start {
					o.in.MayRepeat = true
				}
			}
			kept = append(kept, o)
		}
	}
	var aside, rest []op
	for _, o := range kept {
		if staleCandidate(o, faults) {
			aside = append(aside, o)
		} else {
			rest = append(rest, o)
		}
	}
	res.operations = len(rest)
	res.setAside = aside
	for _, o := range aside {
		if overwritten(o, kept) {
			res.stale = append(res.stale, o)
		}
	}
	began := time.Now()
	model := secretModel.ToModel()
	result, info := porcupine.CheckOperationsVerbose(model, operations(rest, end), 5*time.Minute)
	res.result, res.checkerTook = result, time.Since(began)
	if result != porcupine.Ok {
		var notes []porcupine.Annotation
		for _, f := range faults {
			notes = append(notes, porcupine.Annotation{Tag: "faults", Start: int64(f.start), End: int64(f.end),
				Description: f.kind + " " + f.node.id, Details: f.detail, BackgroundColor: "#fde2e2"})
		}
		info.AddAnnotations(notes)
		res.visualised = filepath.Join(dir, name+".html")
		if err := os.MkdirAll(dir, 0o755); err != nil || porcupine.VisualizePath(model, info, res.visualised) != nil {
			res.visualised = "(could not be written)"
		}
	}
	return res
}

// staleCandidate tells whether o is a read answered by a node that had been
// paused, within staleWindow of its SIGCONT.
func staleCandidate(o op, faults []fault) bool {
	if o.in.Kind != opRead {
		return false
	}
	for _, f := range faults {
		if f.kind == faultPause && o.node == f.node && o.ret >= f.resumed && o.call <= f.resumed+staleWindow {
			return true
		}
	}
	return false
}

// overwritten tells whether read o returned a state that an acknowledged
// write had replaced before o was sent: a stale read, whatever the order of
// the operations that overlap it. (A sufficient test, cheap where porcupine
// would search every order of a history that is not linearizable.)
func overwritten(o op, history []op) bool {
	if o.in.Kind != opRead || o.out.Outcome != outOK {
		return false
	}
	var made *op // the write whose token o read
	for i := range history {
		if w := &history[i]; w.in.Path == o.in.Path && w.in.Token == o.out.Token && w.in.Kind != opRead {
			made = w
		}
	}
	if made == nil || made.out.Outcome == outAmbiguous {
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

// pendingFor is how long after its client gave up an operation without a
// definite answer may still take effect: a write that reached raft before
// its leader died or was deposed is committed, or dropped, by the next
// leader as soon as it is elected, 2 to 5 s here. A longer bound lets each
// such operation overlap more of the history, and the check's cost grows
// fast with the operations that overlap.
const pendingFor = 10 * time.Second

// operations converts recorded operations to porcupine's, with an ambiguous
// one open for pendingFor after its return, or until end.
func operations(history []op, end time.Duration) []porcupine.Operation {
	ops := make([]porcupine.Operation, len(history))
	for i, o := range history {
		ret := o.ret
		if o.out.Outcome == outAmbiguous {
			ret = min(end, o.ret+pendingFor)
		}
		ops[i] = porcupine.Operation{ClientId: o.client, Input: o.in, Output: o.out,
			Call: int64(o.call), Return: int64(ret), Metadata: o.node.id + ": " + o.answer}
	}
	return ops
}
