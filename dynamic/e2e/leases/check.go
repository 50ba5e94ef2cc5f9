package leases

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/verdict"
)

// The checks' names, as verdicts give them to make mutants.
const (
	FailedAtIssue     = "credential-failed-at-issue"
	RefusedWhileLive  = "credential-refused-while-its-lease-lived"
	OutlivedItsLease  = "credential-outlived-its-lease"
	RenewedPastMaxTTL = "lease-renewed-past-max-ttl"
	OrphanUsers       = "orphan-users"
	LeasesLeft        = "leases-left-behind"
	RevokeRefused     = "revoke-refused"
)

// Bounds are how long after its lease died a credential may still work.
type Bounds struct {
	// Revoke counts from an acknowledged revoke.
	Revoke time.Duration
	// Expiry counts from the latest the lease could expire.
	Expiry time.Duration
	// HalfMade counts from when the clients stopped, for a user no lease
	// names: a fault that cut a create short leaves its user to the
	// plugin's rollback or sweep (a create the server re-sent to a new
	// plugin process may even have been answered). 0 where no fault does.
	HalfMade time.Duration
}

// Violation is one broken promise about one lease.
type Violation struct {
	Check  string
	Lease  *Lease
	Detail string
}

func (v Violation) String() string { return fmt.Sprintf("%s: %s: %s", v.Check, v.Lease, v.Detail) }

// Check compares every login tried with the lease it tried: a credential
// works from its issue until its lease may have died, and never after the
// lease died for sure plus the bound.
func Check(leases []*Lease, probes []Probe, b Bounds) []Violation {
	var found []Violation
	for _, l := range leases {
		for _, past := range l.PastMax {
			found = append(found, Violation{RenewedPastMaxTTL, l, past})
		}
	}
	for _, p := range probes {
		l := p.Lease
		switch {
		case p.Outcome == Unreachable:
		case p.AtOnce && p.Outcome != Works:
			found = append(found, Violation{FailedAtIssue, l, fmt.Sprintf("login at %v got %s, want it to work", p.Call.Round(time.Millisecond), p.Outcome)})
		case p.Outcome == Refused && p.Return < l.MustWorkUntil():
			found = append(found, Violation{RefusedWhileLive, l, fmt.Sprintf("login over [%v, %v] refused, want it to work until %v",
				p.Call.Round(time.Millisecond), p.Return.Round(time.Millisecond), l.MustWorkUntil().Round(time.Millisecond))})
		case p.Outcome == Works && p.Call > l.DeadBy()+bound(l, b):
			found = append(found, Violation{OutlivedItsLease, l, fmt.Sprintf("login at %v worked, want it refused from %v",
				p.Call.Round(time.Millisecond), (l.DeadBy() + bound(l, b)).Round(time.Millisecond))})
		}
	}
	return found
}

// bound is the bound that applies to how the lease died.
func bound(l *Lease, b Bounds) time.Duration {
	if l.RevokeReturn > 0 && l.RevokeReturn < l.ExpiresBy {
		return b.Revoke
	}
	return b.Expiry
}

// LongestDeath is, of the leases whose death the probes saw, the longest
// from when each died for sure to its credential's first refusal: the
// figure the bounds are set from. It is negative when every credential was
// refused before its lease's latest possible death, and 0 when no lease of
// the kind asked (revoked or expired) died under the probes.
func LongestDeath(leases []*Lease, probes []Probe, revoked bool) time.Duration {
	first := map[*Lease]time.Duration{}
	for _, p := range probes {
		if p.Outcome == Refused && p.Call > p.Lease.MustWorkUntil() {
			if at, ok := first[p.Lease]; !ok || p.Call < at {
				first[p.Lease] = p.Call
			}
		}
	}
	longest, seen := time.Duration(0), false
	for _, l := range leases {
		at, ok := first[l]
		if !ok || (l.RevokeReturn > 0 && l.RevokeReturn < l.ExpiresBy) != revoked {
			continue
		}
		if d := at - l.DeadBy(); !seen || d > longest {
			longest, seen = d, true
		}
	}
	return longest
}

// MustHold fails t with every violation, each also a verdict.
func MustHold(t *testing.T, violations []Violation) {
	t.Helper()
	byCheck := map[string][]string{}
	for i, v := range violations {
		if i < 20 {
			t.Errorf("%s", v)
		}
		byCheck[v.Check] = append(byCheck[v.Check], v.String())
	}
	if len(violations) > 20 {
		t.Errorf("and %d violations more", len(violations)-20)
	}
	for check, ops := range byCheck {
		verdict.Violation(t, check, ops...)
	}
}

// MustLeaveNoOrphans fails t if Redis holds a user the plugin made (its
// name begins with prefix): called once every lease is dead, every such
// user is an orphan.
func MustLeaveNoOrphans(t *testing.T, users []string, prefix string) {
	t.Helper()
	var orphans []string
	for _, u := range users {
		if strings.HasPrefix(u, prefix) {
			orphans = append(orphans, u)
		}
	}
	if len(orphans) > 0 {
		t.Errorf("Redis's users once every lease died: got %d made by the plugin (%s), want none", len(orphans), strings.Join(orphans, ", "))
		verdict.Violation(t, OrphanUsers, orphans...)
	}
}

// LeftBehind records the leases a server kept after every one should have
// died: leases it could not revoke.
func LeftBehind(t *testing.T, leases ...string) {
	t.Helper()
	verdict.Violation(t, LeasesLeft, leases...)
}

// MustRevoke fails t now: a revoke of a lease the server holds got answer,
// not 204. A revoke must succeed whatever became of the user, deleted by an
// earlier revoke a restore undid, or by hand.
func MustRevoke(t *testing.T, l *Lease, answer string) {
	t.Helper()
	verdict.Violation(t, RevokeRefused, l.String()+": "+answer)
	t.Fatalf("revoke of %s: got %s, want 204", l.ID, answer)
}
