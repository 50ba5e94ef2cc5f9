package model_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/api/model"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/checks"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/cluster"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/faults"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/recorder"
)

// The checks must accept exactly the documented behaviour: these histories,
// small enough to read, each say what the checks allow or refuse. They run
// without any server.

func ms(i int) time.Duration { return time.Duration(i) * time.Millisecond }

const modelPath = "ref/secrets/x"

var modelNode = &cluster.Node{ID: "node1"}

func at(from, to int, in model.Input, out model.Output) recorder.Op {
	in.Path = modelPath
	return recorder.Op{Node: modelNode, In: in, Out: out, Call: ms(from), Return: ms(to)}
}

func write(token string) model.Input { return model.Input{Kind: model.Write, Token: token} }
func create(token string) model.Input {
	return model.Input{Kind: model.Write, Token: token, As: model.AsCreateOnly}
}
func update(token string) model.Input {
	return model.Input{Kind: model.Write, Token: token, As: model.AsUpdateOnly}
}
func cas(v int64, token string) model.Input {
	return model.Input{Kind: model.CAS, CAS: v, Token: token}
}
func ok(v int64, token string) model.Output {
	return model.Output{Outcome: model.OK, Version: v, Token: token}
}
func answer(o model.Outcome) model.Output { return model.Output{Outcome: o} }

var (
	read = model.Input{Kind: model.Read}
	del  = model.Input{Kind: model.Delete}
)

