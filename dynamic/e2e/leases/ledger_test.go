package leases

import (
	"reflect"
	"testing"
	"time"

	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/recorder"
)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// issueAt is an acknowledged issue over [call, call+100ms] of a 3 s lease.
func issueAt(call time.Duration, user string) recorder.Op {
	return recorder.Op{In: Input{Kind: Issue, Role: "r"}, Call: call, Return: call + ms(100),
		Out: Output{Status: 200, LeaseID: "redis/creds/r/" + user, Username: user, Password: "p", Duration: 3 * s}}
}

// TestRewind_ForgetsWhatFollowedTheSnapshot: a lease issued before the
// mark loses its later renewal; one issued after is forgotten, unless its
// revoke was acknowledged before the restore; checked against the logins
// such a restore really lets through.
func TestRewind_ForgetsWhatFollowedTheSnapshot(t *testing.T) {
	ledger, before := history(t)
	mark := ledger.Mark()
	ledger.Saw(recorder.Op{In: Input{Kind: Renew, Lease: before}, Call: 2 * s, Return: ms(2100), Out: Output{Status: 200, Duration: 3 * s}})
	since := ledger.Saw(issueAt(ms(2200), "v-r-2"))
	revoked := ledger.Saw(issueAt(ms(2300), "v-r-3"))
	ledger.Saw(recorder.Op{In: Input{Kind: Revoke, Lease: revoked}, Call: ms(2400), Return: ms(2450), Out: Output{Status: 204}})
	probes := []Probe{
		// The restore over [2.5 s, 4 s] revoked the lease the snapshot said
		// expired at 4.1 s at the latest, before its renewal's 4 s to 6.1 s.
		probe(before, ms(3500), Refused),
		// A forgotten lease's user lives on, until deleted by hand at 9 s.
		probe(since, 8*s, Works), probe(since, ms(9100), Refused),
		probe(revoked, ms(2500), Refused),
	}
	bounds := Bounds{Revoke: 0, Expiry: 500 * time.Millisecond}
	if got := checksFound(Check(ledger.Leases(), probes, bounds)); !reflect.DeepEqual(got, []string{RefusedWhileLive, OutlivedItsLease}) {
		t.Fatalf("checks that found a violation before the rewind: got %v, want [%s %s]", got, RefusedWhileLive, OutlivedItsLease)
	}

	forgotten := ledger.Rewind(mark, ms(2500), 4*s)
	if len(forgotten) != 1 || forgotten[0] != since {
		t.Fatalf("leases forgotten by the restore: got %v, want only the one issued after the mark and not revoked", forgotten)
	}
	if before.ExpiresFrom != 3*s || before.ExpiresBy != ms(5100) {
		t.Fatalf("the lease renewed after the mark expires in [%v, %v], want the mark's [3s, 5.1s]", before.ExpiresFrom, before.ExpiresBy)
	}
	ledger.Swept(forgotten, 9*s)
	if got := Check(ledger.Leases(), probes, bounds); len(got) > 0 {
		t.Fatalf("violations once rewound and the forgotten user deleted by hand: got %v, want none", got)
	}
	if got := Check(ledger.Leases(), append(probes, probe(since, ms(9600), Works)), bounds); len(got) != 1 || got[0].Check != OutlivedItsLease {
		t.Fatalf("violations of a login as a forgotten user after it was deleted by hand: got %v, want one %s", got, OutlivedItsLease)
	}
}

// TestRewind_LeavesTheRestoresDelayToTheBound: a lease whose expiry fell
// within the restore is revoked only once the restored state serves; the
// ledger still says it died by its expiry, so the delay counts against the
// expiry bound, where it is measured.
func TestRewind_LeavesTheRestoresDelayToTheBound(t *testing.T) {
	ledger, lease := history(t)
	mark := ledger.Mark()
	if forgotten := ledger.Rewind(mark, 2*s, 7*s); len(forgotten) > 0 {
		t.Fatalf("leases forgotten by a restore of a mark that holds every lease: got %v, want none", forgotten)
	}
	if lease.ExpiresFrom != 3*s || lease.ExpiresBy != ms(5100) {
		t.Fatalf("a lease whose expiry fell within the restore expires in [%v, %v], want its own [3s, 5.1s]", lease.ExpiresFrom, lease.ExpiresBy)
	}
	probes := []Probe{probe(lease, ms(7200), Works)}
	if got := checksFound(Check(ledger.Leases(), probes, Bounds{Expiry: 2 * s})); !reflect.DeepEqual(got, []string{OutlivedItsLease}) {
		t.Fatalf("a login that worked 2.1 s after its lease expired, with a bound of 2 s: got %v, want [%s]", got, OutlivedItsLease)
	}
}
