package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// cluster is a Vault cluster of raft nodes on loopback. Each node has its own
// storage, ports and plugin directory, as if it ran on a machine of its own.
type cluster struct {
	t         *testing.T
	nodes     []*node
	unsealKey string
	token     string
	stopped   bool
}

// node is one member of a cluster. srv is its current Vault process; a node
// that was killed and started again gets a new one.
type node struct {
	id        string
	dir       string
	pluginDir string
	config    string
	listen    string
	token     string
	srv       *server
	down      bool
	paused    bool // SIGSTOP: it takes requests but answers none
	logs      []*lockedBuffer
	// plugins are the node's plugin processes when its Vault was killed.
	plugins map[int]string
}

func (n *node) addr() string { return "http://" + n.listen }

// binary is where the node keeps the plugin binary of version.
func (n *node) binary(version string) string {
	return filepath.Join(n.pluginDir, pluginCommand(version))
}

// install copies the plugin binary of version into the node's plugin
// directory, as an operator does on every machine before registering.
func (n *node) install(t *testing.T, version string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(pluginDir, pluginCommand(version)))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(n.binary(version), data, 0o755); err != nil {
		t.Fatal(err)
	}
}

// startCluster starts a cluster of size nodes, each holding the plugin binary
// of oldVersion, with the plugin registered once and enabled at mount. It is
// stopped when the test ends.
func startCluster(t *testing.T, size int) *cluster {
	t.Helper()
	return newCluster(t, size, false)
}

// shared is the cluster the tests that leave one as they found it share, in
// the order they run: one cluster start for several tests.
var shared *cluster

// sharedCluster returns the shared 3-node cluster, serving, with every node a
// voter; a test that fails stops it, and the next one starts another.
func sharedCluster(t *testing.T) *cluster {
	t.Helper()
	if shared == nil || shared.stopped {
		shared = newCluster(t, 3, true)
		return shared
	}
	shared.t = t
	t.Cleanup(func() {
		if t.Failed() {
			shared.stopAll()
		}
	})
	shared.waitServing()
	shared.waitVoters(len(shared.nodes))
	return shared
}

// stopShared stops the shared cluster, if it runs, after the last test.
func stopShared() {
	if shared != nil && !shared.stopped {
		for _, n := range shared.nodes {
			_ = n.stopNow()
		}
	}
}

