package e2e

import (
	"context"
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
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vault-reference/vault-plugin-secrets-reference/apicases"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/api/model"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/api/traffic"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/checks"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/cluster"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/faults"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/recorder"
)

// The cluster tests run the plugin where production runs it: a 3-node raft
// cluster, registered once, through failover, a snapshot restore, and a node
// that lacks the binary (upgrades are in upgrade_test.go); and they run what
// make cluster runs, as a new user does. The tests that take
// sharedCluster leave it as they found it.

func TestCluster_RegisteredOnceServesThroughEveryNode(t *testing.T) {
	c := cluster.Shared(t)
	active := c.Active()
	standbys := c.Standbys()
	path := mount + "/secrets/team/app"
	cluster.Must(t, active, http.StatusNoContent, "DELETE", path, nil)

	// A standby forwards a request to the active node over the cluster port,
	// or, when it cannot, redirects the client there with a 307.
	var redirected atomic.Value
	client := &http.Client{Timeout: 20 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		redirected.Store(req.URL.Host)
		return nil
	}}
	r, err := cluster.SendWith(client, standbys[0].Addr(), c.Token, "POST", path, apicases.KV("password", "via-standby"))
	if err != nil || r.Status != http.StatusOK || r.Data()["version"] != float64(1) {
		t.Fatalf("write via standby %s: %s %v, want 200 and version 1", standbys[0].ID, r, err)
	}
	how := "forwarded by the standby"
	if host, ok := redirected.Load().(string); ok {
		how = "redirected to " + host
	}
	t.Logf("write via standby %s: %s (active is %s)", standbys[0].ID, how, active.ID)

	r = cluster.Must(t, standbys[1], http.StatusOK, "GET", path, nil)
	if got := r.Data()["data"].(map[string]any)["password"]; got != "via-standby" || r.Data()["version"] != float64(1) {
		t.Fatalf("read via standby %s: %s, want password via-standby at version 1", standbys[1].ID, r)
	}
	if keys := cluster.Must(t, active, http.StatusOK, "LIST", mount+"/secrets/team/", nil).Data()["keys"]; fmt.Sprint(keys) != "[app]" {
		t.Fatalf("list via the active node: %v, want [app]", keys)
	}
	// Only the active node runs the plugin; a standby has no process to serve from.
	for _, n := range c.Nodes {
		running := len(cluster.ProcessesUnder(n.PluginDir))
		if (n == active) != (running > 0) {
			t.Errorf("%s (active: %v) runs %d plugin processes, want some on the active node alone", n.ID, n == active, running)
		}
	}
	t.Logf("median read: %v via the active node, %v via a standby",
		medianRead(t, active, path), medianRead(t, standbys[0], path))
}

// medianRead is the median time of 31 reads of path: what a read through
// at costs, with one slow read not counted.
func medianRead(t *testing.T, at cluster.Endpoint, path string) time.Duration {
	t.Helper()
	took := make([]time.Duration, 31)
	for i := range took {
		began := time.Now()
		cluster.Must(t, at, http.StatusOK, "GET", path, nil)
		took[i] = time.Since(began)
	}
	slices.Sort(took)
	return took[len(took)/2].Round(10 * time.Microsecond)
}

