package faults

import (
	"math/rand"
	"net/http"
	"time"

	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/cluster"
)

// StepDown is sys/step-down of the active node: an orderly change of the
// active node, as an operator makes before maintenance.
var StepDown Injector = stepDown{}

type stepDown struct{}

func (stepDown) Name() string         { return "step-down" }
func (stepDown) Bound() time.Duration { return changeOfActive }

func (stepDown) hit(c *cluster.Cluster, f *Fault, _ *rand.Rand, _ func() time.Duration) {
	cluster.Must(c.T, f.Node, http.StatusNoContent, "PUT", "sys/step-down", nil)
	f.Detail = c.WaitOtherActive(f.Node).ID + " active"
}
