// Package traffic is which of the API's operations the recorder's clients
// send, how each becomes an HTTP request, and what each answer means to the
// model; and the API's requests the harness needs: a probe that the plugin
// serves, and a change every node must come to read. A plugin author who
// changes the API rewrites this package and the model; the harness stays.
package traffic

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/api/model"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/cluster"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/recorder"
)

// Traffic sends the API's operations to a cluster's nodes.
type Traffic struct {
	token string
	// scoped holds the token of each capability but root's.
	scoped map[model.Capability]string
	http   *http.Client
	paths  atomic.Pointer[[]string] // the secrets the clients use now
	tokens atomic.Int64
}

// New is traffic to c with its root token; scoped tokens come with
// WithScopedTokens.
func New(c *cluster.Cluster, paths []string) *Traffic {
	tr := &Traffic{
		token: c.Token,
		// Its own connections: a node killed or paused under one client
		// must not hold up another's requests.
		http: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}},
	}
	tr.Use(paths)
	return tr
}

// Use moves the clients to other secrets. A long run does so now and then,
// so that each secret's history stays short enough to check: how long a
// check takes grows fast with the operations that overlap, and an
// operation without a definite answer overlaps all that follow it for a
// while.
func (tr *Traffic) Use(paths []string) { tr.paths.Store(&paths) }

// Client is a client with the root token that reads, writes, writes with
// cas and deletes.
func (tr *Traffic) Client() recorder.Client { return tr.clientAs(model.AsRoot, false) }

// Reader is a client with the root token that only reads.
func (tr *Traffic) Reader() recorder.Client { return tr.clientAs(model.AsRoot, true) }

// CreateOnly and UpdateOnly are clients whose token may only create, or
// only update, a secret: they need WithScopedTokens.
func (tr *Traffic) CreateOnly() recorder.Client { return tr.clientAs(model.AsCreateOnly, false) }
func (tr *Traffic) UpdateOnly() recorder.Client { return tr.clientAs(model.AsUpdateOnly, false) }

func (tr *Traffic) clientAs(as model.Capability, readOnly bool) recorder.Client {
	return &client{tr: tr, as: as, readOnly: readOnly, seen: map[string]int64{}}
}

// client is one sequential client; seen is the version it last saw of each
// secret, for its cas writes.
type client struct {
	tr       *Traffic
	as       model.Capability
	readOnly bool
	seen     map[string]int64
}

func (cl *client) Next(rng *rand.Rand) recorder.Input {
	paths := *cl.tr.paths.Load()
	path := paths[rng.Intn(len(paths))]
	in := model.Input{Path: path, As: cl.as}
	switch p := rng.Intn(100); {
	case cl.readOnly:
		in.Kind = model.Read
	case cl.as == model.AsCreateOnly:
		in.Kind = model.Write
	case cl.as == model.AsUpdateOnly && p < 50:
		in.Kind = model.Write
	case cl.as == model.AsUpdateOnly:
		in.Kind, in.CAS = model.CAS, cl.seen[path]
	case p < 40:
		in.Kind = model.Read
	case p < 60:
		in.Kind = model.Write
	case p < 80:
		in.Kind, in.CAS = model.CAS, cl.seen[path]
	case p < 90:
		in.Kind = model.CAS
	default:
		in.Kind = model.Delete
	}
	return cl.tr.mint(in)
}

// Saw notes the version an answer named, for the client's next cas.
func (cl *client) Saw(o recorder.Op) {
	path, out := o.In.(model.Input).Path, o.Out.(model.Output)
	switch out.Outcome {
	case model.OK, model.Mismatch:
		cl.seen[path] = out.Version // a delete's is 0
	case model.Absent:
		cl.seen[path] = 0
	}
}

// mint gives a write its unique token, which a read then names.
func (tr *Traffic) mint(in model.Input) model.Input {
	if in.Kind == model.Write || in.Kind == model.CAS {
		in.Token = fmt.Sprintf("t%d", tr.tokens.Add(1))
	}
	return in
}