func TestCluster_FailoverUnderLoadIsLinearizable(t *testing.T) {
	c := cluster.Shared(t)
	paths := []string{mount + "/secrets/failover/a", mount + "/secrets/failover/b"}
	for _, p := range paths {
		cluster.Must(t, c.Active(), http.StatusNoContent, "DELETE", p, nil)
	}
	// Clients of a cluster spread over its nodes, and do not retry here:
	// every answer counts.
	tr := traffic.New(c, paths)
	rec := recorder.New(c, tr)
	watch := faults.Watch(c, rec.Now)
	rec.Start(time.Now().UnixNano(), recorder.Spec{Client: tr.Client()}, recorder.Spec{Client: tr.Client()},
		recorder.Spec{Client: tr.Client()}, recorder.Spec{Client: tr.Client()})
	defer rec.Stop()
	time.Sleep(time.Second)
	var injected []faults.Fault
	for i := 0; i < 2; i++ {
		f := faults.Inject(c, faults.KillActive, nil, rec.Now)
		injected = append(injected, f)
		t.Logf("%s: %s, recovered after %v", f, f.Detail, (f.End - f.Start).Round(time.Millisecond))
		time.Sleep(500 * time.Millisecond)
	}
	rec.Stop()
	d := watch.Disturbances(injected)
	res := mustBeLinearizable(t, rec, d)

	history := rec.History()
	for _, o := range checks.CheckProgress(history, d.Windows(), 0, rec.Now()).Failures {
		t.Errorf("no definite answer outside the failovers, want one: %s", o)
	}
	seen := map[string]int{}
	for _, o := range history {
		if failed(o) {
			seen[o.Answer]++
			if !failoverAnswers.MatchString(o.Answer) {
				t.Errorf("a client saw what the docs do not list, want one of %s: %s", failoverAnswers, o)
			}
		}
	}
	checks.MustRecoverWithin(t, history, injected)
	t.Logf("%d operations, linearizable; clients saw instead of an answer: %v", res.Operations, seen)
}

// failoverAnswers are what the README says clients see from a cluster whose
// active node died, instead of an answer from the plugin.
var failoverAnswers = regexp.MustCompile(`^(connection refused|connection refused after a redirect|EOF|connection reset|timeout|` +
	`500 local node not active but active cluster node not found|503 .*)$`)

// mustBeLinearizable checks a recorded history and fails the test, naming the
// operations the model refuses, unless it is linearizable and every answer
// was one the API or Vault documents: what follows would build on a history
// already wrong.
func mustBeLinearizable(t *testing.T, rec *recorder.Recorder, d faults.Disturbances) checks.Checked {
	t.Helper()
	res := checks.History(model.Secrets{}, rec.History(), d, rec.Now(), cluster.FailureDir, strings.ReplaceAll(t.Name(), "/", "-"))
	checks.MustBeLinearizable(t, 0, res)
	if t.Failed() {
		t.FailNow()
	}
	return res
}

// restoreWait bounds how long a request waits while a snapshot is restored.
const restoreWait = 10 * time.Second

func TestCluster_SnapshotRestoreBringsBackTheSnapshotsState(t *testing.T) {
	c := cluster.Shared(t)
	a := c.Active()
	snap := mount + "/secrets/snap/"
	t.Cleanup(func() { cluster.Send(c.Active().Addr(), c.Token, "DELETE", mount+"/config", nil) })
	writeBeforeSnapshot(t, a, snap)
	snapshot := filepath.Join(t.TempDir(), "raft.snap")
	a.Server.MustCLI(t, "operator", "raft", "snapshot", "save", snapshot)
	changeAfterSnapshot(t, a, snap)

	restoreUnderReads(t, c, a, snapshot, snap+"a")
	expectSnapshotState(t, c, snap)
	// Versions continue from the snapshot's, not from what came after it:
	// a write without cas is allowed again, and a cas on 3 is what succeeds.
	if v := cluster.Must(t, a, http.StatusOK, "POST", snap+"a", apicases.KV("n", "4")).Data()["version"]; v != float64(4) {
		t.Fatalf("the first write after the restore made version %v, want 4", v)
	}
	cluster.Must(t, a, http.StatusBadRequest, "POST", snap+"a", map[string]any{"data": map[string]any{"n": "x"}, "cas": 5})
	if v := cluster.Must(t, c.Standbys()[0], http.StatusOK, "POST", snap+"a",
		map[string]any{"data": map[string]any{"n": "5"}, "cas": 4}).Data()["version"]; v != float64(5) {
		t.Fatalf("cas=4 after the restore made version %v, want 5", v)
	}
	cluster.Must(t, a, http.StatusOK, "POST", snap+"b", map[string]any{"data": map[string]any{"k": "new"}, "cas": 0})
}

