package e2e

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The cluster tests run the plugin where production runs it: a 3-node raft
// cluster, registered once, through failover, a rolling upgrade, a snapshot
// restore, and a node that lacks the binary.

func TestCluster_RegisteredOnceServesThroughEveryNode(t *testing.T) {
	c := startCluster(t, 3)
	active := c.active()
	standbys := c.standbys()

	// A standby forwards a request to the active node over the cluster port,
	// or, when it cannot, redirects the client there with a 307.
	var redirected atomic.Value
	client := &http.Client{Timeout: 20 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		redirected.Store(req.URL.Host)
		return nil
	}}
	r, err := sendWith(client, standbys[0].addr(), c.token, "POST", "ref/secrets/team/app", secretBody("password", "via-standby"))
	if err != nil || r.status != http.StatusOK || r.data()["version"] != float64(1) {
		t.Fatalf("write via standby %s: %s %v", standbys[0].id, r, err)
	}
	how := "forwarded by the standby"
	if host, ok := redirected.Load().(string); ok {
		how = "redirected to " + host
	}
	t.Logf("write via standby %s: %s (active is %s)", standbys[0].id, how, active.id)

	r = c.must(standbys[1], http.StatusOK, "GET", "ref/secrets/team/app", nil)
	if got := r.data()["data"].(map[string]interface{})["password"]; got != "via-standby" || r.data()["version"] != float64(1) {
		t.Fatalf("read via standby %s: %s", standbys[1].id, r)
	}
	if keys := c.must(active, http.StatusOK, "LIST", "ref/secrets/team/", nil).data()["keys"]; fmt.Sprint(keys) != "[app]" {
		t.Fatalf("list via the active node: %v", keys)
	}
	// Only the active node runs the plugin; a standby has no process to serve from.
	for _, n := range c.nodes {
		running := len(processesUnder(n.pluginDir))
		if (n == active) != (running > 0) {
			t.Errorf("%s (active: %v) runs %d plugin processes", n.id, n == active, running)
		}
	}
	t.Logf("median read: %v via the active node, %v via a standby",
		medianRead(c, active, "ref/secrets/team/app"), medianRead(c, standbys[0], "ref/secrets/team/app"))
}

func medianRead(c *cluster, n *node, path string) time.Duration {
	c.t.Helper()
	took := make([]time.Duration, 31)
	for i := range took {
		began := time.Now()
		c.must(n, http.StatusOK, "GET", path, nil)
		took[i] = time.Since(began)
	}
	slices.Sort(took)
	return took[len(took)/2].Round(10 * time.Microsecond)
}

// writeLoad is a set of writers that write through every node until stopped
// and retry, on the next node, whatever got no answer or an error, as a
// client of a cluster should. It records every write acknowledged with a 200.
type writeLoad struct {
	c      *cluster
	stop   chan struct{}
	wg     sync.WaitGroup
	mu     sync.Mutex
	plain  []plainWrite
	chains []*casChain
	// seen counts what clients saw instead of a 200, by kind.
	seen map[string]int
	// landed counts cas writes refused as already stored when sent again.
	landed int
	// unanswered counts writes still unacknowledged when the load stopped.
	unanswered int
}

// plainWrite is an acknowledged write of a fresh name: version is what the 200
// said, sends how often the client sent it.
type plainWrite struct {
	name, seq      string
	version, sends int
}

// casChain is one name written only with cas, each write at the version the
// previous one returned; acked holds the versions Vault acknowledged.
type casChain struct {
	name    string
	acked   []int
	pending bool // the last write got no answer: it may have landed
	broken  string
}

var currentVersion = regexp.MustCompile(`current version is (\d+)`)

func startWriteLoad(c *cluster, plainWriters, chains int) *writeLoad {
	l := &writeLoad{c: c, stop: make(chan struct{}), seen: map[string]int{}}
	for w := 0; w < plainWriters; w++ {
		l.wg.Add(1)
		go l.writePlain(w)
	}
	for i := 0; i < chains; i++ {
		ch := &casChain{name: fmt.Sprintf("chain/c%d", i)}
		l.chains = append(l.chains, ch)
		l.wg.Add(1)
		go l.writeChain(plainWriters+i, ch)
	}
	return l
}

