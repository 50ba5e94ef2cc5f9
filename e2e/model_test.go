package e2e

import (
	"os"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// The model must accept exactly the documented behaviour: these histories,
// small enough to read, each say what it allows or refuses.
func TestModel_AcceptsTheAPIAndRefusesWhatItForbids(t *testing.T) {
	p := mount + "/secrets/x"
	n := &node{id: "node1"}
	ms := func(i int) time.Duration { return time.Duration(i) * time.Millisecond }
	at := func(from, to int, in opInput, out opOutput) op {
		in.Path = p
		return op{node: n, in: in, out: out, call: ms(from), ret: ms(to)}
	}
	write := func(token string) opInput { return opInput{Kind: opWrite, Token: token} }
	cas := func(v int64, token string) opInput { return opInput{Kind: opCAS, CAS: v, Token: token} }
	read := opInput{Kind: opRead}
	ok := func(v int64, token string) opOutput { return opOutput{Outcome: outOK, Version: v, Token: token} }
	restart := fault{kind: faultKillPlugin, node: n, start: ms(0), end: ms(100)}

	for _, tc := range []struct {
		name    string
		history []op
		faults  []fault
		want    porcupine.CheckResult
	}{
		{"writes, a cas, a read", []op{
			at(0, 1, write("a"), ok(1, "")), at(2, 3, cas(1, "b"), ok(2, "")), at(4, 5, read, ok(2, "b"))}, nil, porcupine.Ok},
		{"a read of an older version after a newer one was acknowledged", []op{
			at(0, 1, write("a"), ok(1, "")), at(2, 3, write("b"), ok(2, "")), at(4, 5, read, ok(1, "a"))}, nil, porcupine.Illegal},
		{"two cas writers of one version both win", []op{
			at(0, 1, write("a"), ok(1, "")), at(2, 5, cas(1, "b"), ok(2, "")), at(2, 5, cas(1, "c"), ok(2, ""))}, nil, porcupine.Illegal},
		{"concurrent writes take consecutive versions", []op{
			at(0, 5, write("a"), ok(1, "")), at(0, 5, write("b"), ok(2, "")), at(6, 7, read, ok(2, "b"))}, nil, porcupine.Ok},
		{"a lost update: two writes make the same version", []op{
			at(0, 1, write("a"), ok(1, "")), at(2, 5, write("b"), ok(2, "")), at(2, 5, write("c"), ok(2, ""))}, nil, porcupine.Illegal},
		{"a cas mismatch names the true version", []op{
			at(0, 1, write("a"), ok(1, "")), at(2, 3, cas(0, "b"), opOutput{Outcome: outMismatch, Version: 1})}, nil, porcupine.Ok},
		{"a cas mismatch names a wrong version", []op{
			at(0, 1, write("a"), ok(1, "")), at(2, 3, cas(3, "b"), opOutput{Outcome: outMismatch, Version: 2})}, nil, porcupine.Illegal},
		{"a 404 of a secret that exists", []op{
			at(0, 1, write("a"), ok(1, "")), at(2, 3, read, opOutput{Outcome: outAbsent})}, nil, porcupine.Illegal},
		{"deleted, then created again at version 1", []op{
			at(0, 1, write("a"), ok(1, "")), at(2, 3, opInput{Kind: opDelete}, ok(0, "")),
			at(4, 5, read, opOutput{Outcome: outAbsent}), at(6, 7, cas(0, "b"), ok(1, ""))}, nil, porcupine.Ok},
		{"created meanwhile, when nothing else wrote", []op{
			at(0, 1, write("a"), opOutput{Outcome: outCreatedMeanwhile})}, nil, porcupine.Illegal},
		{"an ambiguous write that landed", []op{
			at(0, 1, write("a"), opOutput{Outcome: outAmbiguous}), at(2, 3, read, ok(1, "a"))}, nil, porcupine.Ok},
		{"an ambiguous write that did not", []op{
			at(0, 1, write("a"), opOutput{Outcome: outAmbiguous}), at(2, 3, read, opOutput{Outcome: outAbsent})}, nil, porcupine.Ok},
		{"a write applied twice, without a plugin restart", []op{
			at(0, 1, write("a"), ok(1, "")), at(2, 3, write("b"), ok(3, ""))}, nil, porcupine.Illegal},
		{"a write applied twice while the plugin restarted", []op{
			at(0, 1, write("a"), ok(1, "")), at(2, 3, write("b"), ok(3, "")), at(4, 5, read, ok(3, "b"))}, []fault{restart}, porcupine.Ok},
		{"a cas stored, then refused when sent again", []op{
			at(0, 1, write("a"), ok(1, "")), at(2, 3, cas(1, "b"), opOutput{Outcome: outMismatch, Version: 2}),
			at(4, 5, read, ok(2, "b"))}, []fault{restart}, porcupine.Ok},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := checkHistory(tc.history, tc.faults, ms(1000), t.TempDir(), "model")
			if res.result != tc.want {
				t.Fatalf("%s, want %s", res.result, tc.want)
			}
		})
	}
}

// A read a resumed node answered from its stale state is set aside and
// named; any other violation is not.
func TestModel_SetsAsideOnlyStaleReadsOfAResumedNode(t *testing.T) {
	p := mount + "/secrets/x"
	paused, other := &node{id: "node1"}, &node{id: "node2"}
	ms := func(i int) time.Duration { return time.Duration(i) * time.Millisecond }
	pause := fault{kind: faultPause, node: paused, start: ms(10), resumed: ms(20), end: ms(40)}
	history := func(reader *node) []op {
		return []op{
			{node: other, in: opInput{Path: p, Kind: opWrite, Token: "a"}, out: opOutput{Outcome: outOK, Version: 1}, call: ms(0), ret: ms(1)},
			{node: other, in: opInput{Path: p, Kind: opWrite, Token: "b"}, out: opOutput{Outcome: outOK, Version: 2}, call: ms(12), ret: ms(13)},
			{node: reader, in: opInput{Path: p, Kind: opRead}, out: opOutput{Outcome: outOK, Version: 1, Token: "a"}, call: ms(15), ret: ms(21)},
		}
	}
	res := checkHistory(history(paused), []fault{pause}, ms(100), t.TempDir(), "stale")
	if res.result != porcupine.Ok || len(res.setAside) != 1 || len(res.stale) != 1 {
		t.Fatalf("a stale read of the resumed node: %s, %d set aside, %d stale", res.result, len(res.setAside), len(res.stale))
	}
	res = checkHistory(history(other), []fault{pause}, ms(100), t.TempDir(), "stale")
	if res.result != porcupine.Illegal || len(res.setAside) != 0 {
		t.Fatalf("the same read from another node: %s, %d set aside", res.result, len(res.setAside))
	}
	if _, err := os.ReadFile(res.visualised); err != nil {
		t.Fatalf("no visualisation of the violation: %v", err)
	}
}
