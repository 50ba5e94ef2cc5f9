package bench

import (
	"testing"

	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/cluster"
)

// TestBench is the whole run: one Vault server with every engine mounted,
// each with a Redis of its own; issue-and-revoke throughput, the time to a
// refused login after a revoke and after an expiry, and what each engine
// leaves behind under faults. It writes the report to -out.
func TestBench(t *testing.T) {
	c := cluster.Start(t, 1)
	n := c.Active()
	for _, e := range []*engine{ours, peer, unsaved} {
		e.start(t, n)
	}
	r := report{machine: machine()}
	for _, concurrency := range []int{1, 8} {
		r.loads = append(r.loads, measure(t, n, []*engine{ours, peer, unsaved}, concurrency))
	}
	r.bounds = map[*engine]bounds{}
	for _, e := range []*engine{ours, peer} {
		r.bounds[e] = measureBounds(t, n, e)
	}
	r.outcomes = faults(t, c, []*engine{ours, peer})
	if *out != "" {
		r.write(t, *out)
	}
}