// summary is what a client got, short enough to count by kind.
func summary(r reply, err error) string {
	if err != nil {
		switch msg := err.Error(); {
		case strings.Contains(msg, "connection refused"):
			return "connection refused"
		case strings.HasSuffix(msg, "EOF"):
			return "EOF"
		case strings.Contains(msg, "connection reset"):
			return "connection reset"
		default:
			return msg
		}
	}
	msg := fmt.Sprintf("HTTP %d", r.status)
	if errs, ok := r.body["errors"].([]interface{}); ok && len(errs) > 0 {
		msg += " " + strings.Join(strings.Fields(fmt.Sprint(errs[0])), " ")
	}
	if len(msg) > 80 {
		msg = msg[:80]
	}
	return msg
}

// note records what a client sent to node target got instead of a 200. An
// error names the node it came from, which is another one when a standby
// redirected the client there.
func (l *writeLoad) note(target *node, r reply, err error) {
	kind := summary(r, err)
	for _, n := range l.c.nodes {
		if err != nil && strings.Contains(err.Error(), n.listen) {
			kind += " from " + n.id
			if n != target {
				kind += " (sent to " + target.id + ")"
			}
		}
	}
	l.mu.Lock()
	l.seen[kind]++
	l.mu.Unlock()
}

// send sends one write, moving to the next node after a failure, until it gets
// an answer other than an error: a 200, or a 400 when the body carries cas.
func (l *writeLoad) send(writer int, path string, body map[string]interface{}) (r reply, sends int, answered bool) {
	for target := writer; !isClosed(l.stop); target++ {
		n := l.c.nodes[target%len(l.c.nodes)]
		sends++
		r, err := send(n.addr(), l.c.token, "POST", path, body)
		if err == nil && (r.status == http.StatusOK || r.status == http.StatusBadRequest && body["cas"] != nil) {
			return r, sends, true
		}
		l.note(n, r, err)
		time.Sleep(50 * time.Millisecond)
	}
	return reply{}, sends, false
}

func (l *writeLoad) writePlain(writer int) {
	defer l.wg.Done()
	for i := 0; !isClosed(l.stop); i++ {
		name, seq := fmt.Sprintf("plain/w%d/s%d", writer, i), strconv.Itoa(i)
		r, sends, ok := l.send(writer, "ref/secrets/"+name, secretBody("seq", seq))
		l.mu.Lock()
		if ok {
			version, _ := r.data()["version"].(float64)
			l.plain = append(l.plain, plainWrite{name: name, seq: seq, version: int(version), sends: sends})
		} else {
			l.unanswered++
		}
		l.mu.Unlock()
	}
}

func (l *writeLoad) writeChain(writer int, ch *casChain) {
	defer l.wg.Done()
	for next := 1; !isClosed(l.stop) && ch.broken == ""; {
		body := map[string]interface{}{"data": map[string]interface{}{"step": strconv.Itoa(next)}, "cas": next - 1}
		r, sends, ok := l.send(writer, "ref/secrets/"+ch.name, body)
		l.mu.Lock()
		switch {
		case !ok:
			ch.pending = sends > 0
			l.unanswered++
		case r.status == http.StatusOK:
			version, _ := r.data()["version"].(float64)
			ch.acked = append(ch.acked, int(version))
			next = int(version) + 1
		default:
			// A cas refusal naming the version this write makes: a send that
			// failed, or one Vault sent again itself, had landed.
			m := currentVersion.FindStringSubmatch(r.raw)
			if m != nil && m[1] == strconv.Itoa(next) {
				l.landed++
				ch.acked = append(ch.acked, next)
				next++
			} else {
				ch.broken = fmt.Sprintf("cas=%d after %d sends: %s", next-1, sends, r)
			}
		}
		l.mu.Unlock()
	}
}

// finish stops the writers and waits for them.
func (l *writeLoad) finish() {
	close(l.stop)
	l.wg.Wait()
}