// writeBeforeSnapshot leaves, under snap, a at version 3 and c, and a config
// that allows writes without cas.
func writeBeforeSnapshot(t *testing.T, a *cluster.Node, snap string) {
	t.Helper()
	for _, name := range []string{"a", "b", "c"} {
		cluster.Must(t, a, http.StatusNoContent, "DELETE", snap+name, nil)
	}
	for i := 1; i <= 3; i++ {
		cluster.Must(t, a, http.StatusOK, "POST", snap+"a", apicases.KV("n", strconv.Itoa(i)))
	}
	cluster.Must(t, a, http.StatusOK, "POST", snap+"c", apicases.KV("k", "kept"))
	cluster.Must(t, a, http.StatusNoContent, "POST", mount+"/config", map[string]any{"max_secret_bytes": 4096})
}

// changeAfterSnapshot moves a on to version 5, writes b, deletes c, and makes
// writes require cas. Each is read back, so that any cache holds it.
func changeAfterSnapshot(t *testing.T, a *cluster.Node, snap string) {
	t.Helper()
	for i := 4; i <= 5; i++ {
		cluster.Must(t, a, http.StatusOK, "POST", snap+"a", apicases.KV("n", strconv.Itoa(i)))
	}
	cluster.Must(t, a, http.StatusOK, "POST", snap+"b", apicases.KV("k", "after"))
	cluster.Must(t, a, http.StatusNoContent, "DELETE", snap+"c", nil)
	cluster.Must(t, a, http.StatusNoContent, "POST", mount+"/config", map[string]any{"cas_required": true, "max_secret_bytes": 8192})
	if v := cluster.Must(t, a, http.StatusOK, "GET", snap+"a", nil).Data()["version"]; v != float64(5) {
		t.Fatalf("before the restore a is at version %v, want 5", v)
	}
	cluster.Must(t, a, http.StatusOK, "GET", mount+"/config", nil)
}

// restoreUnderReads restores snapshot through the active node a while
// readers of path through every node count what fails and how long requests
// wait, and fails the test unless none failed, none waited past restoreWait
// and a new plugin process serves. (A restore rewinds state by design: this
// history is not checked.)
func restoreUnderReads(t *testing.T, c *cluster.Cluster, a *cluster.Node, snapshot, path string) {
	t.Helper()
	tr := traffic.New(c, []string{path})
	rec := recorder.New(c, tr)
	rec.CallTimeout = 2 * restoreWait
	rec.Start(0, recorder.Spec{Pinned: c.Nodes[0], Client: tr.Reader()}, recorder.Spec{Pinned: c.Nodes[1], Client: tr.Reader()},
		recorder.Spec{Pinned: c.Nodes[2], Client: tr.Reader()})
	defer rec.Stop()
	before := cluster.ProcessesUnder(a.PluginDir)
	began := time.Now()
	a.Server.MustCLI(t, "operator", "raft", "snapshot", "restore", snapshot)
	restored := time.Since(began)
	cluster.WaitFor(t, 30*time.Second, "the snapshot's version of "+path, func() (bool, string) {
		r, err := cluster.Send(a.Addr(), c.Token, "GET", path, nil)
		return err == nil && r.Status == http.StatusOK && r.Data()["version"] == float64(3), fmt.Sprint(r, err)
	})
	time.Sleep(500 * time.Millisecond)
	rec.Stop()
	var slowest time.Duration
	var failed []recorder.Op
	for _, o := range rec.History() {
		slowest = max(slowest, o.Return-o.Call)
		if !o.Out.Acknowledged() {
			failed = append(failed, o)
		}
	}
	after := cluster.ProcessesUnder(a.PluginDir)
	replaced := len(before) > 0 && len(after) > 0
	for pid := range after {
		if _, old := before[pid]; old {
			replaced = false
		}
	}
	t.Logf("snapshot restore: the CLI returned after %v; %d reads, the slowest took %v; plugin processes before %v, after %v",
		restored.Round(time.Millisecond), len(rec.History()), slowest.Round(time.Millisecond), before, after)
	if len(failed) > 0 || slowest > restoreWait || !replaced {
		t.Fatalf("during the restore %d reads failed %v, the slowest took %v, a new plugin process: %v; "+
			"want none failed, none slower than %v, and a new process", len(failed), failed, slowest, replaced, restoreWait)
	}
}

