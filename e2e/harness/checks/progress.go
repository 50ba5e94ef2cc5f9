package checks

import (
	"sort"
	"strings"
	"time"

	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/cluster"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/faults"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/recorder"
)

// Progress is what the progress check found.
type Progress struct {
	// Failures are the answers without a definite outcome outside every
	// fault's window.
	Failures []recorder.Op
	Quiet    []QuietPeriod
	// Baseline is the rate of acknowledged mutations per second before the
	// first fault.
	Baseline float64
}

// QuietPeriod is a stretch between fault windows and what clients got in it.
type QuietPeriod struct {
	From, To time.Duration
	Acked    int         // mutations acknowledged
	Answered map[int]int // definite answers per sender
}

// Rate is the period's acknowledged mutations per second.
func (q QuietPeriod) Rate() float64 { return float64(q.Acked) / (q.To - q.From).Seconds() }

// minQuiet is the shortest quiet period the progress check rates.
const minQuiet = time.Second

// CheckProgress finds every operation that failed outside the windows, and
// what each quiet period between them achieved; the first quiet period,
// before any fault, is the run's baseline.
func CheckProgress(history []recorder.Op, windows []faults.Window, from, to time.Duration) Progress {
	var p Progress
	inWindow := func(call, ret time.Duration) bool {
		for _, w := range windows {
			if call <= w.To && ret >= w.From {
				return true
			}
		}
		return false
	}
	for _, o := range history {
		if !o.Out.Definite() && !inWindow(o.Call, o.Return) {
			p.Failures = append(p.Failures, o)
		}
	}
	for _, q := range quietPeriods(windows, from, to) {
		q.Answered = map[int]int{}
		for _, o := range history {
			if o.Call >= q.From && o.Return <= q.To && o.Out.Definite() {
				q.Answered[o.Sender]++
				q.Acked += boolInt(o.Acknowledged())
			}
		}
		if len(p.Quiet) == 0 {
			p.Baseline = q.Rate()
		}
		p.Quiet = append(p.Quiet, q)
	}
	return p
}

// quietPeriods are the stretches of [from, to] at least minQuiet long that
// no window touches.
func quietPeriods(windows []faults.Window, from, to time.Duration) []QuietPeriod {
	sorted := append([]faults.Window(nil), windows...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].From < sorted[j].From })
	var quiet []QuietPeriod
	at := from
	for _, w := range append(sorted, faults.Window{From: to, To: to}) {
		if w.From-at >= minQuiet {
			quiet = append(quiet, QuietPeriod{From: at, To: w.From})
		}
		at = max(at, w.To)
	}
	return quiet
}

// Unanswered counts the requests without a definite answer that w admitted.
func Unanswered(history []recorder.Op, w faults.Window) int {
	n := 0
	for _, o := range history {
		if !o.Out.Definite() && o.Call <= w.To && o.Return >= w.From {
			n++
		}
	}
	return n
}

// NoHandlerStretches returns, for each node that answered "no handler for
// route" (the server has not set the mount up) to a request that
// overlapped window w, how long it did: from the call of its first such
// answer to the return of its last.
func NoHandlerStretches(history []recorder.Op, w faults.Window) map[*cluster.Node]time.Duration {
	first, last := map[*cluster.Node]time.Duration{}, map[*cluster.Node]time.Duration{}
	for _, o := range history {
		if o.Return < w.From || o.Call > w.To || !strings.Contains(o.Answer, "no handler for route") {
			continue
		}
		if at, seen := first[o.Node]; !seen || o.Call < at {
			first[o.Node] = o.Call
		}
		last[o.Node] = max(last[o.Node], o.Return)
	}
	stretches := map[*cluster.Node]time.Duration{}
	for n, from := range first {
		stretches[n] = last[n] - from
	}
	return stretches
}

// LongestOutage is the longest time within w in which no client got a
// definite answer.
func LongestOutage(history []recorder.Op, w faults.Window) time.Duration {
	var answered []time.Duration
	for _, o := range history {
		if o.Out.Definite() && o.Return >= w.From && o.Return <= w.To {
			answered = append(answered, o.Return)
		}
	}
	sort.Slice(answered, func(i, j int) bool { return answered[i] < answered[j] })
	longest, last := time.Duration(0), w.From
	for _, at := range append(answered, w.To) {
		longest = max(longest, at-last)
		last = at
	}
	return longest
}
