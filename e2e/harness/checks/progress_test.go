package checks

import (
	"testing"
	"time"

	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/cluster"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/faults"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/recorder"
)

// The progress checks know no API: these tests speak in an API of two
// words, a mutation and a query, each answered or not.

type fakeInput struct {
	name    string
	mutates bool
}

func (in fakeInput) Key() string   { return "k" }
func (in fakeInput) Mutates() bool { return in.mutates }

type fakeOutput struct{ answered bool }

func (o fakeOutput) Definite() bool     { return o.answered }
func (o fakeOutput) Acknowledged() bool { return o.answered }

var node1, node2 = &cluster.Node{ID: "node1"}, &cluster.Node{ID: "node2"}

func ms(i int) time.Duration { return time.Duration(i) * time.Millisecond }

func op(from, to int, name string, mutates, answered bool) recorder.Op {
	return recorder.Op{Node: node1, In: fakeInput{name, mutates}, Out: fakeOutput{answered}, Call: ms(from), Return: ms(to)}
}

// A failure outside every window is named; quiet periods are the stretches
// between windows, each with the mutations acknowledged in it.
func TestProgress_NamesFailuresOutsideTheWindowsAndRatesQuietPeriods(t *testing.T) {
	windows := []faults.Window{{From: ms(2000), To: ms(3000)}}
	history := []recorder.Op{
		op(100, 110, "a", true, true),
		op(1500, 1510, "b", true, false), // no fault around: a failure
		op(2500, 2600, "c", true, false), // in the window
		op(3500, 3510, "d", true, true),
		op(3600, 3610, "read", false, true), // answered, but no mutation
	}
	p := CheckProgress(history, windows, 0, ms(5000))
	if len(p.Failures) != 1 || p.Failures[0].In.(fakeInput).name != "b" {
		t.Fatalf("failures %v, want b alone", p.Failures)
	}
	if len(p.Quiet) != 2 || p.Quiet[0].Acked != 1 || p.Quiet[1].Acked != 1 || p.Baseline != 0.5 {
		t.Fatalf("quiet periods %+v with baseline %v, want [0s, 2s] and [3s, 5s] with one acknowledged mutation each, baseline 0.5/s",
			p.Quiet, p.Baseline)
	}
	if got := LongestOutage(history, faults.Window{From: ms(2000), To: ms(4000)}); got != ms(1510) {
		t.Fatalf("longest outage %v, want 1.51s", got)
	}
}

// A node's "no handler for route" stretch runs from the call of its first
// such answer in a fault's window to the return of its last, node by node,
// and leaves out answers outside the window.
func TestProgress_TimesEachNodesNoHandlerStretchInAWindow(t *testing.T) {
	noHandler := func(n *cluster.Node, from, to int) recorder.Op {
		o := op(from, to, "read", false, true)
		o.Node, o.Answer = n, `404 no handler for route "ref/secrets/x". route entry not found.`
		return o
	}
	history := []recorder.Op{
		noHandler(node1, 100, 150), op(200, 250, "read", false, true), noHandler(node1, 2900, 3100),
		noHandler(node2, 500, 520), noHandler(node2, 5000, 5010),
	}
	got := NoHandlerStretches(history, faults.Window{From: ms(0), To: ms(4000)})
	if len(got) != 2 || got[node1] != ms(3000) || got[node2] != ms(20) {
		t.Fatalf("stretches %v, want node1 3s and node2 20ms", got)
	}
}