// verify reads back every acknowledged write through the live nodes.
func (l *writeLoad) verify(t *testing.T) {
	t.Helper()
	var live []*node
	for _, n := range l.c.nodes {
		if !n.down {
			live = append(live, n)
		}
	}
	var wg sync.WaitGroup
	var lost, wrong, twice atomic.Int64
	const readers = 4
	for i := 0; i < readers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := i; j < len(l.plain); j += readers {
				w := l.plain[j]
				r, err := send(live[j%len(live)].addr(), l.c.token, "GET", "ref/secrets/"+w.name, nil)
				if err != nil || r.status != http.StatusOK {
					if lost.Add(1) <= 5 {
						t.Errorf("acknowledged write %s (version %d) reads %s %v", w.name, w.version, r, err)
					}
					continue
				}
				data, _ := r.data()["data"].(map[string]interface{})
				version := int(r.data()["version"].(float64))
				// A write sent again after an error may have landed twice; it
				// can never be older than acknowledged, nor newer than sent.
				if data["seq"] != w.seq || version < w.version || version > w.sends {
					if wrong.Add(1) <= 5 {
						t.Errorf("acknowledged write %s: version %d, %d sends; reads %s", w.name, w.version, w.sends, r)
					}
				}
				if version > 1 {
					twice.Add(1)
				}
			}
		}()
	}
	wg.Wait()

	for _, ch := range l.chains {
		if ch.broken != "" {
			t.Errorf("%s broke: %s", ch.name, ch.broken)
		}
		for i, v := range ch.acked {
			if v != i+1 {
				t.Fatalf("%s acknowledged versions %v: a gap or a duplicate at %d", ch.name, ch.acked, i)
			}
		}
		r := l.c.must(live[0], http.StatusOK, "GET", "ref/secrets/"+ch.name, nil)
		last := len(ch.acked)
		version := int(r.data()["version"].(float64))
		step := r.data()["data"].(map[string]interface{})["step"]
		if (version != last && !(ch.pending && version == last+1)) || step != strconv.Itoa(version) {
			t.Errorf("%s: %d acknowledged writes (last unanswered: %v), reads %s", ch.name, last, ch.pending, r)
		}
	}
	lengths := make([]int, len(l.chains))
	for i, ch := range l.chains {
		lengths[i] = len(ch.acked)
	}
	t.Logf("acknowledged: %d plain writes, cas chains of %v; lost %d, wrong %d; writes seen failing "+
		"that had landed: %d plain (stored twice), %d cas (refused on retry); %d unanswered at the end; clients saw: %v",
		len(l.plain), lengths, lost.Load(), wrong.Load(), twice.Load(), l.landed, l.unanswered, l.seen)
}

// failover kill -9s the active node and waits until another node serves
// probe, a read of the plugin. It returns the node it killed.
func (c *cluster) failover(probe string) *node {
	c.t.Helper()
	old := c.active()
	began := old.kill(c.t)
	var elected time.Duration
	var by *node
	for deadline := began.Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			c.t.Fatalf("no node serves %s within 30 s of killing %s", probe, old.id)
		}
		a := c.activeNode()
		if a == nil {
			continue
		}
		if elected == 0 {
			elected = time.Since(began)
		}
		if r, err := send(a.addr(), c.token, "GET", probe, nil); err == nil && r.status == http.StatusOK {
			by = a
			break
		}
	}
	served := time.Since(began)
	orphans := old.killPlugins(c.t)
	c.t.Logf("kill -9 of active %s: %s active after %v, first plugin read %v; %d orphaned plugin process(es) of %s killed by PID",
		old.id, by.id, elected.Round(time.Millisecond), served.Round(time.Millisecond), orphans, old.id)
	return old
}

func TestCluster_FailoverUnderLoadLosesNoAcknowledgedWrite(t *testing.T) {
	c := startCluster(t, 3)
	const probe = "ref/secrets/probe"
	c.must(c.active(), http.StatusOK, "POST", probe, secretBody("k", "v"))

	load := startWriteLoad(c, 2, 2)
	defer func() {
		if !isClosed(load.stop) {
			load.finish()
		}
	}()
	time.Sleep(time.Second)
	first := c.failover(probe)

	// Back with its data: started, unsealed, caught up, a voter again.
	began := time.Now()
	if err := first.start(); err != nil {
		t.Fatal(err)
	}
	c.unseal(first)
	c.waitCaughtUp(first)
	c.waitVoters(3)
	t.Logf("%s restarted, unsealed and a caught-up voter again in %v", first.id, time.Since(began).Round(time.Millisecond))
	time.Sleep(500 * time.Millisecond)

	if second := c.failover(probe); second == first {
		t.Fatalf("%s was active again; the second kill must hit another node", first.id)
	}
	time.Sleep(time.Second)
	load.finish()
	load.verify(t)
	if len(load.plain) == 0 {
		t.Fatal("no write was acknowledged")
	}
}

// waitOtherActive waits until a node other than old is active.
func (c *cluster) waitOtherActive(old *node) *node {
	c.t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if a := c.activeNode(); a != nil && a != old {
			return a
		}
	}
	c.t.Fatalf("no node but %s became active within 30 s", old.id)
	return nil
}

