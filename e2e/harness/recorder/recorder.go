// Package recorder runs an API's clients against a cluster and records each
// operation with its call and return time, so that the whole history can be
// checked. Its clients are sequential and send with no retries and a
// deadline per call. What they send, and what an answer means, is the API's
// traffic: the recorder knows no operation of any API.
package recorder

import (
	"context"
	"fmt"
	"math/rand"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/cluster"
)

// Input is what a client asked, as the API's traffic defines it.
type Input interface {
	// Key names the part of the API's state the operation touches: the
	// history of each key is checked on its own.
	Key() string
	// Mutates tells whether the operation may change that state.
	Mutates() bool
}

// Output is what a client got, as the API's traffic reads the answer.
type Output interface {
	// Definite tells whether the client learned what happened.
	Definite() bool
	// Acknowledged tells whether the server said the operation took effect.
	Acknowledged() bool
}

// Op is one recorded operation. Times are monotonic, since the recorder began.
type Op struct {
	// Client is porcupine's client id: a new one after each operation
	// without a definite answer, whose effect stays open.
	Client int
	// Sender is the recorder's client that sent it, for the progress
	// check; bursts sent at once are negative.
	Sender int
	Node   *cluster.Node
	In     Input
	Out    Output
	Call   time.Duration
	Return time.Duration
	// Answer is what the client saw, short: a status and the server's
	// first error, or the class of a transport error.
	Answer string
}

func (o Op) String() string {
	return fmt.Sprintf("client %d via %s [%v, %v]: %v -> %v (%s)", o.Client, o.Node.ID,
		o.Call.Round(time.Millisecond), o.Return.Round(time.Millisecond), o.In, o.Out, o.Answer)
}

// Acknowledged tells whether o changed the state, by the server's word.
func (o Op) Acknowledged() bool { return o.In.Mutates() && o.Out.Acknowledged() }

// Traffic sends an API's operations and reads their answers.
type Traffic interface {
	// Do sends in through n and says what the answer means, and what it was.
	Do(ctx context.Context, n *cluster.Node, in Input) (out Output, answer string)
}

// Client chooses what one sequential client does next; each has its own.
type Client interface {
	Next(rng *rand.Rand) Input
	// Saw tells the client what its last operation got.
	Saw(o Op)
}

// Spec is one client and where it sends (nil: to any node, at random).
type Spec struct {
	Pinned *cluster.Node
	Client Client
}

// Recorder runs clients until stopped and keeps what they did.
type Recorder struct {
	c       *cluster.Cluster
	traffic Traffic
	began   time.Time
	stopped atomic.Bool
	wg      sync.WaitGroup
	ids     atomic.Int64
	// CallTimeout bounds each call. It also bounds an outage: a node that
	// becomes active serves only once the requests it had forwarded to the
	// old active node have ended, and to a paused node they end only when
	// their client gives up.
	CallTimeout time.Duration

	mu  sync.Mutex
	ops []Op
}

// New is a recorder of clients of c that send through traffic.
func New(c *cluster.Cluster, traffic Traffic) *Recorder {
	return &Recorder{c: c, traffic: traffic, began: time.Now(), CallTimeout: 4 * time.Second}
}

// Now is the monotonic time since the recorder began.
func (r *Recorder) Now() time.Duration { return time.Since(r.began) }

// Start runs one client per spec, each with its own random source.
func (r *Recorder) Start(seed int64, specs ...Spec) {
	for i, spec := range specs {
		r.wg.Add(1)
		go r.run(rand.New(rand.NewSource(seed+int64(i))), i, spec)
	}
}

// Repeat calls do again and again until the recorder stops, on a goroutine
// of its own, with a random source of its own.
func (r *Recorder) Repeat(seed int64, do func(rng *rand.Rand)) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		rng := rand.New(rand.NewSource(seed))
		for !r.stopped.Load() {
			do(rng)
		}
	}()
}

// Every calls do(round) every period, round 1 first, until the recorder stops.
func (r *Recorder) Every(period time.Duration, do func(round int)) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for round, next := 1, time.Now().Add(period); !r.stopped.Load(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(next) {
				do(round)
				round, next = round+1, next.Add(period)
			}
		}
	}()
}

// Stop ends the clients after their current call.
func (r *Recorder) Stop() {
	r.stopped.Store(true)
	r.wg.Wait()
}

// Nodes are the nodes the clients send to.
func (r *Recorder) Nodes() []*cluster.Node { return r.c.Nodes }

func (r *Recorder) run(rng *rand.Rand, sender int, spec Spec) {
	defer r.wg.Done()
	id := r.NewClient()
	for !r.stopped.Load() {
		target := spec.Pinned
		if target == nil {
			target = r.c.Nodes[rng.Intn(len(r.c.Nodes))]
		}
		o := r.Do(id, sender, target, spec.Client.Next(rng))
		if !o.Out.Definite() {
			// Its outcome stays open: porcupine needs the client's later
			// operations under another id.
			id = r.NewClient()
		}
		spec.Client.Saw(o)
		time.Sleep(time.Duration(10+rng.Intn(30)) * time.Millisecond)
	}
}

// NewClient is a client id no operation recorded so far has.
func (r *Recorder) NewClient() int { return int(r.ids.Add(1)) }

// Concurrently sends every operation of ins through n at once, each as a
// client of its own, released together, and waits for all.
func (r *Recorder) Concurrently(n *cluster.Node, sender int, ins ...Input) {
	release := make(chan struct{})
	var wg sync.WaitGroup
	for _, in := range ins {
		wg.Add(1)
		id := r.NewClient()
		go func() {
			defer wg.Done()
			<-release
			r.Do(id, sender, n, in)
		}()
	}
	close(release)
	wg.Wait()
}

// Do sends one operation through node n, records it and returns it.
func (r *Recorder) Do(client, sender int, n *cluster.Node, in Input) Op {
	ctx, cancel := context.WithTimeout(context.Background(), r.CallTimeout)
	defer cancel()
	o := Op{Client: client, Sender: sender, Node: n, In: in, Call: r.Now()}
	o.Out, o.Answer = r.traffic.Do(ctx, n, in)
	o.Return = r.Now()
	r.mu.Lock()
	r.ops = append(r.ops, o)
	r.mu.Unlock()
	return o
}

// History returns a copy of what was recorded so far.
func (r *Recorder) History() []Op {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Op(nil), r.ops...)
}
