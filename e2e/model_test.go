package e2e

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// The checks must accept exactly the documented behaviour: these histories,
// small enough to read, each say what the checks allow or refuse. They run
// without Vault.

func ms(i int) time.Duration { return time.Duration(i) * time.Millisecond }

const modelPath = mount + "/secrets/x"

var modelNode = &node{id: "node1"}

func at(from, to int, in opInput, out opOutput) op {
	in.Path = modelPath
	return op{node: modelNode, in: in, out: out, call: ms(from), ret: ms(to)}
}

func write(token string) opInput { return opInput{Kind: opWrite, Token: token} }
func create(token string) opInput {
	return opInput{Kind: opWrite, Token: token, As: asCreateOnly}
}
func update(token string) opInput {
	return opInput{Kind: opWrite, Token: token, As: asUpdateOnly}
}
func cas(v int64, token string) opInput { return opInput{Kind: opCAS, CAS: v, Token: token} }
func ok(v int64, token string) opOutput { return opOutput{Outcome: outOK, Version: v, Token: token} }
func answer(o outcome) opOutput         { return opOutput{Outcome: o} }

var (
	read = opInput{Kind: opRead}
	del  = opInput{Kind: opDelete}
)

func TestModel_AcceptsTheAPIAndRefusesWhatItForbids(t *testing.T) {
	// A plugin process exited between 0 and 100 ms: Vault may have sent the
	// writes in flight then once more.
	exited := disturbances{exits: []pluginExit{{node: modelNode, alive: ms(0), gone: ms(100)}}}
	// On a cluster whose standbys run plugins to answer reads, only the
	// active node's plugin runs writes: node1 was active throughout.
	standbyReads := func(exitOn *node) disturbances {
		return disturbances{exits: []pluginExit{{node: exitOn, alive: ms(0), gone: ms(100)}},
			actives: []activeSeen{{at: ms(0), node: modelNode}, {at: ms(150), node: modelNode}}, standbyReads: true}
	}
	for _, tc := range []struct {
		name    string
		history []op
		d       disturbances
		want    porcupine.CheckResult
	}{
		{"writes, a cas, a read", []op{
			at(0, 1, write("a"), ok(1, "")), at(2, 3, cas(1, "b"), ok(2, "")), at(4, 5, read, ok(2, "b"))}, disturbances{}, porcupine.Ok},
		{"a read of an older version after a newer one was acknowledged", []op{
			at(0, 1, write("a"), ok(1, "")), at(2, 3, write("b"), ok(2, "")), at(4, 5, read, ok(1, "a"))}, disturbances{}, porcupine.Illegal},
		{"two cas writers of one version both win", []op{
			at(0, 1, write("a"), ok(1, "")), at(2, 5, cas(1, "b"), ok(2, "")), at(2, 5, cas(1, "c"), ok(2, ""))}, disturbances{}, porcupine.Illegal},
		{"concurrent writes take consecutive versions", []op{
			at(0, 5, write("a"), ok(1, "")), at(0, 5, write("b"), ok(2, "")), at(6, 7, read, ok(2, "b"))}, disturbances{}, porcupine.Ok},
		{"a lost update: two writes make the same version", []op{
			at(0, 1, write("a"), ok(1, "")), at(2, 5, write("b"), ok(2, "")), at(2, 5, write("c"), ok(2, ""))}, disturbances{}, porcupine.Illegal},
		{"a write that skips a version", []op{
			at(0, 1, write("a"), ok(1, "")), at(2, 3, write("b"), ok(3, ""))}, disturbances{}, porcupine.Illegal},
		{"a cas mismatch names the true version", []op{
			at(0, 1, write("a"), ok(1, "")), at(2, 3, cas(0, "b"), opOutput{Outcome: outMismatch, Version: 1})}, disturbances{}, porcupine.Ok},
		{"a cas mismatch names a wrong version", []op{
			at(0, 1, write("a"), ok(1, "")), at(2, 3, cas(3, "b"), opOutput{Outcome: outMismatch, Version: 2})}, disturbances{}, porcupine.Illegal},
		{"a 404 of a secret that exists", []op{
			at(0, 1, write("a"), ok(1, "")), at(2, 3, read, answer(outAbsent))}, disturbances{}, porcupine.Illegal},
		{"a delete acknowledged but not done", []op{
			at(0, 1, write("a"), ok(1, "")), at(2, 3, del, ok(0, "")), at(4, 5, read, ok(1, "a"))}, disturbances{}, porcupine.Illegal},
		{"deleted, then created again at version 1", []op{
			at(0, 1, write("a"), ok(1, "")), at(2, 3, del, ok(0, "")),
			at(4, 5, read, answer(outAbsent)), at(6, 7, cas(0, "b"), ok(1, ""))}, disturbances{}, porcupine.Ok},
		{"created meanwhile, when nothing else wrote", []op{
			at(0, 1, write("a"), answer(outCreatedMeanwhile))}, disturbances{}, porcupine.Illegal},
		{"an ambiguous write that landed", []op{
			at(0, 1, write("a"), answer(outAmbiguous)), at(2, 3, read, ok(1, "a"))}, disturbances{}, porcupine.Ok},
		{"an ambiguous write that did not", []op{
			at(0, 1, write("a"), answer(outAmbiguous)), at(2, 3, read, answer(outAbsent))}, disturbances{}, porcupine.Ok},
		{"a write applied twice while a plugin process exited", []op{
			at(0, 1, write("a"), ok(1, "")), at(2, 3, write("b"), ok(3, "")), at(4, 5, read, ok(3, "b"))}, exited, porcupine.Ok},
		{"a write applied twice while the active node's plugin process exited, standbys serving reads", []op{
			at(0, 1, write("a"), ok(1, "")), at(2, 3, write("b"), ok(3, ""))}, standbyReads(modelNode), porcupine.Ok},
		{"a write applied twice while only a standby's plugin process exited", []op{
			at(0, 1, write("a"), ok(1, "")), at(2, 3, write("b"), ok(3, ""))}, standbyReads(&node{id: "node2"}), porcupine.Illegal},
		{"a write applied twice, sent after the exit was seen", []op{
			at(0, 1, write("a"), ok(1, "")), at(200, 201, write("b"), ok(3, ""))}, exited, porcupine.Illegal},
		{"a write sent twice, a cas between its two sends", []op{
			at(0, 1, write("a"), ok(1, "")), at(2, 10, write("b"), ok(3, "")),
			at(3, 9, cas(1, "c"), opOutput{Outcome: outMismatch, Version: 2}), at(11, 12, read, ok(3, "b"))}, exited, porcupine.Ok},
		{"a write sent once, a cas sees a version it never made", []op{
			at(0, 1, write("a"), ok(1, "")), at(2, 10, write("b"), ok(2, "")),
			at(3, 9, cas(1, "c"), opOutput{Outcome: outMismatch, Version: 3})}, disturbances{}, porcupine.Illegal},
		{"a cas stored, then refused when sent again", []op{
			at(0, 1, write("a"), ok(1, "")), at(2, 3, cas(1, "b"), opOutput{Outcome: outMismatch, Version: 2}),
			at(4, 5, read, ok(2, "b"))}, exited, porcupine.Ok},
		// Create-only and update-only tokens: Vault's existence check decided.
		{"a create of an absent secret", []op{
			at(0, 1, create("a"), ok(1, "")), at(2, 3, create("b"), answer(outDenied))}, disturbances{}, porcupine.Ok},
		{"a create that overwrites", []op{
			at(0, 1, write("a"), ok(1, "")), at(2, 5, create("b"), ok(2, ""))}, disturbances{}, porcupine.Illegal},
		{"a create refused as created meanwhile", []op{
			at(0, 5, write("a"), ok(1, "")), at(0, 5, create("b"), answer(outCreatedMeanwhile))}, disturbances{}, porcupine.Ok},
		{"a create denied while the secret is absent", []op{
			at(0, 1, create("a"), answer(outDenied))}, disturbances{}, porcupine.Illegal},
		{"an update of an existing secret", []op{
			at(0, 1, write("a"), ok(1, "")), at(2, 3, update("b"), ok(2, "")), at(4, 5, del, ok(0, "")),
			at(6, 7, update("c"), answer(outDenied))}, disturbances{}, porcupine.Ok},
		{"an update that creates", []op{
			at(0, 1, update("a"), ok(1, ""))}, disturbances{}, porcupine.Illegal},
		{"an update refused as deleted meanwhile", []op{
			at(0, 1, write("a"), ok(1, "")), at(2, 5, del, ok(0, "")), at(2, 5, update("b"), answer(outDeletedMeanwhile))}, disturbances{}, porcupine.Ok},
		{"an update denied while the secret exists", []op{
			at(0, 1, write("a"), ok(1, "")), at(2, 3, update("b"), answer(outDenied))}, disturbances{}, porcupine.Illegal},
		{"an update said created meanwhile", []op{
			at(0, 1, write("a"), ok(1, "")), at(2, 3, update("b"), answer(outCreatedMeanwhile))}, disturbances{}, porcupine.Illegal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := checkHistory(tc.history, tc.d, ms(1000), t.TempDir(), "model")
			if res.result != tc.want {
				t.Fatalf("%s, want %s", res.result, tc.want)
			}
		})
	}
}

