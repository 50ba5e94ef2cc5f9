package e2e

import (
	"fmt"
	"math/rand"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// maxOutage bounds, per fault, the longest time in which no client got an
// answer from the plugin: an election takes 2 to 3 s, and after a pause the
// new active node waits up to a client's callTimeout (see recorder) more.
const maxOutage = 10 * time.Second

// TestChaos_HistoryIsLinearizableUnderFaults records what clients of a
// 3-node cluster see while faults hit it, and checks the whole history for
// linearizability against the API's model. CHAOS_SEED repeats a run's
// schedule and operations; CHAOS_DURATION makes it a long run, with faults
// drawn at random after each kind has run once.
func TestChaos_HistoryIsLinearizableUnderFaults(t *testing.T) {
	seed := time.Now().UnixNano()
	if s := os.Getenv("CHAOS_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseInt(s, 10, 64); err != nil {
			t.Fatalf("CHAOS_SEED: %v", err)
		}
	}
	var duration time.Duration
	if d := os.Getenv("CHAOS_DURATION"); d != "" {
		var err error
		if duration, err = time.ParseDuration(d); err != nil {
			t.Fatalf("CHAOS_DURATION: %v", err)
		}
	}
	t.Logf("CHAOS_SEED=%d", seed)
	rng := rand.New(rand.NewSource(seed))
	c := sharedCluster(t)

	// A few names, so that clients contend, new ones for each round of
	// faults; a client pinned to each node, and three that spread their
	// requests over all of them.
	names := func(round int) []string {
		var paths []string
		for _, name := range []string{"a", "b", "c"} {
			p := fmt.Sprintf("%s/secrets/chaos/%d/%s", mount, round, name)
			c.must(c.active(), http.StatusNoContent, "DELETE", p, nil)
			paths = append(paths, p)
		}
		return paths
	}
	paths := names(0)
	rec := newRecorder(c, paths)
	rec.start(seed, []*node{c.nodes[0], c.nodes[1], c.nodes[2], nil, nil, nil})
	defer rec.stop()

	schedule := append([]string(nil), faultKinds...)
	rng.Shuffle(len(schedule), func(i, j int) { schedule[i], schedule[j] = schedule[j], schedule[i] })
	var faults []fault
	injected := map[string]int{}
	for i := 0; i < len(schedule) || rec.now() < duration; i++ {
		kind := faultKinds[rng.Intn(len(faultKinds))]
		if i < len(schedule) {
			kind = schedule[i]
		} else if i%len(faultKinds) == 0 {
			paths = names(i / len(faultKinds))
			rec.use(paths)
		}
		time.Sleep(time.Duration(1000+rng.Intn(2000)) * time.Millisecond)
		f := c.inject(kind, rng, rec.now)
		faults = append(faults, f)
		injected[kind]++
		t.Logf("%v-%v %s: %s", f.start.Round(time.Millisecond), f.end.Round(time.Millisecond), f, f.detail)
	}
	time.Sleep(time.Second)
	rec.stop()

	// Then every node answers, and all read the same state.
	final := map[string]string{}
	for _, p := range paths {
		for _, n := range c.nodes {
			o := rec.do(int(rec.ids.Add(1)), n, opInput{Path: p, Kind: opRead})
			got := fmt.Sprintf("%s v%d %s", o.out.Outcome, o.out.Version, o.out.Token)
			if o.out.Outcome != outOK && o.out.Outcome != outAbsent {
				t.Errorf("after the faults, %s", o)
			} else if want, ok := final[p]; ok && got != want {
				t.Errorf("after the faults, %s reads %s via %s and %s via %s", p, want, c.nodes[0].id, got, n.id)
			}
			final[p] = got
		}
	}

	history := rec.history()
	res := checkHistory(history, faults, rec.now(), failureDir, fmt.Sprintf("chaos-%d", seed))
	outcomes := map[string]int{}
	for _, o := range history {
		outcomes[o.in.Kind.String()+" "+o.out.Outcome.String()]++
	}
	t.Logf("%d operations recorded, %d checked in %v: %s; outcomes %v; final state %v",
		len(history), res.operations, res.checkerTook.Round(time.Millisecond), res.result, outcomes, final)
	for i, o := range res.unexpected {
		if i < 10 {
			t.Errorf("unexpected answer: %s", o)
		}
	}
	if res.result != porcupine.Ok {
		t.Fatalf("CHAOS_SEED=%d: the history is not linearizable (%s), even without the %d reads a resumed node answered; "+
			"porcupine's visualisation, with the faults: %s", seed, res.result, len(res.setAside), res.visualised)
	}
	var after []string
	for _, o := range res.stale {
		for _, f := range faults {
			if staleCandidate(o, []fault{f}) {
				after = append(after, fmt.Sprintf("%s +%v", o.node.id, (o.ret-f.resumed).Round(time.Millisecond)))
			}
		}
	}
	t.Logf("Vault's stale reads: %d reads answered by a node within %v of its SIGCONT were set aside; %d of them "+
		"returned what an acknowledged write had replaced before they were sent: %s",
		len(res.setAside), staleWindow, len(res.stale), strings.Join(after, ", "))

	// Figures: every kind of fault ran, the load ran through them, and no
	// fault left clients without an answer for longer than maxOutage.
	for _, kind := range faultKinds {
		if injected[kind] == 0 {
			t.Errorf("no %s was injected", kind)
		}
	}
	if res.operations < 500 {
		t.Errorf("only %d operations checked", res.operations)
	}
	longest := map[string]time.Duration{}
	for _, f := range faults {
		gap := longestOutage(history, f)
		if gap > maxOutage {
			t.Errorf("%s: no answer for %v, more than %v", f, gap.Round(time.Millisecond), maxOutage)
		}
		longest[f.kind] = max(longest[f.kind], gap)
	}
	for _, kind := range faultKinds {
		t.Logf("%s: %d injected, the longest time without an answer %v", kind, injected[kind], longest[kind].Round(time.Millisecond))
	}
}