// expectRunningVersion checks, on node n, the plugin version each mount runs.
func (c *cluster) expectRunningVersion(n *node, version string, mounts ...string) {
	c.t.Helper()
	for _, m := range mounts {
		if got := c.must(n, http.StatusOK, "GET", "sys/mounts/"+m, nil).data()["running_plugin_version"]; got != version {
			c.t.Fatalf("%s on %s runs %v, want %s", m, n.id, got, version)
		}
	}
}

func TestCluster_RollingUpgradeUnderLoadFailsNoRetriedRequest(t *testing.T) {
	c := startCluster(t, 3)
	active := c.active()
	active.srv.mustCLI(t, "secrets", "enable", "-path=ref-b", "-plugin-version="+oldVersion, pluginName)
	mounts := []string{"ref", "ref-b"}
	for _, m := range mounts {
		c.must(active, http.StatusOK, "POST", m+"/secrets/kept", secretBody("mount", m))
	}

	// A reader and a writer, each through a standby, on both mounts. Like any
	// client of a cluster they retry, once, a request that got a 5xx or no
	// answer. The writer keeps a cas chain per mount: a write sent again after
	// it had landed is refused naming the version it made, and a lost or
	// doubled write breaks the chain.
	standbys := c.standbys()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	retried := map[string]int{}
	var requests atomic.Int64
	var slowest time.Duration
	landed := 0
	do := func(n *node, method, path string, body interface{}) (r reply, err error) {
		began := time.Now()
		if r, err = send(n.addr(), c.token, method, path, body); err != nil || r.status >= 500 {
			mu.Lock()
			retried[strings.SplitN(path, "/", 2)[0]+": "+summary(r, err)]++
			mu.Unlock()
			time.Sleep(100 * time.Millisecond)
			r, err = send(n.addr(), c.token, method, path, body)
		}
		requests.Add(1)
		mu.Lock()
		slowest = max(slowest, time.Since(began))
		mu.Unlock()
		return r, err
	}
	fail := func(format string, args ...interface{}) {
		mu.Lock()
		failures = append(failures, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	versions := map[string]int{}
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := 0; !isClosed(stop); i++ {
			m := mounts[i%len(mounts)]
			r, err := do(standbys[0], "GET", m+"/secrets/kept", nil)
			if err != nil || r.status != http.StatusOK || r.data()["data"].(map[string]interface{})["mount"] != m {
				fail("read %s: %s %v", m, r, err)
			}
		}
	}()
	go func() {
		defer wg.Done()
		for i := 0; !isClosed(stop); i++ {
			m := mounts[i%len(mounts)]
			next := versions[m] + 1
			body := map[string]interface{}{"data": map[string]interface{}{"step": strconv.Itoa(next)}, "cas": versions[m]}
			r, err := do(standbys[1], "POST", m+"/secrets/chain", body)
			switch {
			case err == nil && r.status == http.StatusOK && r.data()["version"] == float64(next):
			case err == nil && r.status == http.StatusBadRequest && strings.Contains(r.raw, fmt.Sprintf("current version is %d", next)):
				// It landed, and was sent again: by the retry above, or by
				// Vault itself when the plugin process died under it.
				mu.Lock()
				landed++
				mu.Unlock()
			default:
				fail("write %s cas=%d: %s %v", m, next-1, r, err)
				return
			}
			versions[m] = next
		}
	}()
	defer func() {
		if !isClosed(stop) {
			close(stop)
			wg.Wait()
		}
	}()

	time.Sleep(300 * time.Millisecond)
	// The new binary goes onto every node first, beside the old one.
	for _, n := range c.nodes {
		n.install(t, newVersion)
	}
	active.srv.mustCLI(t, "plugin", "register", "-sha256="+pluginSHA[newVersion], "-version="+newVersion,
		"-command="+pluginCommand(newVersion), "secret", pluginName)
	for _, m := range mounts {
		active.srv.mustCLI(t, "secrets", "tune", "-plugin-version="+newVersion, m)
	}
	began := time.Now()
	active.srv.mustCLI(t, "plugin", "reload", "-type=secret", "-plugin="+pluginName, "-scope=global")
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		done := true
		for _, m := range mounts {
			done = done && c.must(active, http.StatusOK, "GET", "sys/mounts/"+m, nil).data()["running_plugin_version"] == newVersion
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("mounts still not on %s 15 s after the reload", newVersion)
		}
	}
	reloaded := time.Since(began)
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	// Vault 1.21 kills the process that mounts of one version share when it
	// reloads the first of them; the others fail until their own reload.
	t.Logf("upgrade under load: every mount on %s %v after the reload; %d requests, %d failed, slowest %v; "+
		"first attempts retried: %v; cas writes refused as already landed: %d", newVersion, reloaded.Round(time.Millisecond),
		requests.Load(), len(failures), slowest.Round(time.Millisecond), retried, landed)
	if len(failures) > 0 || requests.Load() == 0 {
		t.Fatalf("failed requests: %v", failures)
	}
	for _, m := range mounts {
		r := c.must(active, http.StatusOK, "GET", m+"/secrets/chain", nil)
		if r.data()["version"] != float64(versions[m]) || r.data()["data"].(map[string]interface{})["step"] != strconv.Itoa(versions[m]) {
			t.Fatalf("%s's cas chain: %d writes acknowledged, reads %s", m, versions[m], r)
		}
	}

	// A new active node builds every mount afresh, from its own plugin directory.
	active.srv.mustCLI(t, "operator", "step-down")
	next := c.waitOtherActive(active)
	c.expectRunningVersion(next, newVersion, mounts...)
	for _, m := range mounts {
		c.must(next, http.StatusOK, "POST", m+"/secrets/after-step-down", secretBody("k", "v"))
	}
	for _, args := range processesUnder(next.pluginDir) {
		if !strings.HasSuffix(args, pluginCommand(newVersion)) {
			t.Errorf("%s runs %s after the step-down", next.id, args)
		}
	}
	t.Logf("after a step-down %s is active and runs %s for every mount", next.id, newVersion)
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestCluster_SnapshotRestoreBringsBackTheSnapshotsState(t *testing.T) {
	c := startCluster(t, 3)
	a := c.active()
	for i := 1; i <= 3; i++ {
		c.must(a, http.StatusOK, "POST", "ref/secrets/snap/a", secretBody("n", strconv.Itoa(i)))
	}
	c.must(a, http.StatusOK, "POST", "ref/secrets/snap/c", secretBody("k", "kept"))
	c.must(a, http.StatusNoContent, "POST", "ref/config", map[string]interface{}{"max_secret_bytes": 4096})
	snapshot := filepath.Join(t.TempDir(), "raft.snap")
	a.srv.mustCLI(t, "operator", "raft", "snapshot", "save", snapshot)

	// After the snapshot: a moves on to version 5, b appears, c goes, and
	// writes require cas. Each is read back, so any cache holds it.
	for i := 4; i <= 5; i++ {
		c.must(a, http.StatusOK, "POST", "ref/secrets/snap/a", secretBody("n", strconv.Itoa(i)))
	}
	c.must(a, http.StatusOK, "POST", "ref/secrets/snap/b", secretBody("k", "after"))
	c.must(a, http.StatusNoContent, "DELETE", "ref/secrets/snap/c", nil)
	c.must(a, http.StatusNoContent, "POST", "ref/config", map[string]interface{}{"cas_required": true, "max_secret_bytes": 8192})
	if v := c.must(a, http.StatusOK, "GET", "ref/secrets/snap/a", nil).data()["version"]; v != float64(5) {
		t.Fatalf("before the restore a is at version %v, want 5", v)
	}
	c.must(a, http.StatusOK, "GET", "ref/config", nil)

	// A reader through a standby measures how long requests wait.
	reader := c.standbys()[0]
	stop := make(chan struct{})
	var slowest time.Duration
	var failed []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		for !isClosed(stop) {
			began := time.Now()
			r, err := send(reader.addr(), c.token, "GET", "ref/secrets/snap/a", nil)
			slowest = max(slowest, time.Since(began))
			if err != nil || r.status != http.StatusOK {
				failed = append(failed, fmt.Sprintf("%s %v", r, err))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	before := processesUnder(a.pluginDir)
	began := time.Now()
	a.srv.mustCLI(t, "operator", "raft", "snapshot", "restore", snapshot)
	restored := time.Since(began)
	// The reader sees the snapshot's version once the mount is back.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		r, err := send(a.addr(), c.token, "GET", "ref/secrets/snap/a", nil)
		if err == nil && r.status == http.StatusOK && r.data()["version"] == float64(3) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a still reads %s %v 30 s after the restore", r, err)
		}
	}
	close(stop)
	<-done
	replaced := true
	for pid := range processesUnder(a.pluginDir) {
		_, old := before[pid]
		replaced = replaced && !old
	}
	t.Logf("snapshot restore: the CLI returned after %v; the slowest read meanwhile took %v; %d reads failed %v; new plugin process: %v",
		restored.Round(time.Millisecond), slowest.Round(time.Millisecond), len(failed), failed, replaced)

	a = c.active()
	for _, n := range c.nodes {
		r := c.must(n, http.StatusOK, "GET", "ref/secrets/snap/a", nil)
		if r.data()["version"] != float64(3) || r.data()["data"].(map[string]interface{})["n"] != "3" {
			t.Fatalf("after the restore a reads %s via %s, want the snapshot's version 3", r, n.id)
		}
	}
	c.must(a, http.StatusNotFound, "GET", "ref/secrets/snap/b", nil)
	c.must(a, http.StatusOK, "GET", "ref/secrets/snap/c", nil)
	if keys := c.must(a, http.StatusOK, "LIST", "ref/secrets/snap/", nil).data()["keys"]; fmt.Sprint(keys) != "[a c]" {
		t.Fatalf("after the restore snap/ lists %v", keys)
	}
	if cfg := c.must(a, http.StatusOK, "GET", "ref/config", nil).data(); cfg["cas_required"] != false || cfg["max_secret_bytes"] != float64(4096) {
		t.Fatalf("after the restore config is %v, want the snapshot's", cfg)
	}
	// Versions continue from the snapshot's, not from what came after it:
	// a write without cas is allowed again, and a cas on 3 is what succeeds.
	if v := c.must(a, http.StatusOK, "POST", "ref/secrets/snap/a", secretBody("n", "4")).data()["version"]; v != float64(4) {
		t.Fatalf("the first write after the restore made version %v, want 4", v)
	}
	c.must(a, http.StatusBadRequest, "POST", "ref/secrets/snap/a", map[string]interface{}{"data": map[string]interface{}{"n": "x"}, "cas": 5})
	if v := c.must(c.standbys()[0], http.StatusOK, "POST", "ref/secrets/snap/a",
		map[string]interface{}{"data": map[string]interface{}{"n": "5"}, "cas": 4}).data()["version"]; v != float64(5) {
		t.Fatalf("cas=4 after the restore made version %v, want 5", v)
	}
	c.must(a, http.StatusOK, "POST", "ref/secrets/snap/b", map[string]interface{}{"data": map[string]interface{}{"k": "new"}, "cas": 0})
}

// verifyNode runs the operator's pre-flight check for node n.
func verifyNode(c *cluster, n *node) (string, error) {
	cmd := exec.Command("make", "-s", "-C", "..", "verify-node", "PLUGIN_DIR="+n.pluginDir, "VERSION="+oldVersion, "VAULT="+vaultBinary)
	cmd.Env = append(os.Environ(), "VAULT_ADDR="+n.addr(), "VAULT_TOKEN="+c.token)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// makeActive steps active nodes down until target is the active one.
func (c *cluster) makeActive(target *node) {
	c.t.Helper()
	for i := 0; i < 5; i++ {
		a := c.active()
		if a == target {
			return
		}
		a.srv.mustCLI(c.t, "operator", "step-down")
		c.waitOtherActive(a)
	}
	c.t.Fatalf("%s did not become active after 5 step-downs", target.id)
}

func TestCluster_NodeWithoutTheBinaryIsCaughtByThePreflightCheck(t *testing.T) {
	c := startCluster(t, 3)
	good, spare, bad := c.nodes[0], c.nodes[1], c.nodes[2]
	if err := os.Remove(bad.binary(oldVersion)); err != nil {
		t.Fatal(err)
	}
	c.must(good, http.StatusOK, "POST", "ref/secrets/app", secretBody("password", "s3cr3t"))

	// The pre-flight check, run on every node, catches it before any failover.
	for _, n := range []*node{good, spare} {
		if out, err := verifyNode(c, n); err != nil || !strings.Contains(out, "OK") {
			t.Fatalf("verify-node on %s: %v\n%s", n.id, err, out)
		}
	}
	out, err := verifyNode(c, bad)
	if err == nil || !strings.Contains(out, "missing") || !strings.Contains(out, pluginSHA[oldVersion]) {
		t.Fatalf("verify-node on %s, which lacks the binary: %v\n%s", bad.id, err, out)
	}
	t.Logf("verify-node on %s:\n%s", bad.id, out)
	// A different binary under the registered name is caught as well.
	wrong := spare.binary(oldVersion)
	if err := os.Rename(spare.binary(oldVersion), wrong+".orig"); err != nil {
		t.Fatal(err)
	}
	spare.install(t, newVersion)
	if err := os.Rename(spare.binary(newVersion), wrong); err != nil {
		t.Fatal(err)
	}
	if out, err := verifyNode(c, spare); err == nil || !strings.Contains(out, pluginSHA[newVersion]) {
		t.Fatalf("verify-node on %s, whose binary differs: %v\n%s", spare.id, err, out)
	}
	if err := os.Rename(wrong+".orig", wrong); err != nil {
		t.Fatal(err)
	}

	// Ignored, the check's finding becomes an outage of the plugin alone.
	spare.stop(t)
	c.makeActive(bad)
	health := c.must(bad, http.StatusOK, "GET", "sys/health", nil)
	r := c.must(bad, http.StatusNotFound, "GET", "ref/secrets/app", nil)
	if !strings.Contains(r.raw, "backend is nil") {
		t.Fatalf("a read on %s: %s", bad.id, r)
	}
	cli, err := bad.srv.cli("read", "ref/secrets/app")
	if err == nil || !strings.Contains(cli, "No value found at ref/secrets/app") {
		t.Fatalf("vault read on %s: %v\n%s", bad.id, err, cli)
	}
	write, _ := send(bad.addr(), c.token, "POST", "ref/secrets/app", secretBody("password", "lost?"))
	logged := regexp.MustCompile(`.*skipping plugin-based mount entry.*`).FindString(bad.srv.logText())
	if !strings.Contains(logged, "path=ref/") {
		t.Fatalf("%s does not log the skipped mount", bad.id)
	}
	t.Logf("%s active without the binary: sys/health %d (sealed %v, standby %v); read %s; vault read prints %q; write %s; log: %s",
		bad.id, health.status, health.body["sealed"], health.body["standby"], r, strings.TrimSpace(cli), write, logged)

	// Recovery: the binary back, then a step-down.
	bad.install(t, oldVersion)
	if out, err := verifyNode(c, bad); err != nil {
		t.Fatalf("verify-node on %s with the binary back: %v\n%s", bad.id, err, out)
	}
	// A reload alone is not enough: reads come back, but Vault 1.21 leaves the
	// mount unable to write until the node steps down (a Vault bug).
	bad.srv.mustCLI(t, "plugin", "reload", "-type=secret", "-plugin="+pluginName)
	c.must(bad, http.StatusOK, "GET", "ref/secrets/app", nil)
	r = c.must(bad, http.StatusInternalServerError, "POST", "ref/secrets/app", secretBody("password", "rotated"))
	if !strings.Contains(r.raw, "cannot write to storage during setup") {
		t.Fatalf("a write after the reload: %s", r)
	}
	t.Logf("binary back and plugin reload: reads work, a write gets %s", r)
	bad.srv.mustCLI(t, "operator", "step-down")
	c.waitOtherActive(bad)
	r = c.must(bad, http.StatusOK, "GET", "ref/secrets/app", nil)
	if r.data()["data"].(map[string]interface{})["password"] != "s3cr3t" {
		t.Fatalf("after recovery: %s", r)
	}
	c.must(bad, http.StatusOK, "POST", "ref/secrets/app", map[string]interface{}{"data": map[string]interface{}{"password": "rotated"}, "cas": 1})
	// And the repaired node serves as the active node too.
	c.makeActive(bad)
	r = c.must(bad, http.StatusOK, "GET", "ref/secrets/app", nil)
	if r.data()["version"] != float64(2) {
		t.Fatalf("on %s active again: %s", bad.id, r)
	}
	c.must(bad, http.StatusOK, "POST", "ref/secrets/app", map[string]interface{}{"data": map[string]interface{}{"password": "again"}, "cas": 2})
}

// TestCluster_ScriptServesThePluginAndStopsOnCtrlC runs what `make cluster`
// runs, as a new user would: wait for its instructions, paste them into a
// shell, press Ctrl-C.
func TestCluster_ScriptServesThePluginAndStopsOnCtrlC(t *testing.T) {
	binary := filepath.Join(t.TempDir(), pluginName)
	if out, err := exec.Command("make", "-s", "-C", "..", "build", "BIN="+binary).CombinedOutput(); err != nil {
		t.Fatalf("make build: %v\n%s", err, out)
	}
	var addrs, listens []string
	for i := 0; i < 3; i++ {
		port := freePortPair(t)
		addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", port))
		listens = append(listens, fmt.Sprintf("127.0.0.1:%d", port), fmt.Sprintf("127.0.0.1:%d", port+1))
	}
	cmd := exec.Command("./cluster.sh", binary, oldVersion)
	cmd.Env = append(os.Environ(), "CLUSTER_ADDRS="+strings.Join(addrs, " "), "VAULT_BINARY="+vaultBinary)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	var work string
	t.Cleanup(func() {
		// As Ctrl-C does, so the script stops its servers; by force if it hangs.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if work != "" {
			for pid := range processesUnder(work) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			os.RemoveAll(work)
		}
	})
	// A script that hangs is stopped, which ends its output.
	hung := time.AfterFunc(90*time.Second, func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	var printed strings.Builder
	lines := bufio.NewScanner(stdout)
	for lines.Scan() && !strings.Contains(lines.Text(), "Ctrl-C") {
		printed.WriteString(lines.Text() + "\n")
	}
	if !hung.Stop() {
		t.Fatalf("make cluster printed no instructions within 90 s:\n%s", printed.String())
	}
	if m := regexp.MustCompile(`Files and logs: (\S+)\. `).FindStringSubmatch(printed.String()); m != nil {
		work = m[1]
	}
	for _, want := range []string{"export VAULT_ADDR=http://" + addrs[0] + " VAULT_TOKEN=", "http://" + addrs[1], "http://" + addrs[2],
		"vault operator raft list-peers", "vault write ref/secrets/app", "vault read ref/secrets/app", "vault operator step-down", "make verify-node"} {
		if !strings.Contains(printed.String(), want) || work == "" {
			t.Fatalf("make cluster does not print %q or where its files are:\n%s", want, printed.String())
		}
	}

	// What to paste is every indented command line.
	var pasted []string
	for _, line := range strings.Split(printed.String(), "\n") {
		if regexp.MustCompile(`^  (export |alias |vault |VAULT_ADDR=|make )`).MatchString(line) {
			pasted = append(pasted, strings.TrimSpace(line))
		}
	}
	shell := exec.Command("bash", "-c", "shopt -s expand_aliases\nset -e\n"+strings.Join(pasted, "\n"))
	shell.Dir = ".."
	out, err := shell.CombinedOutput()
	if err != nil {
		t.Fatalf("pasting\n%s\nfails: %v\n%s", strings.Join(pasted, "\n"), err, out)
	}
	leaders := regexp.MustCompile(`(?m)^(node\d)\s+\S+\s+leader\s+true$`).FindAllStringSubmatch(string(out), -1)
	voters := regexp.MustCompile(`(?m)^node\d\s+\S+\s+(leader|follower)\s+true$`).FindAllString(string(out), -1)
	if len(leaders) != 2 || leaders[0][1] == leaders[1][1] || len(voters) != 6 ||
		strings.Count(string(out), "password:s3cr3t") != 2 || !strings.Contains(string(out), "OK: ") {
		t.Fatalf("pasting\n%s\nprints\n%s", strings.Join(pasted, "\n"), out)
	}
	t.Logf("pasted %d lines: 3 voters, a write via node2, reads via node3 before and after the step-down (%s to %s), verify-node OK",
		len(pasted), leaders[0][1], leaders[1][1])

	// Ctrl-C in a terminal signals the whole foreground process group.
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		t.Fatal("make cluster did not stop within 30 s of Ctrl-C")
	}
	t.Logf("stopped %v after Ctrl-C", time.Since(began).Round(time.Millisecond))
	for _, listen := range listens {
		if conn, err := net.DialTimeout("tcp", listen, time.Second); err == nil {
			conn.Close()
			t.Errorf("%s still listens after Ctrl-C", listen)
		}
	}
	if left := processesWith(work); len(left) > 0 {
		t.Errorf("processes left after Ctrl-C: %v", left)
	}
	if _, err := os.Stat(work); !os.IsNotExist(err) {
		t.Errorf("%s is still there after Ctrl-C", work)
	}
}

// freePortPair finds a free port whose next port is free too: a node's API
// port and, by Vault's convention, its cluster port.
func freePortPair(t *testing.T) int {
	t.Helper()
	for i := 0; i < 50; i++ {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port+1)); err == nil {
			l.Close()
			return port
		}
	}
	t.Fatal("no two free ports in a row")
	return 0
}

// processesWith lists the command lines of the processes that mention s.
func processesWith(s string) []string {
	out, _ := exec.Command("ps", "-e", "-o", "args=").Output()
	var found []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, s) {
			found = append(found, strings.TrimSpace(line))
		}
	}
	return found
}