// expectSnapshotState fails the test unless every node reads, under snap,
// what writeBeforeSnapshot left, and the config it wrote.
func expectSnapshotState(t *testing.T, c *cluster.Cluster, snap string) {
	t.Helper()
	for _, n := range c.Nodes {
		r := cluster.Must(t, n, http.StatusOK, "GET", snap+"a", nil)
		if r.Data()["version"] != float64(3) || r.Data()["data"].(map[string]any)["n"] != "3" {
			t.Fatalf("after the restore a reads %s via %s, want the snapshot's version 3", r, n.ID)
		}
		cluster.Must(t, n, http.StatusNotFound, "GET", snap+"b", nil)
		cluster.Must(t, n, http.StatusOK, "GET", snap+"c", nil)
		if keys := cluster.Must(t, n, http.StatusOK, "LIST", snap, nil).Data()["keys"]; fmt.Sprint(keys) != "[a c]" {
			t.Fatalf("after the restore snap/ lists %v via %s, want the snapshot's [a c]", keys, n.ID)
		}
		if cfg := cluster.Must(t, n, http.StatusOK, "GET", mount+"/config", nil).Data(); cfg["cas_required"] != false || cfg["max_secret_bytes"] != float64(4096) {
			t.Fatalf("after the restore config is %v via %s, want the snapshot's: cas_required false, max_secret_bytes 4096", cfg, n.ID)
		}
	}
}

func TestCluster_NodeWithoutTheBinaryIsCaughtByThePreflightCheck(t *testing.T) {
	c := cluster.Start(t, 3)
	good, spare, bad := c.Nodes[0], c.Nodes[1], c.Nodes[2]
	if err := os.Remove(bad.Binary(oldVersion)); err != nil {
		t.Fatal(err)
	}
	cluster.Must(t, good, http.StatusOK, "POST", mount+"/secrets/app", apicases.KV("password", "s3cr3t"))

	// The pre-flight check, run on every node, catches it before any failover.
	for _, n := range []*cluster.Node{good, spare} {
		if out, err := verifyNode(c, n); err != nil || !strings.Contains(out, "OK") {
			t.Fatalf("verify-node on %s: %v\n%s\nwant it to pass and print OK", n.ID, err, out)
		}
	}
	out, err := verifyNode(c, bad)
	if err == nil || !strings.Contains(out, "missing") || !strings.Contains(out, pluginSHA[oldVersion]) {
		t.Fatalf("verify-node on %s, which lacks the binary: %v\n%s\nwant it to fail, saying missing and naming SHA-256 %s", bad.ID, err, out, pluginSHA[oldVersion])
	}
	t.Logf("verify-node on %s:\n%s", bad.ID, out)
	preflightCatchesAnotherBinary(t, c, spare)

	// Ignored, the check's finding becomes an outage of the plugin alone.
	spare.Stop(t)
	c.MakeActive(bad)
	servesNothingWithoutTheBinary(t, c, bad)

	// Recovery: the binary back, then a step-down.
	bad.Install(t, oldVersion)
	if out, err := verifyNode(c, bad); err != nil {
		t.Fatalf("verify-node on %s with the binary back: %v\n%s\nwant it to pass", bad.ID, err, out)
	}
	recoverByStepDown(t, c, bad)
}

