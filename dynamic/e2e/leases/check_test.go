package leases

import (
	"reflect"
	"testing"
	"time"

	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/recorder"
)

const s = time.Second

// history is a ledger of one lease: issued over [1s, 1.1s] for 3s, with
// max_ttl 5s, then renewed and revoked as ops say.
func history(t *testing.T, ops ...recorder.Op) (*Ledger, *Lease) {
	t.Helper()
	ledger := &Ledger{MaxTTL: map[string]time.Duration{"r": 5 * s}}
	lease := ledger.Saw(recorder.Op{In: Input{Kind: Issue, Role: "r"}, Call: 1 * s, Return: 1100 * time.Millisecond,
		Out: Output{Status: 200, LeaseID: "redis/creds/r/1", Username: "v-r-1", Password: "p", Duration: 3 * s}})
	if lease == nil {
		t.Fatal("issue with a lease in its answer: got no lease in the ledger, want one")
	}
	for _, o := range ops {
		o.In = Input{Kind: o.In.(Input).Kind, Lease: lease}
		ledger.Saw(o)
	}
	return ledger, lease
}

func probe(l *Lease, at time.Duration, o Outcome) Probe {
	return Probe{Lease: l, Call: at, Return: at + 10*time.Millisecond, Outcome: o}
}

func checksFound(v []Violation) []string {
	var names []string
	for _, x := range v {
		names = append(names, x.Check)
	}
	return names
}

func TestCheck_NamesEachBrokenPromise(t *testing.T) {
	bounds := Bounds{Revoke: 0, Expiry: 2 * s}
	renew := func(call time.Duration, d time.Duration) recorder.Op {
		return recorder.Op{In: Input{Kind: Renew}, Call: call, Return: call + 100*time.Millisecond, Out: Output{Status: 200, Duration: d}}
	}
	revoke := recorder.Op{In: Input{Kind: Revoke}, Call: 2 * s, Return: 2100 * time.Millisecond, Out: Output{Status: 204}}
	for _, tc := range []struct {
		name   string
		ops    []recorder.Op
		probes func(l *Lease) []Probe
		want   []string
	}{
		{"works until expiry, refused after", nil, func(l *Lease) []Probe {
			return []Probe{{Lease: l, Call: 1200 * time.Millisecond, Return: 1300 * time.Millisecond, AtOnce: true}, probe(l, 2*s, Works), probe(l, 7*s, Refused)}
		}, nil},
		{"no answer from Redis proves nothing", nil, func(l *Lease) []Probe {
			return []Probe{probe(l, 2*s, Unreachable), probe(l, 9*s, Unreachable)}
		}, nil},
		{"refused at once", nil, func(l *Lease) []Probe {
			return []Probe{{Lease: l, Call: 1200 * time.Millisecond, Return: 1300 * time.Millisecond, AtOnce: true, Outcome: Refused}}
		}, []string{FailedAtIssue}},
		{"refused before its expiry", nil, func(l *Lease) []Probe {
			return []Probe{probe(l, 2*s, Refused)}
		}, []string{RefusedWhileLive}},
		{"refused within a renewal", []recorder.Op{renew(2*s, 3*s)}, func(l *Lease) []Probe {
			return []Probe{probe(l, 3500*time.Millisecond, Refused)}
		}, []string{RefusedWhileLive}},
		{"works after expiry and its bound", nil, func(l *Lease) []Probe {
			return []Probe{probe(l, 7300*time.Millisecond, Works)}
		}, []string{OutlivedItsLease}},
		{"works after an acknowledged revoke", []recorder.Op{revoke}, func(l *Lease) []Probe {
			return []Probe{probe(l, 2200*time.Millisecond, Works)}
		}, []string{OutlivedItsLease}},
		{"refused once revoked", []recorder.Op{revoke}, func(l *Lease) []Probe {
			return []Probe{probe(l, 2050*time.Millisecond, Refused), probe(l, 2200*time.Millisecond, Refused)}
		}, nil},
		{"renewed past max_ttl", []recorder.Op{renew(4*s, 4*s)}, func(l *Lease) []Probe { return nil }, []string{RenewedPastMaxTTL}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ledger, lease := history(t, tc.ops...)
			got := checksFound(Check(ledger.Leases(), tc.probes(lease), bounds))
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("checks that found a violation: got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestLongestDeath_CountsFromWhenTheLeaseDiedForSure(t *testing.T) {
	ledger, lease := history(t)
	probes := []Probe{probe(lease, 3*s, Works), probe(lease, 5*s, Works), probe(lease, 5500*time.Millisecond, Refused)}
	// Expires by 1.1 s + 3 s + 1 s of slack: refused 400 ms after.
	if got := LongestDeath(ledger.Leases(), probes, false); got != 400*time.Millisecond {
		t.Fatalf("longest from expiry to refusal: got %v, want 400ms", got)
	}
	early := []Probe{probe(lease, 4*s, Refused)}
	if got := LongestDeath(ledger.Leases(), early, false); got != -1100*time.Millisecond {
		t.Fatalf("longest from expiry to refusal, refused 1.1s before the latest expiry: got %v, want -1.1s", got)
	}
	if got := LongestDeath(ledger.Leases(), probes, true); got != 0 {
		t.Fatalf("longest from revoke to refusal, with no lease revoked: got %v, want 0", got)
	}
}
