package leases

import (
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/recorder"
)

// Lease is what the clients learned of one lease: when its credential must
// work, and from when it must not. Times are the recorder's.
type Lease struct {
	ID, Role           string
	Username, Password string
	// IssueCall and IssueReturn bound when the server issued it.
	IssueCall, IssueReturn time.Duration
	// ExpiresFrom and ExpiresBy bound when the server lets it expire, from
	// the answers to its issue and renewals: the server counts a lease's
	// time to live in whole seconds, so each bound allows one more.
	ExpiresFrom, ExpiresBy time.Duration
	// MaxBy is the latest a lease may live, renewals included: its role's
	// max_ttl after its issue.
	MaxBy time.Duration
	// RevokeCall is when a revoke was first sent (0: never); RevokeReturn
	// when one was acknowledged (0: never).
	RevokeCall, RevokeReturn time.Duration
	// Renewals are the acknowledged renewals, for the report.
	Renewals int
	// PastMax are the renewals whose answer let the lease live past MaxBy.
	PastMax []string
}

// MustWorkUntil is when the lease may first be dead: its revoke was sent,
// or its expiry may have come. Outside this package, ask once the clients
// have stopped: the ledger changes a lease under its lock.
func (l *Lease) MustWorkUntil() time.Duration {
	if l.RevokeCall > 0 && l.RevokeCall < l.ExpiresFrom {
		return l.RevokeCall
	}
	return l.ExpiresFrom
}

// DeadBy is when the lease is dead for sure: revoked, or past its expiry.
func (l *Lease) DeadBy() time.Duration {
	if l.RevokeReturn > 0 && l.RevokeReturn < l.ExpiresBy {
		return l.RevokeReturn
	}
	return l.ExpiresBy
}

func (l *Lease) String() string {
	return fmt.Sprintf("%s (%s) issued [%v, %v], expires in [%v, %v], revoke sent %v, acknowledged %v",
		l.ID, l.Username, l.IssueCall.Round(time.Millisecond), l.IssueReturn.Round(time.Millisecond),
		l.ExpiresFrom.Round(time.Millisecond), l.ExpiresBy.Round(time.Millisecond),
		l.RevokeCall.Round(time.Millisecond), l.RevokeReturn.Round(time.Millisecond))
}

// Ledger is every lease the clients were issued, as they learned it.
type Ledger struct {
	// MaxTTL is each role's max_ttl.
	MaxTTL map[string]time.Duration

	mu     sync.Mutex
	leases []*Lease
}

// slack is the second a server's whole-second TTLs may differ from the
// time that passed.
const slack = time.Second

// Saw records what an operation taught about its lease; for an issue, it
// returns the new lease, or nil if none was issued.
func (l *Ledger) Saw(o recorder.Op) *Lease {
	in, out := o.In.(Input), o.Out.(Output)
	l.mu.Lock()
	defer l.mu.Unlock()
	switch in.Kind {
	case Issue:
		if !out.Acknowledged() || out.LeaseID == "" {
			return nil
		}
		lease := &Lease{
			ID: out.LeaseID, Role: in.Role, Username: out.Username, Password: out.Password,
			IssueCall: o.Call, IssueReturn: o.Return,
			ExpiresFrom: o.Call + out.Duration - slack, ExpiresBy: o.Return + out.Duration + slack,
			MaxBy: o.Return + l.MaxTTL[in.Role] + slack,
		}
		l.leases = append(l.leases, lease)
		return lease
	case Renew:
		lease := in.Lease
		switch {
		case out.Acknowledged():
			lease.Renewals++
			lease.ExpiresFrom = max(lease.ExpiresFrom, o.Call+out.Duration-slack)
			lease.ExpiresBy = max(lease.ExpiresBy, o.Return+out.Duration+slack)
			if o.Call+out.Duration > lease.MaxBy {
				lease.PastMax = append(lease.PastMax, fmt.Sprintf("renew over [%v, %v] gave %v, past the max_ttl's %v",
					o.Call.Round(time.Millisecond), o.Return.Round(time.Millisecond), out.Duration, lease.MaxBy.Round(time.Millisecond)))
			}
		case !out.Definite():
			// It may have renewed it, as far as its max_ttl allows.
			lease.ExpiresBy = max(lease.ExpiresBy, lease.MaxBy)
		}
	case Revoke:
		lease := in.Lease
		if lease.RevokeCall == 0 {
			lease.RevokeCall = o.Call
		}
		if out.Acknowledged() && lease.RevokeReturn == 0 {
			lease.RevokeReturn = o.Return
		}
	}
	return nil
}

// Leases are the leases so far, in the order they were issued.
func (l *Ledger) Leases() []*Lease {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := append([]*Lease(nil), l.leases...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].IssueReturn < out[j].IssueReturn })
	return out
}

// LastToExpire is the lease not revoked that expires last, and the
// earliest it expires, as of now; nil if there is none.
func (l *Ledger) LastToExpire() (*Lease, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var last *Lease
	for _, x := range l.leases {
		if x.RevokeCall == 0 && (last == nil || x.ExpiresFrom > last.ExpiresFrom) {
			last = x
		}
	}
	if last == nil {
		return nil, 0
	}
	return last, last.ExpiresFrom
}

// snapshot is a lease's times as of now, for the prober's goroutine.
func (l *Ledger) snapshot(lease *Lease) Lease {
	l.mu.Lock()
	defer l.mu.Unlock()
	return *lease
}

// Mark is what the ledger knows of each lease now. Taken just before a
// snapshot of the server's storage, with no operation in flight, it is what
// the snapshot holds.
func (l *Ledger) Mark() map[*Lease]Lease {
	l.mu.Lock()
	defer l.mu.Unlock()
	mark := make(map[*Lease]Lease, len(l.leases))
	for _, lease := range l.leases {
		mark[lease] = *lease
	}
	return mark
}

// Rewind makes the ledger say what the server knows once it restored, over
// [from, to], the snapshot taken beside mark. A lease's renewals since are
// forgotten: it may die as the snapshot said, or at the restore if that is
// later. A lease issued since, unless a revoke of it was acknowledged
// before the restore, is forgotten altogether: the ledger no longer wants
// its credential to work from the restore on, and Rewind returns it, for
// the caller to learn what became of its user and end it with
// Swept. A revoke's deletion of its user outlives any restore.
func (l *Ledger) Rewind(mark map[*Lease]Lease, from, to time.Duration) (forgotten []*Lease) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, lease := range l.leases {
		if lease.RevokeReturn > 0 && lease.RevokeReturn < from {
			continue
		}
		then, known := mark[lease]
		if !known {
			lease.ExpiresFrom = min(lease.ExpiresFrom, from)
			forgotten = append(forgotten, lease)
			continue
		}
		lease.ExpiresFrom = min(lease.ExpiresFrom, max(then.ExpiresFrom, from))
		lease.ExpiresBy = min(lease.ExpiresBy, max(then.ExpiresBy, to))
	}
	return forgotten
}

// Swept tells the ledger that the users of leases the server forgot were
// gone by at: no revocation will delete them, the plugin's sweep did.
func (l *Ledger) Swept(forgotten []*Lease, at time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, lease := range forgotten {
		lease.ExpiresFrom = min(lease.ExpiresFrom, at)
		lease.ExpiresBy = at
	}
}