// verifyNode runs the operator's pre-flight check for node n.
func verifyNode(c *cluster.Cluster, n *cluster.Node) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "make", "-s", "-C", "..", "verify-node", "PLUGIN_DIR="+n.PluginDir, "VERSION="+oldVersion, "VAULT="+cluster.Binary)
	cmd.Env = append(os.Environ(), cluster.CLIEnv(n.Addr(), c.Token)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// preflightCatchesAnotherBinary puts newVersion's binary on n under
// oldVersion's name, fails the test unless verify-node names its SHA-256,
// and puts the right binary back.
func preflightCatchesAnotherBinary(t *testing.T, c *cluster.Cluster, n *cluster.Node) {
	t.Helper()
	wrong := n.Binary(oldVersion)
	if err := os.Rename(wrong, wrong+".orig"); err != nil {
		t.Fatal(err)
	}
	n.Install(t, newVersion)
	if err := os.Rename(n.Binary(newVersion), wrong); err != nil {
		t.Fatal(err)
	}
	if out, err := verifyNode(c, n); err == nil || !strings.Contains(out, pluginSHA[newVersion]) {
		t.Fatalf("verify-node on %s, whose binary differs: %v\n%s\nwant it to fail, naming SHA-256 %s", n.ID, err, out, pluginSHA[newVersion])
	}
	if err := os.Rename(wrong+".orig", wrong); err != nil {
		t.Fatal(err)
	}
}

// servesNothingWithoutTheBinary fails the test unless bad, active without
// the plugin's binary, stays healthy, answers the mount's paths with 404,
// and logs the mount it skipped.
func servesNothingWithoutTheBinary(t *testing.T, c *cluster.Cluster, bad *cluster.Node) {
	t.Helper()
	health := cluster.Must(t, bad, http.StatusOK, "GET", "sys/health", nil)
	r := cluster.Must(t, bad, http.StatusNotFound, "GET", mount+"/secrets/app", nil)
	if !strings.Contains(r.Raw, "backend is nil") {
		t.Fatalf("a read on %s: %s, want an error saying backend is nil", bad.ID, r)
	}
	cli, err := bad.Server.CLI("read", mount+"/secrets/app")
	if err == nil || !strings.Contains(cli, "No value found at "+mount+"/secrets/app") {
		t.Fatalf("vault read on %s: %v\n%s\nwant it to fail with No value found at %s/secrets/app", bad.ID, err, cli, mount)
	}
	write := cluster.Must(t, bad, http.StatusNotFound, "POST", mount+"/secrets/app", apicases.KV("password", "lost?"))
	logged := regexp.MustCompile(`.*skipping plugin-based mount entry.*`).FindString(bad.Server.LogText())
	if !strings.Contains(logged, "path="+mount+"/") {
		t.Fatalf("%s logs %q, want a skipped mount entry with path=%s/", bad.ID, logged, mount)
	}
	t.Logf("%s active without the binary: sys/health %d (sealed %v, standby %v); read %s; vault read prints %q; write %s; log: %s",
		bad.ID, health.Status, health.Body["sealed"], health.Body["standby"], r, strings.TrimSpace(cli), write, logged)
}

// recoverByStepDown shows, on bad with its binary back, that a reload is not
// enough and a step-down is: bad then serves the secret as a standby and
// again as the active node.
func recoverByStepDown(t *testing.T, c *cluster.Cluster, bad *cluster.Node) {
	t.Helper()
	bad.Server.MustCLI(t, cluster.Tested.ReloadArgs(pluginName, false)...)
	cluster.Must(t, bad, http.StatusOK, "GET", mount+"/secrets/app", nil)
	rotate := map[string]any{"data": map[string]any{"password": "rotated"}, "cas": 1}
	if cluster.Tested.ReloadRevivesWrites {
		cluster.Must(t, bad, http.StatusOK, "POST", mount+"/secrets/app", rotate)
	} else {
		// Reads come back, but Vault 1.21 leaves the mount unable to write
		// until the node steps down (a Vault bug).
		r := cluster.Must(t, bad, http.StatusInternalServerError, "POST", mount+"/secrets/app", rotate)
		if !strings.Contains(r.Raw, "cannot write to storage during setup") {
			t.Fatalf("a write after the reload: %s, want cannot write to storage during setup", r)
		}
		t.Logf("binary back and plugin reload: reads work, a write gets %s", r)
		bad.Server.MustCLI(t, "operator", "step-down")
		c.WaitOtherActive(bad)
		if r = cluster.Must(t, bad, http.StatusOK, "GET", mount+"/secrets/app", nil); r.Data()["data"].(map[string]any)["password"] != "s3cr3t" {
			t.Fatalf("after recovery: %s, want password s3cr3t", r)
		}
		cluster.Must(t, bad, http.StatusOK, "POST", mount+"/secrets/app", rotate)
	}
	// And the repaired node serves as the active node too.
	c.MakeActive(bad)
	r := cluster.Must(t, bad, http.StatusOK, "GET", mount+"/secrets/app", nil)
	if r.Data()["version"] != float64(2) {
		t.Fatalf("on %s active again: %s, want version 2", bad.ID, r)
	}
	cluster.Must(t, bad, http.StatusOK, "POST", mount+"/secrets/app", map[string]any{"data": map[string]any{"password": "again"}, "cas": 2})
}

// TestCluster_ScriptServesThePluginAndStopsOnCtrlC runs what `make cluster`
// runs, as a new user would: wait for its instructions, paste them into a
// shell, press Ctrl-C.
func TestCluster_ScriptServesThePluginAndStopsOnCtrlC(t *testing.T) {
	binary := filepath.Join(t.TempDir(), pluginName)
	if out, err := cluster.RunCommand(5*time.Minute, "make", "-s", "-C", "..", "build", "BIN="+binary); err != nil {
		t.Fatalf("make build: %v\n%s\nwant a binary", err, out)
	}
	var addrs, listens []string
	for _, port := range cluster.FreePortPairs(t, 3) {
		addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", port))
		listens = append(listens, fmt.Sprintf("127.0.0.1:%d", port), fmt.Sprintf("127.0.0.1:%d", port+1))
	}
	// Registered first, so it runs after the script has stopped: what is left
	// in the script's folder goes too.
	var work string
	t.Cleanup(func() {
		if work != "" {
			for pid := range cluster.ProcessesUnder(work) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			os.RemoveAll(work)
		}
	})
	s := startScript(t, []string{"CLUSTER_ADDRS=" + strings.Join(addrs, " "), "SERVER=" + cluster.Tested.Name, cluster.Tested.BinaryEnv + "=" + cluster.Binary,
		"PLUGIN=" + pluginName, "MOUNT=" + mount}, "cluster.sh", binary, oldVersion)
	printed := s.instructions(t, 90*time.Second)
	if m := regexp.MustCompile(`Files and logs: (\S+)\. `).FindStringSubmatch(printed); m != nil {
		work = m[1]
	}
	for _, want := range []string{"export VAULT_ADDR=http://" + addrs[0] + " VAULT_TOKEN=", "http://" + addrs[1], "http://" + addrs[2],
		"vault operator raft list-peers", "vault write " + mount + "/secrets/app", "vault read " + mount + "/secrets/app", "vault operator step-down", "make verify-node"} {
		if !strings.Contains(printed, want) || work == "" {
			t.Fatalf("make cluster prints:\n%s\nstderr:\n%s\nwant %q and where its files are", printed, s.stderr, want)
		}
	}
	// OpenBao registers the plugin from each node's config, Vault through its API.
	registered := "Success! Registered plugin: " + pluginName
	if cluster.Tested.DeclaresPlugins {
		registered = "by the plugin block in each node's server.hcl"
		sha, err := os.ReadFile(binary + ".sha256")
		if err != nil {
			t.Fatal(err)
		}
		for i := 1; i <= 3; i++ {
			config, err := os.ReadFile(filepath.Join(work, fmt.Sprintf("node%d", i), "server.hcl"))
			if want := fmt.Sprintf("sha256sum = %q", strings.TrimSpace(string(sha))); err != nil || !strings.Contains(string(config), want) {
				t.Fatalf("node%d's config: %v\n%s\nwant it to declare the plugin with %s", i, err, config, want)
			}
		}
	}
	if !strings.Contains(printed, registered) {
		t.Fatalf("make cluster prints:\n%s\nwant %q", printed, registered)
	}

	out, pasted := paste(t, printed)
	leaders := regexp.MustCompile(`(?m)^(node\d)\s+\S+\s+leader\s+true$`).FindAllStringSubmatch(out, -1)
	voters := regexp.MustCompile(`(?m)^node\d\s+\S+\s+(leader|follower)\s+true$`).FindAllString(out, -1)
	if len(leaders) != 2 || leaders[0][1] == leaders[1][1] || len(voters) != 6 ||
		strings.Count(out, "password:s3cr3t") != 2 || !strings.Contains(out, "OK: ") {
		t.Fatalf("pasting\n%s\nprints\n%s\nwant 3 voters twice, another leader after the step-down, password:s3cr3t twice and OK: from verify-node",
			strings.Join(pasted, "\n"), out)
	}
	t.Logf("pasted %d lines: 3 voters, a write via node2, reads via node3 before and after the step-down (%s to %s), verify-node OK",
		len(pasted), leaders[0][1], leaders[1][1])

	t.Logf("stopped %v after Ctrl-C", s.ctrlC(t, 30*time.Second).Round(time.Millisecond))
	nothingLeftBehind(t, listens, work)
}

// paste runs, in one shell, every command line the instructions indent, as
// a user pastes them, and returns what the shell printed and the lines.
func paste(t *testing.T, instructions string) (string, []string) {
	t.Helper()
	var pasted []string
	for _, line := range strings.Split(instructions, "\n") {
		if regexp.MustCompile(`^  (export |alias |vault |VAULT_ADDR=|make )`).MatchString(line) {
			pasted = append(pasted, strings.TrimSpace(line))
		}
	}
	lines := strings.Join(pasted, "\n")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	shell := exec.CommandContext(ctx, "bash", "-c", "shopt -s expand_aliases\nset -e\n"+lines)
	shell.Dir = ".."
	out, err := shell.CombinedOutput()
	if err != nil {
		t.Fatalf("pasting\n%s\nfails: %v\n%s\nwant every line to succeed", lines, err, out)
	}
	return string(out), pasted
}

// nothingLeftBehind fails the test for a port still listening, a process
// still running from the script's folder, or the folder itself.
func nothingLeftBehind(t *testing.T, listens []string, work string) {
	t.Helper()
	for _, listen := range listens {
		if conn, err := net.DialTimeout("tcp", listen, time.Second); err == nil {
			conn.Close()
			t.Errorf("%s still listens after Ctrl-C, want it closed", listen)
		}
	}
	if left := cluster.ProcessesWhere(func(p cluster.Process) bool { return strings.Contains(p.Args, work) }); len(left) > 0 {
		t.Errorf("processes left after Ctrl-C: %v, want none", left)
	}
	if _, err := os.Stat(work); !os.IsNotExist(err) {
		t.Errorf("%s is still there after Ctrl-C, want it removed", work)
	}
}

// failed tells whether o got no answer from the plugin: none at all, a
// 5xx, or a refusal before the plugin.
func failed(o recorder.Op) bool {
	out := o.Out.(model.Output).Outcome
	return out == model.Ambiguous || out == model.Refused
}
