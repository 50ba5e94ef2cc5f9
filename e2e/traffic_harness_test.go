package e2e

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// The traffic: which of the API's operations the recorder's clients send,
// how each becomes an HTTP request, and what each answer means to the model.
// A plugin author who changes the API replaces this file and
// model_harness_test.go.

// nextOperation picks what a client with capability as does next on path;
// seen is the version it last saw of each path, for its cas writes.
func nextOperation(rng *rand.Rand, as capability, path string, seen map[string]int64, readOnly bool) opInput {
	in := opInput{Path: path, As: as}
	switch p := rng.Intn(100); {
	case readOnly:
		in.Kind = opRead
	case as == asCreateOnly:
		in.Kind = opWrite
	case as == asUpdateOnly && p < 50:
		in.Kind = opWrite
	case as == asUpdateOnly:
		in.Kind, in.CAS = opCAS, seen[path]
	case p < 40:
		in.Kind = opRead
	case p < 60:
		in.Kind = opWrite
	case p < 80:
		in.Kind, in.CAS = opCAS, seen[path]
	case p < 90:
		in.Kind = opCAS
	default:
		in.Kind = opDelete
	}
	return in
}

// remember notes the version an answer named, for the client's next cas.
func remember(seen map[string]int64, o op) {
	switch o.out.Outcome {
	case outOK, outMismatch:
		seen[o.in.Path] = o.out.Version // a delete's is 0
	case outAbsent:
		seen[o.in.Path] = 0
	}
}

// race sends, through one node, concurrent creates of a name just deleted,
// then a delete racing updates of it. Vault decides create or update, and
// checks the token for it, before the plugin takes the name's lock: only
// concurrent requests show whether the plugin honours that decision.
func (r *recorder) race(rng *rand.Rand) {
	paths := *r.paths.Load()
	p := paths[rng.Intn(len(paths))]
	n := r.c.nodes[rng.Intn(len(r.c.nodes))]
	del := opInput{Path: p, Kind: opDelete, Sender: -1}
	r.do(int(r.ids.Add(1)), n, del)
	create := opInput{Path: p, Kind: opWrite, As: asCreateOnly, Sender: -1}
	r.concurrently(n, create, create, create)
	update := opInput{Path: p, Kind: opWrite, As: asUpdateOnly, Sender: -1}
	r.concurrently(n, del, update, update, update)
}

// request is the HTTP method and body of in.
func request(in opInput) (string, map[string]interface{}) {
	switch in.Kind {
	case opWrite, opCAS:
		body := map[string]interface{}{"data": map[string]interface{}{"t": in.Token}}
		if in.Kind == opCAS {
			body["cas"] = in.CAS
		}
		return "POST", body
	case opDelete:
		return "DELETE", nil
	}
	return "GET", nil
}

// scopedPolicies are the ACL policies of the clients that may only create or
// only update a secret under the mount.
var scopedPolicies = map[capability]string{asCreateOnly: "create", asUpdateOnly: "update"}

// scopedTokens makes, through the active node, a token for each scoped
// capability.
func scopedTokens(c *cluster) map[capability]string {
	c.t.Helper()
	tokens := map[capability]string{}
	for as, verb := range scopedPolicies {
		name := "chaos-" + verb + "-only"
		policy := fmt.Sprintf("path %q { capabilities = [%q] }", mount+"/secrets/*", verb)
		must(c.t, c.active(), http.StatusNoContent, "PUT", "sys/policies/acl/"+name, map[string]interface{}{"policy": policy})
		r := must(c.t, c.active(), http.StatusOK, "POST", "auth/token/create",
			map[string]interface{}{"policies": []string{name}, "no_default_policy": true})
		tokens[as] = r.body["auth"].(map[string]interface{})["client_token"].(string)
	}
	return tokens
}