// Race sends, through one node, concurrent creates of a secret just
// deleted, then a delete racing updates of it, then waits a little. The
// server decides create or update, and checks the token for it, before
// the plugin takes the name's lock: only concurrent requests show whether
// the plugin honours that decision. Its operations' sender is -1.
func (tr *Traffic) Race(rec *recorder.Recorder, rng *rand.Rand) {
	paths := *tr.paths.Load()
	p := paths[rng.Intn(len(paths))]
	nodes := rec.Nodes()
	n := nodes[rng.Intn(len(nodes))]
	del := model.Input{Path: p, Kind: model.Delete}
	rec.Do(rec.NewClient(), -1, n, del)
	create := func() recorder.Input { return tr.mint(model.Input{Path: p, Kind: model.Write, As: model.AsCreateOnly}) }
	rec.Concurrently(n, -1, create(), create(), create())
	update := func() recorder.Input { return tr.mint(model.Input{Path: p, Kind: model.Write, As: model.AsUpdateOnly}) }
	rec.Concurrently(n, -1, del, update(), update(), update())
	time.Sleep(time.Duration(200+rng.Intn(200)) * time.Millisecond)
}

// Do sends in to node n and reads the answer.
func (tr *Traffic) Do(ctx context.Context, n *cluster.Node, in recorder.Input) (recorder.Output, string) {
	op := in.(model.Input)
	token := tr.token
	if op.As != model.AsRoot {
		token = tr.scoped[op.As]
	}
	method, body := request(op)
	reply, err := cluster.SendContext(ctx, tr.http, n.Addr(), token, method, op.Path, body)
	return classify(op, n, reply, err)
}

// request is the HTTP method and body of in.
func request(in model.Input) (string, map[string]any) {
	switch in.Kind {
	case model.Write, model.CAS:
		body := map[string]any{"data": map[string]any{"t": in.Token}}
		if in.Kind == model.CAS {
			body["cas"] = in.CAS
		}
		return "POST", body
	case model.Delete:
		return "DELETE", nil
	}
	return "GET", nil
}

// WithScopedTokens makes, through c's active node, a token for each scoped
// capability, for the secrets under the mount.
func (tr *Traffic) WithScopedTokens(c *cluster.Cluster) {
	c.T.Helper()
	tr.scoped = map[model.Capability]string{}
	for as, verb := range map[model.Capability]string{model.AsCreateOnly: "create", model.AsUpdateOnly: "update"} {
		name := "chaos-" + verb + "-only"
		policy := fmt.Sprintf("path %q { capabilities = [%q] }", cluster.Plugin.Mount+"/secrets/*", verb)
		cluster.Must(c.T, c.Active(), http.StatusNoContent, "PUT", "sys/policies/acl/"+name, map[string]any{"policy": policy})
		r := cluster.Must(c.T, c.Active(), http.StatusOK, "POST", "auth/token/create",
			map[string]any{"policies": []string{name}, "no_default_policy": true})
		tr.scoped[as] = r.Body["auth"].(map[string]any)["client_token"].(string)
	}
}