func TestModel_AcceptsTheAPIAndRefusesWhatItForbids(t *testing.T) {
	// A plugin process exited between 0 and 100 ms: Vault may have sent the
	// writes in flight then once more.
	exited := faults.Disturbances{Exits: []faults.PluginExit{{Node: modelNode, Alive: ms(0), Gone: ms(100)}}}
	// On a cluster whose standbys run plugins to answer reads, only the
	// active node's plugin runs writes: node1 was active throughout.
	standbyReads := func(exitOn *cluster.Node) faults.Disturbances {
		return faults.Disturbances{Exits: []faults.PluginExit{{Node: exitOn, Alive: ms(0), Gone: ms(100)}},
			Actives: []faults.ActiveSeen{{At: ms(0), Node: modelNode}, {At: ms(150), Node: modelNode}}, StandbyReads: true}
	}
	for _, tc := range []struct {
		name    string
		history []recorder.Op
		d       faults.Disturbances
		want    porcupine.CheckResult
	}{
		{"writes, a cas, a read", []recorder.Op{
			at(0, 1, write("a"), ok(1, "")), at(2, 3, cas(1, "b"), ok(2, "")), at(4, 5, read, ok(2, "b"))}, faults.Disturbances{}, porcupine.Ok},
		{"a read of an older version after a newer one was acknowledged", []recorder.Op{
			at(0, 1, write("a"), ok(1, "")), at(2, 3, write("b"), ok(2, "")), at(4, 5, read, ok(1, "a"))}, faults.Disturbances{}, porcupine.Illegal},
		{"two cas writers of one version both win", []recorder.Op{
			at(0, 1, write("a"), ok(1, "")), at(2, 5, cas(1, "b"), ok(2, "")), at(2, 5, cas(1, "c"), ok(2, ""))}, faults.Disturbances{}, porcupine.Illegal},
		{"concurrent writes take consecutive versions", []recorder.Op{
			at(0, 5, write("a"), ok(1, "")), at(0, 5, write("b"), ok(2, "")), at(6, 7, read, ok(2, "b"))}, faults.Disturbances{}, porcupine.Ok},
		{"a lost update: two writes make the same version", []recorder.Op{
			at(0, 1, write("a"), ok(1, "")), at(2, 5, write("b"), ok(2, "")), at(2, 5, write("c"), ok(2, ""))}, faults.Disturbances{}, porcupine.Illegal},
		{"a write that skips a version", []recorder.Op{
			at(0, 1, write("a"), ok(1, "")), at(2, 3, write("b"), ok(3, ""))}, faults.Disturbances{}, porcupine.Illegal},
		{"a cas mismatch names the true version", []recorder.Op{
			at(0, 1, write("a"), ok(1, "")), at(2, 3, cas(0, "b"), model.Output{Outcome: model.Mismatch, Version: 1})}, faults.Disturbances{}, porcupine.Ok},
		{"a cas mismatch names a wrong version", []recorder.Op{
			at(0, 1, write("a"), ok(1, "")), at(2, 3, cas(3, "b"), model.Output{Outcome: model.Mismatch, Version: 2})}, faults.Disturbances{}, porcupine.Illegal},
		{"a 404 of a secret that exists", []recorder.Op{
			at(0, 1, write("a"), ok(1, "")), at(2, 3, read, answer(model.Absent))}, faults.Disturbances{}, porcupine.Illegal},
		{"a delete acknowledged but not done", []recorder.Op{
			at(0, 1, write("a"), ok(1, "")), at(2, 3, del, ok(0, "")), at(4, 5, read, ok(1, "a"))}, faults.Disturbances{}, porcupine.Illegal},
		{"deleted, then created again at version 1", []recorder.Op{
			at(0, 1, write("a"), ok(1, "")), at(2, 3, del, ok(0, "")),
			at(4, 5, read, answer(model.Absent)), at(6, 7, cas(0, "b"), ok(1, ""))}, faults.Disturbances{}, porcupine.Ok},
		{"created meanwhile, when nothing else wrote", []recorder.Op{
			at(0, 1, write("a"), answer(model.CreatedMeanwhile))}, faults.Disturbances{}, porcupine.Illegal},
		{"an ambiguous write that landed", []recorder.Op{
			at(0, 1, write("a"), answer(model.Ambiguous)), at(2, 3, read, ok(1, "a"))}, faults.Disturbances{}, porcupine.Ok},
		{"an ambiguous write that did not", []recorder.Op{
			at(0, 1, write("a"), answer(model.Ambiguous)), at(2, 3, read, answer(model.Absent))}, faults.Disturbances{}, porcupine.Ok},
		{"a write applied twice while a plugin process exited", []recorder.Op{
			at(0, 1, write("a"), ok(1, "")), at(2, 3, write("b"), ok(3, "")), at(4, 5, read, ok(3, "b"))}, exited, porcupine.Ok},
		{"a write applied twice while the active node's plugin process exited, standbys serving reads", []recorder.Op{
			at(0, 1, write("a"), ok(1, "")), at(2, 3, write("b"), ok(3, ""))}, standbyReads(modelNode), porcupine.Ok},
		{"a write applied twice while only a standby's plugin process exited", []recorder.Op{
			at(0, 1, write("a"), ok(1, "")), at(2, 3, write("b"), ok(3, ""))}, standbyReads(&cluster.Node{ID: "node2"}), porcupine.Illegal},
		{"a write applied twice, sent after the exit was seen", []recorder.Op{
			at(0, 1, write("a"), ok(1, "")), at(200, 201, write("b"), ok(3, ""))}, exited, porcupine.Illegal},
		{"a write sent twice, a cas between its two sends", []recorder.Op{
			at(0, 1, write("a"), ok(1, "")), at(2, 10, write("b"), ok(3, "")),
			at(3, 9, cas(1, "c"), model.Output{Outcome: model.Mismatch, Version: 2}), at(11, 12, read, ok(3, "b"))}, exited, porcupine.Ok},
		{"a write sent once, a cas sees a version it never made", []recorder.Op{
			at(0, 1, write("a"), ok(1, "")), at(2, 10, write("b"), ok(2, "")),
			at(3, 9, cas(1, "c"), model.Output{Outcome: model.Mismatch, Version: 3})}, faults.Disturbances{}, porcupine.Illegal},
		{"a cas stored, then refused when sent again", []recorder.Op{
			at(0, 1, write("a"), ok(1, "")), at(2, 3, cas(1, "b"), model.Output{Outcome: model.Mismatch, Version: 2}),
			at(4, 5, read, ok(2, "b"))}, exited, porcupine.Ok},
		// Create-only and update-only tokens: Vault's existence check decided.
		{"a create of an absent secret", []recorder.Op{
			at(0, 1, create("a"), ok(1, "")), at(2, 3, create("b"), answer(model.Denied))}, faults.Disturbances{}, porcupine.Ok},
		{"a create that overwrites", []recorder.Op{
			at(0, 1, write("a"), ok(1, "")), at(2, 5, create("b"), ok(2, ""))}, faults.Disturbances{}, porcupine.Illegal},
		{"a create refused as created meanwhile", []recorder.Op{
			at(0, 5, write("a"), ok(1, "")), at(0, 5, create("b"), answer(model.CreatedMeanwhile))}, faults.Disturbances{}, porcupine.Ok},
		{"a create denied while the secret is absent", []recorder.Op{
			at(0, 1, create("a"), answer(model.Denied))}, faults.Disturbances{}, porcupine.Illegal},
		{"an update of an existing secret", []recorder.Op{
			at(0, 1, write("a"), ok(1, "")), at(2, 3, update("b"), ok(2, "")), at(4, 5, del, ok(0, "")),
			at(6, 7, update("c"), answer(model.Denied))}, faults.Disturbances{}, porcupine.Ok},
		{"an update that creates", []recorder.Op{
			at(0, 1, update("a"), ok(1, ""))}, faults.Disturbances{}, porcupine.Illegal},
		{"an update refused as deleted meanwhile", []recorder.Op{
			at(0, 1, write("a"), ok(1, "")), at(2, 5, del, ok(0, "")), at(2, 5, update("b"), answer(model.DeletedMeanwhile))}, faults.Disturbances{}, porcupine.Ok},
		{"an update denied while the secret exists", []recorder.Op{
			at(0, 1, write("a"), ok(1, "")), at(2, 3, update("b"), answer(model.Denied))}, faults.Disturbances{}, porcupine.Illegal},
		{"an update said created meanwhile", []recorder.Op{
			at(0, 1, write("a"), ok(1, "")), at(2, 3, update("b"), answer(model.CreatedMeanwhile))}, faults.Disturbances{}, porcupine.Illegal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := checks.History(model.Secrets{}, tc.history, tc.d, ms(1000), t.TempDir(), "model")
			if res.Result != tc.want {
				t.Fatalf("got %s, want %s", res.Result, tc.want)
			}
		})
	}
}

