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
	"sync"
	"sync/atomic"
	"time"
)

// The history recorder is the load of every cluster test. Its clients are
// sequential, send raw HTTP with no retries and a deadline per call, and
// record each operation with its call and return time, so that the whole
// history can be checked for linearizability (see linearizability_test.go).

type opKind int

const (
	opRead opKind = iota
	opWrite
	opCAS // a write with cas; CAS 0 creates only
	opDelete
)

func (k opKind) String() string {
	return [...]string{"read", "write", "cas", "delete"}[k]
}

// opInput is what a client asked. Path is the partition of the check: every
// secret is its own register.
type opInput struct {
	Path  string
	Kind  opKind
	CAS   int64
	Token string // unique per write, stored as the secret's only pair
	// MayRepeat marks a write in flight while a plugin process ended: Vault
	// then sends the request to the new process once more.
	MayRepeat bool
}

type outcome int

const (
	outOK               outcome = iota // read 200, write 200, delete 204
	outAbsent                          // read 404 from the plugin
	outMismatch                        // 400 from cas: Version is the current version, 0 when absent
	outCreatedMeanwhile                // 400: created by another request since this write began
	outDeletedMeanwhile                // 400: deleted by another request since this write began
	outAmbiguous                       // no answer, or a 5xx: it may or may not have applied
	outRefused                         // nothing applied: see refusedBeforeThePlugin
	outUnexpected                      // anything else fails the test
)

func (o outcome) String() string {
	return [...]string{"ok", "absent", "cas mismatch", "created meanwhile", "deleted meanwhile",
		"ambiguous", "refused", "unexpected"}[o]
}

type opOutput struct {
	Outcome outcome
	Version int64
	Token   string
}

// op is one recorded operation. Times are monotonic, since the recorder began.
type op struct {
	client int // porcupine's client id: a new one after each ambiguous outcome
	node   *node
	in     opInput
	out    opOutput
	call   time.Duration
	ret    time.Duration
	// answer is what the client saw, short: a status and Vault's first
	// error, or the class of a transport error.
	answer string
}

func (o op) String() string {
	return fmt.Sprintf("client %d %s %s via %s [%v, %v]: %s -> %s",
		o.client, o.in.Kind, o.in.Path, o.node.id, o.call.Round(time.Millisecond), o.ret.Round(time.Millisecond), o.out.Outcome, o.answer)
}

// recorder runs clients until stopped and keeps what they did.
type recorder struct {
	c       *cluster
	paths   atomic.Pointer[[]string] // the names the clients use now
	began   time.Time
	stopped atomic.Bool
	wg      sync.WaitGroup
	ids     atomic.Int64
	tokens  atomic.Int64
	http    *http.Client
	// callTimeout bounds each call. It also bounds an outage: a node that
	// becomes active serves only once the requests it had forwarded to the
	// old active node have ended, and to a paused node they end only when
	// their client gives up.
	callTimeout time.Duration
	// readOnly clients only read.
	readOnly bool

	mu  sync.Mutex
	ops []op
}

func newRecorder(c *cluster, paths []string) *recorder {
	r := &recorder{
		c: c, began: time.Now(), callTimeout: 4 * time.Second,
		// Its own connections: a node killed or paused under one client
		// must not hold up another's requests.
		http: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}},
	}
	r.use(paths)
	return r
}

// use moves the clients to other names. A long run does so now and then,
// so that each name's history stays short enough to check: how long a check
// takes grows fast with the operations that overlap, and an operation
// without a definite answer overlaps all that follow it for pendingFor.
func (r *recorder) use(paths []string) { r.paths.Store(&paths) }

// now is the monotonic time since the recorder began.
func (r *recorder) now() time.Duration { return time.Since(r.began) }

// start runs one client per entry of pinned: a client pinned to a node sends
// everything there; a nil entry spreads its requests over every node.
func (r *recorder) start(seed int64, pinned []*node) {
	for i, n := range pinned {
		r.wg.Add(1)
		go r.client(rand.New(rand.NewSource(seed+int64(i))), n)
	}
}

// stop ends the clients after their current call.
func (r *recorder) stop() {
	r.stopped.Store(true)
	r.wg.Wait()
}

