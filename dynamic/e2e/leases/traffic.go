// Package leases is what the dynamic plugin's API is to the fault harness:
// clients that issue, renew and revoke leases and let them expire, a ledger
// of what each lease is and when it must work, a prober that tries every
// credential against Redis, and the checks that compare the two.
package leases

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"net/http"
	"time"

	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/cluster"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/recorder"
)

// Kind is what an operation does to a lease.
type Kind int

const (
	Issue Kind = iota
	Renew
	Revoke
)

func (k Kind) String() string { return [...]string{"issue", "renew", "revoke"}[k] }

// Input is one operation: an issue of the role's, or a renew or revoke of a
// lease.
type Input struct {
	Kind  Kind
	Role  string
	Lease *Lease
}

func (in Input) Key() string {
	if in.Kind == Issue {
		return "role " + in.Role
	}
	return in.Lease.ID
}

func (in Input) Mutates() bool { return true }

func (in Input) String() string {
	if in.Kind == Issue {
		return "issue " + in.Role
	}
	return in.Kind.String() + " " + in.Lease.ID
}

// Output is what the server answered.
type Output struct {
	Status   int
	LeaseID  string
	Username string
	Password string
	// Duration is the lease's time to live from the answer, for an issue
	// or a renew.
	Duration time.Duration
}

// Definite tells whether the server answered at all.
func (o Output) Definite() bool { return o.Status != 0 }

// Acknowledged tells whether the server said it was done.
func (o Output) Acknowledged() bool {
	return o.Status == http.StatusOK || o.Status == http.StatusNoContent
}

func (o Output) String() string {
	if o.LeaseID != "" {
		return fmt.Sprintf("%d %s (%s) for %v", o.Status, o.LeaseID, o.Username, o.Duration)
	}
	return fmt.Sprint(o.Status)
}

// Traffic sends the operations through a node's HTTP API.
type Traffic struct {
	Mount string
}

func (t Traffic) Do(ctx context.Context, n *cluster.Node, in recorder.Input) (recorder.Output, string) {
	op := in.(Input)
	var r cluster.Reply
	var err error
	switch op.Kind {
	case Issue:
		r, err = cluster.SendContext(ctx, cluster.APIHTTP, n.Addr(), n.Token, "GET", t.Mount+"/creds/"+op.Role, nil)
	case Renew:
		r, err = cluster.SendContext(ctx, cluster.APIHTTP, n.Addr(), n.Token, "PUT", "sys/leases/renew", map[string]any{"lease_id": op.Lease.ID})
	case Revoke:
		r, err = cluster.SendContext(ctx, cluster.APIHTTP, n.Addr(), n.Token, "PUT", "sys/leases/revoke", map[string]any{"lease_id": op.Lease.ID})
	}
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return Output{}, "timeout"
		}
		return Output{}, "no answer"
	}
	out := Output{Status: r.Status}
	if out.Acknowledged() {
		out.LeaseID, _ = r.Body["lease_id"].(string)
		seconds, _ := r.Body["lease_duration"].(float64)
		out.Duration = time.Duration(seconds) * time.Second
		out.Username, _ = r.Data()["username"].(string)
		out.Password, _ = r.Data()["password"].(string)
	}
	answer := fmt.Sprint(r.Status)
	if errs, ok := r.Body["errors"].([]any); ok && len(errs) > 0 {
		answer += fmt.Sprintf(" %v", errs[0])
	}
	return out, answer
}

// Serving tells whether the plugin answers through e: a list of its roles.
func Serving(mount string) func(e cluster.Endpoint, token string) (bool, string) {
	return func(e cluster.Endpoint, token string) (bool, string) {
		r, err := cluster.SendWith(cluster.HealthHTTP, e.Addr(), token, "LIST", mount+"/roles", nil)
		return err == nil && (r.Status == http.StatusOK || r.Status == http.StatusNotFound), fmt.Sprint(r, err)
	}
}

// Client issues a lease of its role, then renews it a few times, and then
// revokes it or lets it expire, again and again. Each issued credential is
// tried at once, and the ledger learns every answer.
type Client struct {
	Role   string
	Ledger *Ledger
	Prober *Prober
	// Pace is the longest a client waits between two operations of one
	// lease; a lease's TTL should be a few times longer.
	Pace time.Duration

	lease    *Lease
	renewals int
	revoke   bool
}

func (c *Client) Next(rng *rand.Rand) recorder.Input {
	if c.lease == nil {
		return Input{Kind: Issue, Role: c.Role}
	}
	time.Sleep(time.Duration(rng.Int63n(int64(c.Pace))))
	switch {
	case c.renewals > 0:
		c.renewals--
		return Input{Kind: Renew, Lease: c.lease}
	case c.revoke:
		return Input{Kind: Revoke, Lease: c.lease}
	}
	// Let it expire: the prober watches it die.
	c.lease = nil
	return Input{Kind: Issue, Role: c.Role}
}

func (c *Client) Saw(o recorder.Op) {
	in := o.In.(Input)
	lease := c.Ledger.Saw(o)
	switch {
	case in.Kind == Issue && lease != nil:
		c.Prober.Try(lease, true)
		c.lease, c.renewals, c.revoke = lease, rand.Intn(4), rand.Intn(2) == 0
	case in.Kind == Revoke:
		// Revoked, or left to expire if the revoke failed.
		c.lease = nil
	}
}