// A write through a standby may land twice when the active node changes
// while it is in flight: once through the old active node, once more where
// the standby redirects it. Not through the node active when it was sent, nor
// without a change of active node.
func TestModel_AdmitsAWriteSentTwiceAcrossAFailoverOnlyThroughAStandby(t *testing.T) {
	standby, next := &cluster.Node{ID: "node3"}, &cluster.Node{ID: "node2"}
	actives := func(seen ...faults.ActiveSeen) faults.Disturbances { return faults.Disturbances{Actives: seen} }
	failover := actives(faults.ActiveSeen{At: ms(0), Node: modelNode}, faults.ActiveSeen{At: ms(50), Node: next})
	noFailover := actives(faults.ActiveSeen{At: ms(0), Node: modelNode}, faults.ActiveSeen{At: ms(50), Node: modelNode})
	// node1 still said it was active at 25 ms, after the write returned.
	returnedBeforeIt := actives(faults.ActiveSeen{At: ms(0), Node: modelNode}, faults.ActiveSeen{At: ms(25), Node: modelNode},
		faults.ActiveSeen{At: ms(50), Node: next})
	twice := func(via *cluster.Node) []recorder.Op {
		h := []recorder.Op{at(0, 1, write("a"), ok(1, "")), at(2, 20, write("b"), ok(3, "")),
			at(30, 40, cas(1, "c"), model.Output{Outcome: model.Mismatch, Version: 3}), at(70, 71, read, ok(3, "b"))}
		h[1].Node = via
		return h
	}
	for _, tc := range []struct {
		name string
		via  *cluster.Node
		d    faults.Disturbances
		want porcupine.CheckResult
	}{
		{"through a standby, the active node changed", standby, failover, porcupine.Ok},
		{"through the node active when it was sent", modelNode, failover, porcupine.Illegal},
		{"through a standby, no change of active node", standby, noFailover, porcupine.Illegal},
		{"through a standby, answered while the old active node still said it was", standby, returnedBeforeIt, porcupine.Illegal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := checks.History(model.Secrets{}, twice(tc.via), tc.d, ms(1000), t.TempDir(), "failover")
			if res.Result != tc.want {
				t.Fatalf("got %s, want %s", res.Result, tc.want)
			}
			admitted := 0
			if tc.want == porcupine.Ok {
				admitted = 1
			}
			if res.Redirected != admitted {
				t.Fatalf("counted %d writes sent twice across a failover, want %d", res.Redirected, admitted)
			}
		})
	}
}

