package leases

import (
	"context"
	"strings"
	"sync"
	"time"
)

// Outcome is what one login with a credential got.
type Outcome int

const (
	// Works: Redis took the password.
	Works Outcome = iota
	// Refused: Redis said WRONGPASS: no such user, or not that password.
	Refused
	// Unreachable: no answer from Redis, which proves nothing either way.
	Unreachable
)

func (o Outcome) String() string { return [...]string{"works", "refused", "unreachable"}[o] }

// Probe is one login with a lease's credential.
type Probe struct {
	Lease        *Lease
	Call, Return time.Duration
	Outcome      Outcome
	// AtOnce marks the login its client tried as soon as it was issued.
	AtOnce bool
	Err    string
}

// Redis is where the credentials are tried.
type Redis interface {
	// CanLogIn is nil if user logs in with password, else why not.
	CanLogIn(ctx context.Context, user, password string) error
}

// Prober tries every lease's credential against Redis until the lease is
// dead and its credential refused.
type Prober struct {
	Redis  Redis
	Ledger *Ledger
	// Now is the recorder's clock.
	Now func() time.Duration

	mu     sync.Mutex
	probes []Probe
}

// Try logs in once with the lease's credential and records what it got.
func (p *Prober) Try(lease *Lease, atOnce bool) Probe {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	pr := Probe{Lease: lease, Call: p.Now(), AtOnce: atOnce}
	err := p.Redis.CanLogIn(ctx, lease.Username, lease.Password)
	pr.Return = p.Now()
	switch {
	case err == nil:
		pr.Outcome = Works
	case strings.Contains(err.Error(), "WRONGPASS"):
		pr.Outcome = Refused
	default:
		pr.Outcome, pr.Err = Unreachable, err.Error()
	}
	p.mu.Lock()
	p.probes = append(p.probes, pr)
	p.mu.Unlock()
	return pr
}

// Run tries every lease not yet settled, every period, until stop closes.
// A lease is settled once a login was refused after it may have died.
func (p *Prober) Run(stop <-chan struct{}, period time.Duration) {
	settled := map[*Lease]bool{}
	for {
		select {
		case <-stop:
			return
		case <-time.After(period):
		}
		for _, lease := range p.Ledger.Leases() {
			if settled[lease] {
				continue
			}
			times := p.Ledger.snapshot(lease)
			if pr := p.Try(lease, false); pr.Outcome == Refused && pr.Call > times.MustWorkUntil() {
				settled[lease] = true
			}
		}
	}
}

// Probes are the logins tried so far.
func (p *Prober) Probes() []Probe {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Probe(nil), p.probes...)
}