var (
	// refusedBeforeThePlugin are Vault's answers to a request that neither
	// the plugin nor raft took: a sealed node, a node that is no longer
	// raft's leader (raft refuses to append), a mount still being set up.
	// Not "local node not active but active cluster node not found": a
	// standby also answers so when the active node it had forwarded the
	// request to died before answering, and the request may have landed.
	refusedBeforeThePlugin = regexp.MustCompile(`^(503 Vault is sealed|` +
		`500 .*(writing|deleting) secret: (node is not the leader|cannot write to storage during setup))`)
	currentVersion   = regexp.MustCompile(`current version is (\d+)`)
	createdMeanwhile = "created by another request since this write began"
	deletedMeanwhile = "deleted by another request since this write began"
)

// classify turns what a client that sent in to node n got into an outcome
// of the model.
func classify(in opInput, n *node, r reply, err error) (opOutput, string) {
	if err != nil {
		return classifyTransport(n, err)
	}
	answer := strconv.Itoa(r.status)
	errs, _ := r.body["errors"].([]interface{})
	if len(errs) > 0 {
		answer += " " + strings.Join(strings.Fields(fmt.Sprint(errs[0])), " ")
	}
	version := func() int64 { v, _ := r.data()["version"].(float64); return int64(v) }
	isWrite := in.Kind == opWrite || in.Kind == opCAS
	switch {
	case r.status >= 500 && refusedBeforeThePlugin.MatchString(answer):
		return opOutput{Outcome: outRefused}, answer
	case r.status >= 500:
		return opOutput{Outcome: outAmbiguous}, answer
	case r.status == http.StatusNotFound && strings.Contains(answer, "no handler for route"):
		// The node has not set up the mount yet: the plugin never saw it.
		return opOutput{Outcome: outRefused}, answer
	case in.Kind == opRead && r.status == http.StatusOK:
		data, _ := r.data()["data"].(map[string]interface{})
		token, _ := data["t"].(string)
		return opOutput{Outcome: outOK, Version: version(), Token: token}, answer
	case in.Kind == opRead && r.status == http.StatusNotFound && len(errs) == 0:
		return opOutput{Outcome: outAbsent}, answer
	case in.Kind == opDelete && r.status == http.StatusNoContent:
		return opOutput{Outcome: outOK}, answer
	case isWrite && r.status == http.StatusOK:
		return opOutput{Outcome: outOK, Version: version()}, answer
	case isWrite && r.status == http.StatusForbidden && in.As != asRoot:
		return opOutput{Outcome: outDenied}, answer
	case isWrite && r.status == http.StatusBadRequest:
		return classifyRefusedWrite(in, fmt.Sprint(errs)), answer
	}
	return opOutput{Outcome: outUnexpected}, answer
}

// classifyRefusedWrite reads the plugin's 400 to a write.
func classifyRefusedWrite(in opInput, msg string) opOutput {
	if m := currentVersion.FindStringSubmatch(msg); m != nil && in.Kind == opCAS {
		v, _ := strconv.ParseInt(m[1], 10, 64)
		return opOutput{Outcome: outMismatch, Version: v}
	}
	switch {
	case strings.Contains(msg, "the secret does not exist") && in.Kind == opCAS:
		return opOutput{Outcome: outMismatch}
	case strings.Contains(msg, createdMeanwhile):
		return opOutput{Outcome: outCreatedMeanwhile}
	case strings.Contains(msg, deletedMeanwhile):
		return opOutput{Outcome: outDeletedMeanwhile}
	}
	return opOutput{Outcome: outUnexpected}
}

// classifyTransport names a request that got no HTTP answer.
func classifyTransport(n *node, err error) (opOutput, string) {
	var kind string
	switch msg := err.Error(); {
	case strings.Contains(msg, "connection refused") && strings.Contains(msg, "//"+n.listen+"/"):
		return opOutput{Outcome: outRefused}, "connection refused"
	case strings.Contains(msg, "connection refused"):
		// A standby redirects the client to the active node when it
		// could not forward the request, also after the active node
		// took it and died before answering: it may have landed.
		kind = "connection refused after a redirect"
	case errors.Is(err, context.DeadlineExceeded):
		kind = "timeout"
	case strings.HasSuffix(msg, "EOF"):
		kind = "EOF"
	case strings.Contains(msg, "connection reset"):
		kind = "connection reset"
	default:
		kind = msg
	}
	return opOutput{Outcome: outAmbiguous}, kind
}