// A refused history is reported with the operations that break it.
func TestModel_ViolationNamesTheOperations(t *testing.T) {
	res := checks.History(model.Secrets{}, []recorder.Op{at(0, 1, write("a"), ok(1, "")), at(2, 3, del, ok(0, "")), at(4, 5, read, ok(1, "a"))},
		faults.Disturbances{}, ms(1000), t.TempDir(), "named")
	if len(res.Violations) != 1 {
		t.Fatalf("%d violations, want 1", len(res.Violations))
	}
	v := res.Violations[0]
	if v.Key != modelPath || !strings.Contains(strings.Join(v.Next, " "), "read -> ok v1") {
		t.Fatalf("violation %+v, want key %s and the read -> ok v1 among what comes next", v, modelPath)
	}
	if _, err := os.ReadFile(v.Visualised); err != nil {
		t.Fatalf("visualisation of the violation: %v, want a file", err)
	}
}

// A read a resumed node answered from its stale state is set aside and
// counted; a read of what was never written there is not admitted.
func TestModel_HoldsReadsOfAResumedNodeToTheWeakerRule(t *testing.T) {
	paused, other := &cluster.Node{ID: "node1"}, &cluster.Node{ID: "node2"}
	d := faults.Disturbances{Faults: []faults.Fault{{Kind: faults.Pause.Name(), Node: paused, Start: ms(10), Resumed: ms(20), End: ms(40)}}}
	history := func(reader *cluster.Node, got model.Output) []recorder.Op {
		h := []recorder.Op{at(0, 1, write("a"), ok(1, "")), at(12, 13, write("b"), ok(2, "")), at(15, 21, read, got)}
		h[2].Node = reader
		return h
	}
	res := checks.History(model.Secrets{}, history(paused, ok(1, "a")), d, ms(100), t.TempDir(), "stale")
	if res.Result != porcupine.Ok || len(res.SetAside) != 1 || len(res.Stale) != 1 || len(res.Impossible) != 0 {
		t.Fatalf("a stale read of the resumed node: %s, %d set aside, %d stale, %d impossible; want Ok, 1, 1, 0",
			res.Result, len(res.SetAside), len(res.Stale), len(res.Impossible))
	}
	for _, got := range []model.Output{ok(2, "a"), ok(1, "zzz"), ok(3, "b")} {
		if res := checks.History(model.Secrets{}, history(paused, got), d, ms(100), t.TempDir(), "stale"); len(res.Impossible) != 1 {
			t.Errorf("a resumed node reads %+v: admitted, want it counted impossible", got)
		}
	}
	res = checks.History(model.Secrets{}, history(other, ok(1, "a")), d, ms(100), t.TempDir(), "stale")
	if res.Result != porcupine.Illegal || len(res.SetAside) != 0 {
		t.Fatalf("the same read from another node: %s, %d set aside; want Illegal, 0", res.Result, len(res.SetAside))
	}
}

// On a cluster whose standbys answer reads, a standby's read and its 403 to
// a create-only write may reflect an older state, never one that never was.
func TestModel_HoldsStandbyAnswersToTheWeakerRule(t *testing.T) {
	active, standby := modelNode, &cluster.Node{ID: "node2"}
	seen := []faults.ActiveSeen{{At: ms(0), Node: active}, {At: ms(100), Node: active}}
	history := func(via *cluster.Node, first recorder.Op) []recorder.Op {
		h := []recorder.Op{first, at(3, 4, del, ok(0, "")), at(5, 6, create("b"), answer(model.Denied))}
		h[2].Node = via
		return h
	}
	written, neverWritten := at(1, 2, write("a"), ok(1, "")), at(1, 2, read, answer(model.Absent))
	standbyReads := faults.Disturbances{Actives: seen, StandbyReads: true}
	if res := checks.History(model.Secrets{}, history(standby, written), standbyReads, ms(200), t.TempDir(), "standby"); res.Result != porcupine.Ok ||
		len(res.SetAside) != 1 || len(res.Impossible) != 0 {
		t.Fatalf("a standby's 403 after a delete: %s, %d set aside, %d impossible; want Ok, 1, 0", res.Result, len(res.SetAside), len(res.Impossible))
	}
	if res := checks.History(model.Secrets{}, history(standby, neverWritten), standbyReads, ms(200), t.TempDir(), "standby"); len(res.Impossible) != 1 {
		t.Fatalf("a standby's 403 for a secret never written: %d impossible, want 1", len(res.Impossible))
	}
	if res := checks.History(model.Secrets{}, history(active, written), standbyReads, ms(200), t.TempDir(), "standby"); res.Result != porcupine.Illegal {
		t.Fatalf("the active node's 403 after a delete: %s, want Illegal", res.Result)
	}
	if res := checks.History(model.Secrets{}, history(standby, written), faults.Disturbances{Actives: seen}, ms(200), t.TempDir(), "standby"); res.Result != porcupine.Illegal {
		t.Fatalf("a forwarding standby's 403 after a delete: %s, want Illegal", res.Result)
	}
}

