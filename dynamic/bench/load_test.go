package bench

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/cluster"
)

// Each engine's turn lasts roundTime, in rounds alternating rounds (A B C A
// B C ...), as the static engine's vaultbench does.
const (
	rounds    = 8
	roundTime = time.Second
)

// client keeps a connection per worker, so that no turn pays for dialling.
var client = &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

// load is issue-then-revoke at one concurrency, for every engine.
type load struct {
	concurrency int
	results     map[*engine]*result
	// ratios[e] holds, per round, ours's throughput over e's.
	ratios map[*engine][]float64
}

// result is what an engine did in all its turns of a load.
type result struct {
	credentials int
	elapsed     time.Duration
	latencies   []time.Duration
	redis       redisStats
	// raftEntries is how many entries Vault appended to its raft log: one
	// for each write or delete of its storage.
	raftEntries int
}

func (r *result) perSecond() float64 { return float64(r.credentials) / r.elapsed.Seconds() }

func (r *result) percentile(p float64) time.Duration {
	sort.Slice(r.latencies, func(i, j int) bool { return r.latencies[i] < r.latencies[j] })
	return r.latencies[int(float64(len(r.latencies)-1)*p)]
}

// measure runs issue-then-revoke on each engine of list, ours first, in
// alternating rounds.
func measure(t *testing.T, n *cluster.Node, list []*engine, concurrency int) load {
	t.Helper()
	l := load{concurrency: concurrency, results: map[*engine]*result{}, ratios: map[*engine][]float64{}}
	for _, e := range list {
		l.results[e] = &result{}
		issueAndRevoke(t, n, e, concurrency, roundTime/4, &result{}) // warm-up
	}
	for range rounds {
		perRound := map[*engine]float64{}
		for _, e := range list {
			var turn result
			before, index := readRedisStats(t, e), raftIndex(t, n)
			issueAndRevoke(t, n, e, concurrency, roundTime, &turn)
			turn.redis, turn.raftEntries = readRedisStats(t, e).minus(before), raftIndex(t, n)-index
			perRound[e] = turn.perSecond()
			total := l.results[e]
			total.credentials += turn.credentials
			total.elapsed += turn.elapsed
			total.latencies = append(total.latencies, turn.latencies...)
			total.redis = total.redis.plus(turn.redis)
			total.raftEntries += turn.raftEntries
		}
		for _, e := range list[1:] {
			l.ratios[e] = append(l.ratios[e], perRound[list[0]]/perRound[e])
		}
	}
	var parts []string
	for _, e := range list {
		parts = append(parts, fmt.Sprintf("%s %.0f/s", e.name, l.results[e].perSecond()))
	}
	t.Logf("issue and revoke, concurrency %d: %s", concurrency, strings.Join(parts, ", "))
	return l
}

// issueAndRevoke has concurrency workers issue a credential and revoke its
// lease at once, again and again, for d; any refusal fails the test.
func issueAndRevoke(t *testing.T, n *cluster.Node, e *engine, concurrency int, d time.Duration, res *result) {
	t.Helper()
	var mu sync.Mutex
	var wg sync.WaitGroup
	var failure error
	start := time.Now()
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Since(start) < d {
				t0 := time.Now()
				err := issueThenRevoke(n, e)
				took := time.Since(t0)
				mu.Lock()
				if err != nil && failure == nil {
					failure = err
				}
				res.credentials++
				res.latencies = append(res.latencies, took)
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	if failure != nil {
		t.Fatalf("%s: %v", e.name, failure)
	}
}

func issueThenRevoke(n *cluster.Node, e *engine) error {
	r, err := cluster.SendWith(client, n.Addr(), n.Token, "GET", e.creds(), nil)
	if err != nil || r.Status != http.StatusOK {
		return fmt.Errorf("GET %s: got %v %v, want 200", e.creds(), r, err)
	}
	r, err = cluster.SendWith(client, n.Addr(), n.Token, "PUT", "sys/leases/revoke", map[string]any{"lease_id": r.Body["lease_id"]})
	if err != nil || r.Status != http.StatusNoContent {
		return fmt.Errorf("revoke: got %v %v, want 204", r, err)
	}
	return nil
}

// raftIndex is the last index of the node's raft log.
func raftIndex(t *testing.T, n *cluster.Node) int {
	t.Helper()
	index, _ := cluster.Must(t, n, http.StatusOK, "GET", "sys/leader", nil).Body["raft_committed_index"].(float64)
	return int(index)
}

// redisStats is what Redis counted: connections it accepted, and commands
// it ran (INFO left out) with the time it spent in them, all and ACL SAVE's.
type redisStats struct {
	connections, commands, saves int
	busy, saving                 time.Duration
}

func (s redisStats) minus(o redisStats) redisStats {
	return redisStats{s.connections - o.connections, s.commands - o.commands, s.saves - o.saves, s.busy - o.busy, s.saving - o.saving}
}

func (s redisStats) plus(o redisStats) redisStats {
	return redisStats{s.connections + o.connections, s.commands + o.commands, s.saves + o.saves, s.busy + o.busy, s.saving + o.saving}
}

// readRedisStats reads INFO stats and commandstats of the engine's Redis
// through its observer, whose one connection stays open between readings.
func readRedisStats(t *testing.T, e *engine) redisStats {
	t.Helper()
	info, err := e.observer.Info(context.Background(), "stats", "commandstats").Result()
	if err != nil {
		t.Fatalf("INFO: %v", err)
	}
	var s redisStats
	for _, line := range strings.Split(info, "\r\n") {
		name, value, _ := strings.Cut(line, ":")
		if name == "total_connections_received" {
			s.connections, _ = strconv.Atoi(value)
		}
		command, ok := strings.CutPrefix(name, "cmdstat_")
		if !ok || command == "info" {
			continue
		}
		// calls=3,usec=120,usec_per_call=40.00,rejected_calls=0,failed_calls=0
		var calls, usec int
		for _, field := range strings.Split(value, ",") {
			k, v, _ := strings.Cut(field, "=")
			switch k {
			case "calls":
				calls, _ = strconv.Atoi(v)
			case "usec":
				usec, _ = strconv.Atoi(v)
			}
		}
		s.commands += calls
		s.busy += time.Duration(usec) * time.Microsecond
		if command == "acl|save" {
			s.saves, s.saving = calls, time.Duration(usec)*time.Microsecond
		}
	}
	return s
}