// A write through a standby may land twice when the active node changes
// while it is in flight: once through the old active node, once more where
// the standby redirects it. Not through the node active when it was sent, nor
// without a change of active node.
func TestModel_AdmitsAWriteSentTwiceAcrossAFailoverOnlyThroughAStandby(t *testing.T) {
	standby, next := &node{id: "node3"}, &node{id: "node2"}
	failover := disturbances{actives: []activeSeen{{at: ms(0), node: modelNode}, {at: ms(50), node: next}}}
	noFailover := disturbances{actives: []activeSeen{{at: ms(0), node: modelNode}, {at: ms(50), node: modelNode}}}
	twice := func(via *node) []op {
		h := []op{at(0, 1, write("a"), ok(1, "")), at(2, 60, write("b"), ok(3, "")),
			at(30, 40, cas(1, "c"), opOutput{Outcome: outMismatch, Version: 2}), at(70, 71, read, ok(3, "b"))}
		h[1].node = via
		return h
	}
	for _, tc := range []struct {
		name string
		via  *node
		d    disturbances
		want porcupine.CheckResult
	}{
		{"through a standby, the active node changed", standby, failover, porcupine.Ok},
		{"through the node active when it was sent", modelNode, failover, porcupine.Illegal},
		{"through a standby, no change of active node", standby, noFailover, porcupine.Illegal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := checkHistory(twice(tc.via), tc.d, ms(1000), t.TempDir(), "failover")
			if res.result != tc.want {
				t.Fatalf("got %s, want %s", res.result, tc.want)
			}
			if admitted := boolInt(tc.want == porcupine.Ok); res.redirected != admitted {
				t.Fatalf("counted %d writes sent twice across a failover, want %d", res.redirected, admitted)
			}
		})
	}
}