// On OpenBao, an active node paused while it held a write sends it on to
// the new active node when it resumes and finds it lost the leadership:
// the write may land again after its client had its answer through a retry
// elsewhere. This is a CI run's history (CHAOS_SEED=1796448859621980410):
// t3091 went through node1 to the active node2 as node2 was paused, landed
// as v2 through node3 after the election, and again as v3 once node2
// resumed, before t3223 made v4.
func TestModel_AdmitsAWriteSentOnByADeposedActiveNode(t *testing.T) {
	node1, node2, node3 := &cluster.Node{ID: "node1"}, &cluster.Node{ID: "node2"}, &cluster.Node{ID: "node3"}
	via := func(n *cluster.Node, o recorder.Op) recorder.Op { o.Node = n; return o }
	updateCAS0 := model.Input{Kind: model.CAS, Token: "t3088", As: model.AsUpdateOnly}
	history := []recorder.Op{
		via(node3, at(24028, 24031, update("t3084"), answer(model.Denied))),
		via(node2, at(24043, 24047, update("t3086"), answer(model.Denied))),
		via(node1, at(24038, 24060, del, ok(0, ""))),
		via(node3, at(24069, 24076, updateCAS0, answer(model.Denied))),
		via(node2, at(24038, 24079, del, ok(0, ""))),
		via(node2, at(24053, 24092, write("t3087"), ok(1, ""))),
		via(node3, at(24090, 24110, create("t3089"), answer(model.Denied))),
		via(node1, at(24106, 26663, update("t3091"), ok(2, ""))),
		via(node2, at(24125, 28126, del, answer(model.Ambiguous))),
		via(node2, at(24133, 28134, create("t3095"), answer(model.Ambiguous))),
		via(node2, at(28126, 30164, create("t3152"), answer(model.Denied))),
		via(node2, at(28126, 30164, create("t3153"), answer(model.Denied))),
		via(node2, at(28126, 30173, create("t3154"), answer(model.Denied))),
		via(node2, at(30174, 30202, update("t3223"), ok(4, ""))),
		via(node2, at(30173, 30205, update("t3224"), answer(model.DeletedMeanwhile))),
		via(node2, at(30174, 30205, update("t3222"), answer(model.DeletedMeanwhile))),
		via(node2, at(30174, 30207, del, ok(0, ""))),
	}
	disturbances := func(forwardsWhenDeposed bool, pausedNode *cluster.Node) faults.Disturbances {
		return faults.Disturbances{
			Faults:       []faults.Fault{{Kind: faults.Pause.Name(), Node: pausedNode, Start: ms(24123), Resumed: ms(29624), End: ms(30188)}},
			Actives:      []faults.ActiveSeen{{At: ms(24000), Node: pausedNode}, {At: ms(26800), Node: node3}, {At: ms(30500), Node: node3}},
			StandbyReads: true, ForwardsWhenDeposed: forwardsWhenDeposed}
	}
	res := checks.History(model.Secrets{}, history, disturbances(true, node2), ms(40000), t.TempDir(), "deposed")
	if res.Result != porcupine.Ok {
		t.Fatalf("on a server that forwards what a deposed node held: %s, want Ok", res.Result)
	}
	// t3091 alone was in flight at the pause: sent through a standby
	// across the failover, and held by the deposed node. Those answered
	// before the pause, or sent to node2 while it was stopped, were not.
	if res.Redirected != 1 || res.Deposed != 1 {
		t.Errorf("%d redirected, %d held by the deposed node; want 1, 1", res.Redirected, res.Deposed)
	}
	if res := checks.History(model.Secrets{}, history, disturbances(false, node2), ms(40000), t.TempDir(), "deposed"); res.Result != porcupine.Illegal {
		t.Errorf("on a server that does not forward it (Vault): %s, want Illegal", res.Result)
	}
}
