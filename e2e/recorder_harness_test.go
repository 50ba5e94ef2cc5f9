package e2e

import (
	"context"
	"fmt"
	"math/rand"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// The recorder is the load of every cluster test. Its clients are
// sequential, send raw HTTP with no retries and a deadline per call, and
// record each operation with its call and return time, so that the whole
// history can be checked (checks_harness_test.go). What they send is the
// traffic's business (traffic_harness_test.go).

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
	return fmt.Sprintf("client %d via %s [%v, %v]: %s (%s)", o.client, o.node.id,
		o.call.Round(time.Millisecond), o.ret.Round(time.Millisecond), describe(o.in, o.out), o.answer)
}

// clientSpec says where a client sends its requests (nil: to any node, at
// random) and with what token.
type clientSpec struct {
	pinned *node
	as     capability
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
	// scoped holds the token of each capability but root's.
	scoped map[capability]string
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

// start runs one client per spec, each with its own random source.
func (r *recorder) start(seed int64, clients ...clientSpec) {
	for i, spec := range clients {
		r.wg.Add(1)
		go r.client(rand.New(rand.NewSource(seed+int64(i))), i, spec)
	}
}

// startRacer runs a client that sends bursts of concurrent writes at one
// name, so that Vault's create-or-update decision and the plugin's lock meet.
func (r *recorder) startRacer(seed int64) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		rng := rand.New(rand.NewSource(seed))
		for !r.stopped.Load() {
			r.race(rng)
			time.Sleep(time.Duration(200+rng.Intn(200)) * time.Millisecond)
		}
	}()
}

// rotate moves the clients to names(round) every period, round 1 first.
func (r *recorder) rotate(every time.Duration, names func(round int) []string) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for round, next := 1, time.Now().Add(every); !r.stopped.Load(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(next) {
				r.use(names(round))
				round, next = round+1, next.Add(every)
			}
		}
	}()
}

// stop ends the clients after their current call.
func (r *recorder) stop() {
	r.stopped.Store(true)
	r.wg.Wait()
}

func (r *recorder) client(rng *rand.Rand, sender int, spec clientSpec) {
	defer r.wg.Done()
	id := int(r.ids.Add(1))
	// The version this client last saw of each path, for its cas writes.
	seen := map[string]int64{}
	for !r.stopped.Load() {
		target := spec.pinned
		if target == nil {
			target = r.c.nodes[rng.Intn(len(r.c.nodes))]
		}
		paths := *r.paths.Load()
		in := nextOperation(rng, spec.as, paths[rng.Intn(len(paths))], seen, r.readOnly)
		in.Sender = sender
		o := r.do(id, target, in)
		if !o.out.Outcome.definite() {
			// Its outcome stays open: porcupine needs the client's later
			// operations under another id.
			id = int(r.ids.Add(1))
		}
		remember(seen, o)
		time.Sleep(time.Duration(10+rng.Intn(30)) * time.Millisecond)
	}
}

// concurrently sends every operation of ins at once, each as a client of its
// own, released together, and waits for all.
func (r *recorder) concurrently(n *node, ins ...opInput) {
	release := make(chan struct{})
	var wg sync.WaitGroup
	for _, in := range ins {
		wg.Add(1)
		id := int(r.ids.Add(1))
		go func() {
			defer wg.Done()
			<-release
			r.do(id, n, in)
		}()
	}
	close(release)
	wg.Wait()
}

// do sends one operation to node n, records it and returns it.
func (r *recorder) do(client int, n *node, in opInput) op {
	if in.Kind == opWrite || in.Kind == opCAS {
		in.Token = fmt.Sprintf("t%d", r.tokens.Add(1))
	}
	token := r.c.token
	if in.As != asRoot {
		token = r.scoped[in.As]
	}
	method, body := request(in)
	ctx, cancel := context.WithTimeout(context.Background(), r.callTimeout)
	defer cancel()
	o := op{client: client, node: n, in: in, call: r.now()}
	reply, err := sendContext(ctx, r.http, n.addr(), token, method, in.Path, body)
	o.ret = r.now()
	o.out, o.answer = classify(in, n, reply, err)
	r.mu.Lock()
	r.ops = append(r.ops, o)
	r.mu.Unlock()
	return o
}

// history returns a copy of what was recorded so far.
func (r *recorder) history() []op {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]op(nil), r.ops...)
}