// newCluster starts a cluster; keep leaves it running after the test unless
// the test fails.
func newCluster(t *testing.T, size int, keep bool) *cluster {
	t.Helper()
	began := time.Now()
	// Vault resolves symlinks in plugin_directory (macOS's temp dir is one); the
	// plugin processes' command lines then start with the resolved path.
	dir, err := os.MkdirTemp("", "cluster-")
	if err == nil {
		dir, err = filepath.EvalSymlinks(dir)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := becomeSubreaper(); err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t}
	t.Cleanup(func() {
		if !keep || t.Failed() {
			c.stopAll()
		}
	})

	apiPorts, clusterPorts := make([]int, size), make([]int, size)
	for i := 0; i < size; i++ {
		if apiPorts[i], err = freePort(); err != nil {
			t.Fatal(err)
		}
		if clusterPorts[i], err = freePort(); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < size; i++ {
		n := &node{id: fmt.Sprintf("node%d", i+1), listen: fmt.Sprintf("127.0.0.1:%d", apiPorts[i])}
		n.dir = filepath.Join(dir, n.id)
		n.pluginDir = filepath.Join(n.dir, "plugins")
		n.config = filepath.Join(n.dir, "server.hcl")
		if err := os.MkdirAll(filepath.Join(n.dir, "raft"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(n.pluginDir, 0o755); err != nil {
			t.Fatal(err)
		}
		args := []string{n.dir, n.id, n.listen, fmt.Sprintf("127.0.0.1:%d", clusterPorts[i])}
		for j := 0; j < size; j++ {
			if j != i {
				args = append(args, fmt.Sprintf("127.0.0.1:%d", apiPorts[j]))
			}
		}
		config, err := runCommand(time.Minute, "./node-config.sh", args...)
		if err != nil {
			t.Fatalf("node-config.sh: %v\n%s", err, config)
		}
		if err := os.WriteFile(n.config, []byte(config), 0o600); err != nil {
			t.Fatal(err)
		}
		n.install(t, oldVersion)
		c.nodes = append(c.nodes, n)
	}

	errs := make([]error, size)
	var wg sync.WaitGroup
	for i, n := range c.nodes {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = n.start() }()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}

	first := c.nodes[0]
	r := c.must(first, http.StatusOK, "PUT", "sys/init", map[string]interface{}{"secret_shares": 1, "secret_threshold": 1})
	c.unsealKey = r.body["keys"].([]interface{})[0].(string)
	c.token = r.body["root_token"].(string)
	for _, n := range c.nodes {
		n.setToken(c.token)
	}
	c.unseal(first)
	if a := c.active(); a != first {
		t.Fatalf("%s became active, want %s, the node initialised", a.id, first.id)
	}
	// Autopilot makes a joining node a voter once it has been healthy this
	// long; the default 10 s guards against flapping machines, not needed here.
	c.must(first, http.StatusNoContent, "POST", "sys/storage/raft/autopilot/configuration",
		map[string]interface{}{"server_stabilization_time": "1s"})
	// Unsealing a node that retry_join pointed at the leader completes its join.
	for i, n := range c.nodes[1:] {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = c.unsealNode(n) }()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	c.waitVoters(size)
	first.srv.mustCLI(t, "plugin", "register", "-sha256="+pluginSHA[oldVersion], "-version="+oldVersion,
		"-command="+pluginCommand(oldVersion), "secret", pluginName)
	first.srv.mustCLI(t, "secrets", "enable", "-path="+mount, "-plugin-version="+oldVersion, pluginName)
	t.Logf("cluster of %d nodes up, plugin enabled at %s/: %v", size, mount, time.Since(began).Round(time.Millisecond))
	return c
}

// setToken gives the node's CLI and API client the cluster's root token.
func (n *node) setToken(token string) {
	n.token = token
	if n.srv != nil {
		n.srv.token = token
		n.srv.client.SetToken(token)
	}
}

// start runs the node's Vault, sealed, in its own process group.
func (n *node) start() error {
	s, err := startServerAt(n.dir, n.listen, "-config="+n.config)
	if err != nil {
		return fmt.Errorf("%s: %w", n.id, err)
	}
	n.srv, n.down = s, false
	n.logs = append(n.logs, s.log)
	n.setToken(n.token)
	return nil
}

// kill is kill -9 of the node's Vault alone, as when its machine dies, and
// returns when it was killed. Its plugin processes outlive it, orphaned:
// killPlugins stops them (stopAll does if a test fails first).
func (n *node) kill(t *testing.T) time.Time {
	t.Helper()
	n.plugins = processesUnder(n.pluginDir)
	if err := syscall.Kill(n.srv.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill %s: %v", n.id, err)
	}
	killed := time.Now()
	<-n.srv.exited
	n.down = true
	return killed
}

// stop shuts the node's Vault down as a service manager does, with SIGTERM.
func (n *node) stop(t *testing.T) {
	t.Helper()
	n.plugins = processesUnder(n.pluginDir)
	n.srv.stop()
	n.down = true
	n.killPlugins(t)
}

// becomeSubreaper, where the system has one, makes orphans of the processes
// this test process starts its own children.
var becomeSubreaper = func() error { return nil }

// killPlugins kills every process started from the node's plugin directory,
// whatever its parent now is, and waits until they are gone; the test fails
// if one survives. It returns how many it killed.
func (n *node) killPlugins(t testing.TB) int {
	t.Helper()
	killed, err := n.killPluginsNow()
	if err != nil {
		t.Error(err)
	}
	return killed
}

func (n *node) killPluginsNow() (int, error) {
	pids := processesUnder(n.pluginDir)
	for pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	// Those seen before Vault died may have exited since, unreaped.
	unreaped := maps.Clone(pids)
	maps.Copy(unreaped, n.plugins)
	n.plugins = nil
	err := poll(5*time.Second, func() (bool, string) {
		for pid := range unreaped {
			// Reaps an orphan this process adopted; ECHILD for any other.
			if got, err := syscall.Wait4(pid, nil, syscall.WNOHANG, nil); got == pid || err != nil {
				delete(unreaped, pid)
			}
		}
		left := processesUnder(n.pluginDir)
		return len(unreaped) == 0 && len(left) == 0, fmt.Sprint(left)
	})
	if err != nil {
		return len(pids), fmt.Errorf("%s: plugin processes survive SIGKILL: %w", n.id, err)
	}
	return len(pids), nil
}

// processesUnder maps the PID of each live process whose command starts with
// dir to its command line.
func processesUnder(dir string) map[int]string {
	found := map[int]string{}
	for _, p := range processes() {
		if strings.HasPrefix(p.args, dir+string(filepath.Separator)) {
			found[p.pid] = p.args
		}
	}
	return found
}

// stopAll kills every node and every plugin process, also after a failed
// test; a failed test also gets the end of each node's log.
func (c *cluster) stopAll() {
	c.stopped = true
	for _, n := range c.nodes {
		if n.srv == nil {
			continue
		}
		if c.t.Failed() {
			saveLogs(c.t, n)
		}
		if err := n.stopNow(); err != nil {
			c.t.Error(err)
		}
	}
}

// stopNow kills the node's Vault, its process group and its plugins.
func (n *node) stopNow() error {
	if n.paused {
		_ = syscall.Kill(n.srv.cmd.Process.Pid, syscall.SIGCONT)
	}
	if !n.down {
		n.plugins = processesUnder(n.pluginDir)
		_ = syscall.Kill(n.srv.cmd.Process.Pid, syscall.SIGKILL)
		<-n.srv.exited
		n.down = true
	}
	_, err := n.killPluginsNow()
	_ = syscall.Kill(-n.srv.cmd.Process.Pid, syscall.SIGKILL)
	return err
}

// unseal unseals a node with the cluster's one key share and waits until it
// is active or a standby of the active node.
func (c *cluster) unseal(n *node) {
	c.t.Helper()
	if err := c.unsealNode(n); err != nil {
		c.t.Fatal(err)
	}
}

// unsealNode is unseal for any goroutine: it returns what went wrong.
func (c *cluster) unsealNode(n *node) error {
	// A joining node takes the key once retry_join (every 2 s) has fetched
	// the leader's challenge; until then it says it is not initialized.
	err := poll(60*time.Second, func() (bool, string) {
		r, err := send(n.addr(), "", "PUT", "sys/unseal", map[string]interface{}{"key": c.unsealKey})
		return err == nil && r.status == http.StatusOK, fmt.Sprint(r, err)
	})
	if err != nil {
		return fmt.Errorf("unseal %s: %w", n.id, err)
	}
	// 200: active; 429: an unsealed standby.
	if err := poll(60*time.Second, func() (bool, string) {
		r, err := sendWith(healthHTTP, n.addr(), "", "GET", "sys/health", nil)
		return err == nil && (r.status == http.StatusOK || r.status == http.StatusTooManyRequests), fmt.Sprint(r, err)
	}); err != nil {
		return fmt.Errorf("%s: sys/health after unseal: %w", n.id, err)
	}
	return nil
}

// healthHTTP asks sys/health with a short deadline: a paused or dying node
// must not hold up the search for the active one.
var healthHTTP = &http.Client{Timeout: 2 * time.Second}

// activeNode is the node whose sys/health says active, or nil while no live
// node, or more than one, says so.
func (c *cluster) activeNode() *node {
	var active []*node
	for _, n := range c.nodes {
		if n.down || n.paused {
			continue
		}
		if r, err := sendWith(healthHTTP, n.addr(), "", "GET", "sys/health", nil); err == nil && r.status == http.StatusOK {
			active = append(active, n)
		}
	}
	if len(active) != 1 {
		return nil
	}
	return active[0]
}

// active waits for an active node and returns it.
func (c *cluster) active() *node {
	c.t.Helper()
	var a *node
	waitFor(c.t, 60*time.Second, "an active node", func() (bool, string) {
		a = c.activeNode()
		return a != nil, "none, or more than one"
	})
	return a
}

// waitOtherActive waits until a node other than old is active.
func (c *cluster) waitOtherActive(old *node) *node {
	c.t.Helper()
	var a *node
	waitFor(c.t, 30*time.Second, "a node but "+old.id+" active", func() (bool, string) {
		a = c.activeNode()
		return a != nil && a != old, fmt.Sprint(a)
	})
	return a
}

// standbys lists the live nodes other than the active one.
func (c *cluster) standbys() []*node {
	c.t.Helper()
	a := c.active()
	var s []*node
	for _, n := range c.nodes {
		if n != a && !n.down {
			s = append(s, n)
		}
	}
	return s
}

// restart starts a node that was killed, unseals it and waits until it is a
// caught-up voter again.
func (c *cluster) restart(n *node) {
	c.t.Helper()
	n.killPlugins(c.t)
	if err := n.start(); err != nil {
		c.t.Fatal(err)
	}
	c.unseal(n)
	c.waitCaughtUp(n)
	c.waitVoters(len(c.nodes))
}

// waitStandby waits until n, resumed after a pause, knows it is a standby.
func (c *cluster) waitStandby(n *node) {
	c.t.Helper()
	waitFor(c.t, 30*time.Second, n.id+" says it is a standby", func() (bool, string) {
		r, err := sendWith(healthHTTP, n.addr(), "", "GET", "sys/health", nil)
		return err == nil && r.status == http.StatusTooManyRequests, fmt.Sprint(r, err)
	})
	c.waitCaughtUp(n)
}

// waitServing waits until the plugin serves a read through every node.
func (c *cluster) waitServing() {
	c.t.Helper()
	for _, n := range c.nodes {
		waitFor(c.t, 30*time.Second, "the plugin serves through "+n.id, func() (bool, string) {
			r, err := send(n.addr(), c.token, "GET", probePath, nil)
			errs, _ := r.body["errors"].([]interface{})
			return err == nil && r.status == http.StatusNotFound && len(errs) == 0, fmt.Sprint(r, err)
		})
	}
}

// waitVoters waits until the raft configuration holds want voters and
// autopilot calls the cluster healthy, so any one node may fail.
func (c *cluster) waitVoters(want int) {
	c.t.Helper()
	waitFor(c.t, 60*time.Second, fmt.Sprintf("%d healthy voters", want), func() (bool, string) {
		a := c.activeNode()
		if a == nil {
			return false, "no active node"
		}
		voters := 0
		r, err := send(a.addr(), c.token, "GET", "sys/storage/raft/configuration", nil)
		if err == nil && r.status == http.StatusOK {
			config, _ := r.data()["config"].(map[string]interface{})
			servers, _ := config["servers"].([]interface{})
			for _, s := range servers {
				if s.(map[string]interface{})["voter"] == true {
					voters++
				}
			}
		}
		state, err := send(a.addr(), c.token, "GET", "sys/storage/raft/autopilot/state", nil)
		return err == nil && voters == want && state.data()["healthy"] == true,
			fmt.Sprintf("%d voters; autopilot %s", voters, state.raw)
	})
}

// waitCaughtUp waits until node n follows the active node and has applied
// all the active node had committed: a restarted node then votes, and may be
// elected, like the others. (Autopilot may still call a node healthy that
// died seconds ago.)
func (c *cluster) waitCaughtUp(n *node) {
	c.t.Helper()
	a := c.active()
	committed, _ := c.must(a, http.StatusOK, "GET", "sys/leader", nil).body["raft_committed_index"].(float64)
	waitFor(c.t, 30*time.Second, fmt.Sprintf("%s caught up with %s (committed index %v)", n.id, a.id, committed), func() (bool, string) {
		r, err := send(n.addr(), "", "GET", "sys/leader", nil)
		applied, _ := r.body["raft_applied_index"].(float64)
		return err == nil && r.body["leader_address"] == a.addr() && applied >= committed && committed > 0, fmt.Sprint(r, err)
	})
}

// poll calls done every 50 ms until it says true or timeout passes; the
// error then holds done's last word. It is the one waiting loop of the
// tests, so every wait is bounded.
func poll(timeout time.Duration, done func() (bool, string)) error {
	var last string
	for deadline := time.Now().Add(timeout); ; time.Sleep(50 * time.Millisecond) {
		var ok bool
		if ok, last = done(); ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %v; last: %s", timeout, last)
		}
	}
}

// waitFor is poll that fails the test, naming what it waited for.
func waitFor(t testing.TB, timeout time.Duration, what string, done func() (bool, string)) {
	t.Helper()
	if err := poll(timeout, done); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// runCommand runs a program with a deadline and returns its combined output.
func runCommand(timeout time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}

// must sends a request to one node as root and fails the test unless the
// status is want.
func (c *cluster) must(n *node, want int, method, path string, body interface{}) reply {
	c.t.Helper()
	r, err := send(n.addr(), c.token, method, path, body)
	if err != nil || r.status != want {
		c.t.Fatalf("%s %s via %s: %s %v, want %d", method, path, n.id, r, err, want)
	}
	return r
}

// clusterHTTP bounds every request, so a test never waits on a node forever.
// It follows a standby's 307 to the active node, with the body: a
// bytes.Reader lets it send the body again.
var clusterHTTP = &http.Client{Timeout: 20 * time.Second}

// send is one API request as a client program makes it: an error is what the
// client sees when it gets no answer (connection refused, EOF). Safe to call
// from any goroutine.
func send(addr, token, method, path string, body interface{}) (reply, error) {
	return sendWith(clusterHTTP, addr, token, method, path, body)
}

func sendWith(client *http.Client, addr, token, method, path string, body interface{}) (reply, error) {
	return sendContext(context.Background(), client, addr, token, method, path, body)
}

// sendContext is send with a client and a context of the caller's.
func sendContext(ctx context.Context, client *http.Client, addr, token, method, path string, body interface{}) (reply, error) {
	var reader io.Reader
	if body != nil {
		encoded, err := json.Marshal(body)
		if err != nil {
			return reply{}, err
		}
		reader = bytes.NewReader(encoded)
	}
	req, err := http.NewRequestWithContext(ctx, method, addr+"/v1/"+path, reader)
	if err != nil {
		return reply{}, err
	}
	if token != "" {
		req.Header.Set("X-Vault-Token", token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return reply{raw: err.Error()}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{raw: err.Error()}, err
	}
	r := reply{status: resp.StatusCode, raw: string(raw)}
	if len(raw) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			return r, fmt.Errorf("decoding %q: %w", raw, err)
		}
	}
	return r, nil
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

// mustBeLinearizable checks a recorded history and fails the test, naming the
// operations the model refuses, unless it is linearizable and every answer
// was one the API or Vault documents.
func mustBeLinearizable(t *testing.T, rec *recorder, d disturbances) checked {
	t.Helper()
	res := checkHistory(rec.history(), d, rec.now(), failureDir, strings.ReplaceAll(t.Name(), "/", "-"))
	reportCheck(t, 0, res)
	if t.Failed() {
		t.FailNow()
	}
	return res
}

// failoverAnswers are what the README says clients see from a cluster whose
// active node died, instead of an answer from the plugin.
var failoverAnswers = regexp.MustCompile(`^(connection refused|connection refused after a redirect|EOF|connection reset|timeout|` +
	`500 local node not active but active cluster node not found|503 .*)$`)

// expectRunningVersion checks, on node n, the plugin version each mount runs.
func (c *cluster) expectRunningVersion(n *node, version string, mounts ...string) {
	c.t.Helper()
	for _, m := range mounts {
		if got := c.must(n, http.StatusOK, "GET", "sys/mounts/"+m, nil).data()["running_plugin_version"]; got != version {
			c.t.Fatalf("%s on %s runs %v, want %s", m, n.id, got, version)
		}
	}
}

// verifyNode runs the operator's pre-flight check for node n.
func verifyNode(c *cluster, n *node) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "make", "-s", "-C", "..", "verify-node", "PLUGIN_DIR="+n.pluginDir, "VERSION="+oldVersion, "VAULT="+vaultBinary)
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
	var found []string
	for _, p := range processes() {
		if strings.Contains(p.args, s) {
			found = append(found, p.args)
		}
	}
	return found
}