func (r *recorder) client(rng *rand.Rand, pinned *node) {
	defer r.wg.Done()
	id := int(r.ids.Add(1))
	// The version this client last saw of each path, for its cas writes.
	seen := map[string]int64{}
	for !r.stopped.Load() {
		target := pinned
		if target == nil {
			target = r.c.nodes[rng.Intn(len(r.c.nodes))]
		}
		paths := *r.paths.Load()
		in := opInput{Path: paths[rng.Intn(len(paths))]}
		switch p := rng.Intn(100); {
		case p < 40 || r.readOnly:
			in.Kind = opRead
		case p < 60:
			in.Kind = opWrite
		case p < 80:
			in.Kind, in.CAS = opCAS, seen[in.Path]
		case p < 90:
			in.Kind = opCAS
		default:
			in.Kind = opDelete
		}
		o := r.do(id, target, in)
		switch o.out.Outcome {
		case outAmbiguous:
			// Its outcome stays open to the end of the history: porcupine
			// needs the client's later operations under another id.
			id = int(r.ids.Add(1))
		case outOK, outMismatch:
			seen[in.Path] = o.out.Version // a delete's is 0
		case outAbsent:
			seen[in.Path] = 0
		}
		time.Sleep(time.Duration(10+rng.Intn(30)) * time.Millisecond)
	}
}

// do sends one operation to node n, records it and returns it.
func (r *recorder) do(client int, n *node, in opInput) op {
	method, body := "GET", map[string]interface{}(nil)
	switch in.Kind {
	case opWrite, opCAS:
		in.Token = "t" + strconv.FormatInt(r.tokens.Add(1), 10)
		method, body = "POST", map[string]interface{}{"data": map[string]interface{}{"t": in.Token}}
		if in.Kind == opCAS {
			body["cas"] = in.CAS
		}
	case opDelete:
		method = "DELETE"
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.callTimeout)
	defer cancel()
	o := op{client: client, node: n, in: in, call: r.now()}
	reply, err := sendContext(ctx, r.http, n.addr(), r.c.token, method, in.Path, body)
	o.ret = r.now()
	o.out, o.answer = classify(in, n, reply, err)
	r.mu.Lock()
	r.ops = append(r.ops, o)
	r.mu.Unlock()
	return o
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
	answer := strconv.Itoa(r.status)
	errs, _ := r.body["errors"].([]interface{})
	if len(errs) > 0 {
		answer += " " + strings.Join(strings.Fields(fmt.Sprint(errs[0])), " ")
	}
	version := func() int64 { v, _ := r.data()["version"].(float64); return int64(v) }
	switch {
	case r.status >= 500 && refusedBeforeThePlugin.MatchString(answer):
		return opOutput{Outcome: outRefused}, answer
	case r.status >= 500:
		return opOutput{Outcome: outAmbiguous}, answer
	case in.Kind == opRead && r.status == http.StatusOK:
		data, _ := r.data()["data"].(map[string]interface{})
		token, _ := data["t"].(string)
		return opOutput{Outcome: outOK, Version: version(), Token: token}, answer
	case in.Kind == opRead && r.status == http.StatusNotFound && len(errs) == 0:
		return opOutput{Outcome: outAbsent}, answer
	case in.Kind == opDelete && r.status == http.StatusNoContent:
		return opOutput{Outcome: outOK}, answer
	case in.Kind != opRead && in.Kind != opDelete && r.status == http.StatusOK:
		return opOutput{Outcome: outOK, Version: version()}, answer
	case in.Kind != opRead && in.Kind != opDelete && r.status == http.StatusBadRequest:
		msg := fmt.Sprint(errs)
		if m := currentVersion.FindStringSubmatch(msg); m != nil && in.Kind == opCAS {
			v, _ := strconv.ParseInt(m[1], 10, 64)
			return opOutput{Outcome: outMismatch, Version: v}, answer
		}
		switch {
		case strings.Contains(msg, "the secret does not exist") && in.Kind == opCAS:
			return opOutput{Outcome: outMismatch}, answer
		case strings.Contains(msg, createdMeanwhile):
			return opOutput{Outcome: outCreatedMeanwhile}, answer
		case strings.Contains(msg, deletedMeanwhile):
			return opOutput{Outcome: outDeletedMeanwhile}, answer
		}
	}
	return opOutput{Outcome: outUnexpected}, answer
}

// history returns a copy of what was recorded so far.
func (r *recorder) history() []op {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]op(nil), r.ops...)
}