// A refused history is reported with the operations that break it.
func TestModel_ViolationNamesTheOperations(t *testing.T) {
	res := checkHistory([]op{at(0, 1, write("a"), ok(1, "")), at(2, 3, del, ok(0, "")), at(4, 5, read, ok(1, "a"))},
		disturbances{}, ms(1000), t.TempDir(), "named")
	if len(res.violations) != 1 {
		t.Fatalf("%d violations, want 1", len(res.violations))
	}
	v := res.violations[0]
	if v.path != modelPath || !strings.Contains(strings.Join(v.next, " "), "read -> ok v1") {
		t.Fatalf("the violation does not name the read: %+v", v)
	}
	if _, err := os.ReadFile(v.visualised); err != nil {
		t.Fatalf("no visualisation of the violation: %v", err)
	}
}

// A read a resumed node answered from its stale state is set aside and
// counted; a read of what was never written there is not admitted.
func TestModel_HoldsReadsOfAResumedNodeToTheWeakerRule(t *testing.T) {
	paused, other := &node{id: "node1"}, &node{id: "node2"}
	d := disturbances{faults: []fault{{kind: faultPause, node: paused, start: ms(10), resumed: ms(20), end: ms(40)}}}
	history := func(reader *node, got opOutput) []op {
		h := []op{at(0, 1, write("a"), ok(1, "")), at(12, 13, write("b"), ok(2, "")), at(15, 21, read, got)}
		h[2].node = reader
		return h
	}
	res := checkHistory(history(paused, ok(1, "a")), d, ms(100), t.TempDir(), "stale")
	if res.result != porcupine.Ok || len(res.setAside) != 1 || len(res.stale) != 1 || len(res.impossible) != 0 {
		t.Fatalf("a stale read of the resumed node: %s, %d set aside, %d stale, %d impossible",
			res.result, len(res.setAside), len(res.stale), len(res.impossible))
	}
	for _, got := range []opOutput{ok(2, "a"), ok(1, "zzz"), ok(3, "b")} {
		if res := checkHistory(history(paused, got), d, ms(100), t.TempDir(), "stale"); len(res.impossible) != 1 {
			t.Errorf("a resumed node reads %+v: admitted", got)
		}
	}
	res = checkHistory(history(other, ok(1, "a")), d, ms(100), t.TempDir(), "stale")
	if res.result != porcupine.Illegal || len(res.setAside) != 0 {
		t.Fatalf("the same read from another node: %s, %d set aside", res.result, len(res.setAside))
	}
}