// prepareUpgrade mounts the plugin a second time, at oldVersion, for the
// test, puts newVersion's binary on every node beside the old one and
// registers it, as an upgrade begins, and returns both mounts.
func prepareUpgrade(t *testing.T, c *cluster) []string {
	t.Helper()
	for _, n := range c.nodes {
		n.install(t, newVersion)
	}
	c.active().srv.mustCLI(t, "plugin", "register", "-sha256="+pluginSHA[newVersion], "-version="+newVersion,
		"-command="+pluginCommand(newVersion), "secret", pluginName)
	second := mount + "-b"
	c.active().srv.mustCLI(t, "secrets", "enable", "-path="+second, "-plugin-version="+oldVersion, pluginName)
	t.Cleanup(func() { send(c.active().addr(), c.token, "DELETE", "sys/mounts/"+second, nil) })
	return []string{mount, second}
}

// reloadFailures bounds what may fail while a global reload moves two mounts
// to another version: requests in flight to the mount reloaded second,
// between the first reload and its own.
const (
	reloadFailures = 20
	reloadSpan     = time.Second
)

// upgradeUnderLoad runs clients on every mount, through each standby and
// spread, through change, which must move every mount to version, and a
// step-down after it. It checks their history for linearizability and
// asserts what failed: during change at most reloadFailures requests, all on
// one mount, within reloadSpan; during the step-down what a failover shows;
// nothing else.
func upgradeUnderLoad(t *testing.T, c *cluster, mounts []string, version string, change func(active *node)) {
	t.Helper()
	active := c.active()
	var paths []string
	for _, m := range mounts {
		p := m + "/secrets/upgrade"
		c.must(active, http.StatusNoContent, "DELETE", p, nil)
		paths = append(paths, p)
	}
	standbys := c.standbys()
	rec := newRecorder(c, paths)
	watch := startWatcher(c, rec.now)
	rec.start(time.Now().UnixNano(), clientSpec{pinned: standbys[0]}, clientSpec{pinned: standbys[1]}, clientSpec{}, clientSpec{})
	defer rec.stop()
	time.Sleep(500 * time.Millisecond)

	reload := fault{kind: faultReload, node: active, start: rec.now()}
	change(active)
	waitFor(t, 15*time.Second, "every mount on "+version, func() (bool, string) {
		for _, m := range mounts {
			if v := c.must(active, http.StatusOK, "GET", "sys/mounts/"+m, nil).data()["running_plugin_version"]; v != version {
				return false, fmt.Sprintf("%s runs %v", m, v)
			}
		}
		return true, ""
	})
	reload.end = rec.now()
	time.Sleep(time.Second)

	// A new active node builds every mount afresh, from its own plugin directory.
	stepDown := c.inject(faultStepDown, nil, rec.now)
	next := c.active()
	c.expectRunningVersion(next, version, mounts...)
	for _, args := range processesUnder(next.pluginDir) {
		if !strings.HasSuffix(args, pluginCommand(version)) {
			t.Errorf("%s runs %s after the step-down", next.id, args)
		}
	}
	time.Sleep(time.Second)
	rec.stop()
	res := mustBeLinearizable(t, rec, watch.disturbances([]fault{reload, stepDown}))

	var inReload []op
	var first, last time.Duration
	for _, o := range rec.history() {
		if o.out.Outcome != outAmbiguous && o.out.Outcome != outRefused {
			continue
		}
		switch {
		case o.call <= reload.end && o.ret >= reload.start && strings.HasPrefix(o.answer, "500 "):
			if len(inReload) == 0 {
				first = o.call
			}
			inReload = append(inReload, o)
			last = max(last, o.ret)
		case o.call <= stepDown.end && o.ret >= stepDown.start && failoverAnswers.MatchString(o.answer):
		default:
			t.Errorf("failed outside what the README allows: %s", o)
		}
	}
	mountsFailed := map[string]int{}
	for _, o := range inReload {
		mountsFailed[strings.SplitN(o.in.Path, "/", 2)[0]]++
	}
	if len(inReload) > reloadFailures || last-first > reloadSpan || len(mountsFailed) > 1 {
		t.Errorf("during the reload %d requests failed over %v, on mounts %v; want at most %d, within %v, on one mount: %v",
			len(inReload), (last - first).Round(time.Millisecond), mountsFailed, reloadFailures, reloadSpan, inReload)
	}
	t.Logf("to %s under load: %d operations, linearizable; the change took %v and failed %d requests over %v (%v); "+
		"then %s: %s, %v", version, res.operations, (reload.end - reload.start).Round(time.Millisecond), len(inReload),
		(last - first).Round(time.Millisecond), mountsFailed, stepDown, stepDown.detail, (stepDown.end - stepDown.start).Round(time.Millisecond))
}