var (
	// refusedBeforeThePlugin are the server's answers to a request that
	// neither the plugin nor raft took: a sealed node, a node that is no
	// longer raft's leader (raft refuses to append), a mount still being set
	// up. Not "local node not active but active cluster node not found": a
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
func classify(in model.Input, n *cluster.Node, r cluster.Reply, err error) (model.Output, string) {
	if err != nil {
		return classifyTransport(n, err)
	}
	answer := strconv.Itoa(r.Status)
	errs, _ := r.Body["errors"].([]any)
	if len(errs) > 0 {
		answer += " " + strings.Join(strings.Fields(fmt.Sprint(errs[0])), " ")
	}
	version := func() int64 { v, _ := r.Data()["version"].(float64); return int64(v) }
	isWrite := in.Kind == model.Write || in.Kind == model.CAS
	switch {
	case r.Status >= 500 && refusedBeforeThePlugin.MatchString(answer):
		return model.Output{Outcome: model.Refused}, answer
	case r.Status >= 500:
		return model.Output{Outcome: model.Ambiguous}, answer
	case r.Status == http.StatusNotFound && strings.Contains(answer, "no handler for route"):
		// The node has not set up the mount yet: the plugin never saw it.
		return model.Output{Outcome: model.Refused}, answer
	case in.Kind == model.Read && r.Status == http.StatusOK:
		data, _ := r.Data()["data"].(map[string]any)
		token, _ := data["t"].(string)
		return model.Output{Outcome: model.OK, Version: version(), Token: token}, answer
	case in.Kind == model.Read && r.Status == http.StatusNotFound && len(errs) == 0:
		return model.Output{Outcome: model.Absent}, answer
	case in.Kind == model.Delete && r.Status == http.StatusNoContent:
		return model.Output{Outcome: model.OK}, answer
	case isWrite && r.Status == http.StatusOK:
		return model.Output{Outcome: model.OK, Version: version()}, answer
	case isWrite && r.Status == http.StatusForbidden && in.As != model.AsRoot:
		return model.Output{Outcome: model.Denied}, answer
	case isWrite && r.Status == http.StatusBadRequest:
		return classifyRefusedWrite(in, fmt.Sprint(errs)), answer
	}
	return model.Output{Outcome: model.Unexpected}, answer
}

// classifyRefusedWrite reads the plugin's 400 to a write.
func classifyRefusedWrite(in model.Input, msg string) model.Output {
	if m := currentVersion.FindStringSubmatch(msg); m != nil && in.Kind == model.CAS {
		v, _ := strconv.ParseInt(m[1], 10, 64)
		return model.Output{Outcome: model.Mismatch, Version: v}
	}
	switch {
	case strings.Contains(msg, "the secret does not exist") && in.Kind == model.CAS:
		return model.Output{Outcome: model.Mismatch}
	case strings.Contains(msg, createdMeanwhile):
		return model.Output{Outcome: model.CreatedMeanwhile}
	case strings.Contains(msg, deletedMeanwhile):
		return model.Output{Outcome: model.DeletedMeanwhile}
	}
	return model.Output{Outcome: model.Unexpected}
}

// classifyTransport names a request that got no HTTP answer.
func classifyTransport(n *cluster.Node, err error) (model.Output, string) {
	var kind string
	switch msg := err.Error(); {
	case strings.Contains(msg, "connection refused") && strings.Contains(msg, "//"+n.Listen+"/"):
		return model.Output{Outcome: model.Refused}, "connection refused"
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
	return model.Output{Outcome: model.Ambiguous}, kind
}

// Serving tells whether the plugin serves through e: a read of a secret
// never written, outside every checked history, gets the plugin's own 404.
func Serving(e cluster.Endpoint, token string) (bool, string) {
	r, err := cluster.Send(e.Addr(), token, "GET", cluster.Plugin.Mount+"/secrets/probe", nil)
	errs, _ := r.Body["errors"].([]any)
	return err == nil && r.Status == http.StatusNotFound && len(errs) == 0, fmt.Sprint(r, err)
}

// ChangeConfig writes, through the active node, a config no earlier run
// wrote, and returns how to put back the one it replaced; for
// checks.MustConverge.
func ChangeConfig(c *cluster.Cluster) (write func(*cluster.Node) func(), read func(*cluster.Node) (bool, string)) {
	written := 100000 + rand.Intn(100000)
	write = func(a *cluster.Node) func() {
		was := cluster.Must(c.T, a, http.StatusOK, "GET", cluster.Plugin.Mount+"/config", nil).Data()["max_secret_bytes"]
		cluster.Must(c.T, a, http.StatusNoContent, "POST", cluster.Plugin.Mount+"/config", map[string]any{"max_secret_bytes": written})
		return func() {
			cluster.Must(c.T, a, http.StatusNoContent, "POST", cluster.Plugin.Mount+"/config", map[string]any{"max_secret_bytes": was})
		}
	}
	read = func(n *cluster.Node) (bool, string) {
		r, err := cluster.Send(n.Addr(), c.Token, "GET", cluster.Plugin.Mount+"/config", nil)
		return err == nil && r.Data()["max_secret_bytes"] == float64(written), fmt.Sprint(r, err)
	}
	return write, read
}