// Progress: a failure outside every window is named; quiet periods are the
// stretches between windows, each with what every client got.
func TestProgress_NamesFailuresOutsideTheWindowsAndRatesQuietPeriods(t *testing.T) {
	windows := []window{{from: ms(2000), to: ms(3000)}}
	history := []op{
		at(100, 110, write("a"), ok(1, "")),
		at(1500, 1510, write("b"), answer(outAmbiguous)), // no fault around: a failure
		at(2500, 2600, write("c"), answer(outAmbiguous)), // in the window
		at(3500, 3510, write("d"), ok(2, "")),
	}
	p := checkProgress(history, windows, 0, ms(5000))
	if len(p.failures) != 1 || p.failures[0].in.Token != "b" {
		t.Fatalf("failures %v, want the write of b alone", p.failures)
	}
	if len(p.quiet) != 2 || p.quiet[0].acked != 1 || p.quiet[1].acked != 1 || p.baseline != 0.5 {
		t.Fatalf("quiet periods %+v, baseline %v", p.quiet, p.baseline)
	}
	if got := longestOutage(history, window{from: ms(2000), to: ms(4000)}); got != ms(1510) {
		t.Fatalf("longest outage %v, want 1.51s", got)
	}
}

// A node's "no handler for route" stretch runs from the call of its first
// such answer in a fault's window to the return of its last, node by node,
// and leaves out answers outside the window.
func TestProgress_TimesEachNodesNoHandlerStretchInAWindow(t *testing.T) {
	other := &node{id: "node2"}
	noHandler := func(n *node, from, to int) op {
		o := at(from, to, read, answer(outRefused))
		o.node, o.answer = n, `404 no handler for route "ref/secrets/x". route entry not found.`
		return o
	}
	history := []op{
		noHandler(modelNode, 100, 150), at(200, 250, read, ok(1, "a")), noHandler(modelNode, 2900, 3100),
		noHandler(other, 500, 520), noHandler(other, 5000, 5010),
	}
	got := noHandlerStretches(history, window{from: ms(0), to: ms(4000)})
	if len(got) != 2 || got[modelNode] != ms(3000) || got[other] != ms(20) {
		t.Fatalf("stretches %v, want node1 3s and node2 20ms", got)
	}
}

// On a cluster whose standbys answer reads, a standby's read and its 403 to
// a create-only write may reflect an older state, never one that never was.
func TestModel_HoldsStandbyAnswersToTheWeakerRule(t *testing.T) {
	active, standby := modelNode, &node{id: "node2"}
	seen := []activeSeen{{at: ms(0), node: active}, {at: ms(100), node: active}}
	history := func(via *node, first op) []op {
		h := []op{first, at(3, 4, del, ok(0, "")), at(5, 6, create("b"), answer(outDenied))}
		h[2].node = via
		return h
	}
	written, neverWritten := at(1, 2, write("a"), ok(1, "")), at(1, 2, read, answer(outAbsent))
	standbyReads := disturbances{actives: seen, standbyReads: true}
	if res := checkHistory(history(standby, written), standbyReads, ms(200), t.TempDir(), "standby"); res.result != porcupine.Ok ||
		len(res.setAside) != 1 || len(res.impossible) != 0 {
		t.Fatalf("a standby's 403 after a delete: %s, %d set aside, %d impossible", res.result, len(res.setAside), len(res.impossible))
	}
	if res := checkHistory(history(standby, neverWritten), standbyReads, ms(200), t.TempDir(), "standby"); len(res.impossible) != 1 {
		t.Fatalf("a standby's 403 for a secret never written: %d impossible, want 1", len(res.impossible))
	}
	if res := checkHistory(history(active, written), standbyReads, ms(200), t.TempDir(), "standby"); res.result != porcupine.Illegal {
		t.Fatalf("the active node's 403 after a delete: %s, want Illegal", res.result)
	}
	if res := checkHistory(history(standby, written), disturbances{actives: seen}, ms(200), t.TempDir(), "standby"); res.result != porcupine.Illegal {
		t.Fatalf("a forwarding standby's 403 after a delete: %s, want Illegal", res.result)
	}
}
