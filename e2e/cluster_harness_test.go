package e2e

import (
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The cluster's life: a Vault cluster of raft nodes on loopback, started,
// stopped, killed, restarted and unsealed as an operator would, and asked
// which node is active and whether the others have caught up.

// cluster is a Vault cluster of raft nodes on loopback. Each node has its own
// storage, ports and plugin directory, as if it ran on a machine of its own.
type cluster struct {
	t *testing.T
	// standbyReads: its standbys answer reads themselves (OpenBao's default).
	standbyReads bool
	nodes        []*node
	unsealKey    string
	token        string
	stopped      bool
}

// node is one member of a cluster. srv is its current Vault process; a node
// that was killed and started again gets a new one.
type node struct {
	id        string
	dir       string
	pluginDir string
	config    string
	// configArgs are node-config.sh's arguments for this node.
	configArgs []string
	listen     string
	token      string
	srv        *server
	down       bool
	paused     bool // SIGSTOP: it takes requests but answers none
	logs       []*lockedBuffer
	// plugins are the node's plugin processes when its Vault was killed:
	// orphans now, which this process may have to reap.
	plugins map[int]string
}

func (n *node) addr() string      { return "http://" + n.listen }
func (n *node) rootToken() string { return n.token }
func (n *node) String() string    { return n.id }

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
	return newCluster(t, size, false, false)
}

// shared is the cluster the tests that leave one as they found it share, in
// the order they run: one cluster start for several tests.
var shared *cluster

// sharedCluster returns the shared 3-node cluster, serving, with every node a
// voter; a test that fails stops it, and the next one starts another.
func sharedCluster(t *testing.T) *cluster {
	t.Helper()
	if shared == nil || shared.stopped {
		shared = newCluster(t, 3, true, false)
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
// the test fails. standbyReads leaves OpenBao's standbys answering reads
// themselves, its default; otherwise they forward them, as Vault's do.
func newCluster(t *testing.T, size int, keep, standbyReads bool) *cluster {
	t.Helper()
	began := time.Now()
	if err := becomeSubreaper(); err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, standbyReads: standbyReads && tested.standbyReads}
	t.Cleanup(func() {
		if !keep || t.Failed() {
			c.stopAll()
		}
	})
	c.nodes = configureNodes(t, size, standbyReads)
	c.inParallel(c.nodes, (*node).start)
	c.initialise()
	// Unsealing a node that retry_join pointed at the leader completes its join.
	c.inParallel(c.nodes[1:], c.unsealNode)
	c.waitVoters(size)
	c.registerAndEnable()
	t.Logf("cluster of %d nodes up, plugin enabled at %s/: %v", size, mount, time.Since(began).Round(time.Millisecond))
	return c
}

// configureNodes gives each of size nodes a folder, ports of its own and a
// server config that lists the others to join, as an operator's tooling
// would, and installs oldVersion's binary on each.
func configureNodes(t *testing.T, size int, standbyReads bool) []*node {
	t.Helper()
	// Vault resolves symlinks in plugin_directory (macOS's temp dir is one); the
	// plugin processes' command lines then start with the resolved path.
	dir, err := os.MkdirTemp("", "cluster-")
	if err == nil {
		dir, err = filepath.EvalSymlinks(dir)
	}
	if err != nil {
		t.Fatal(err)
	}
	ports, err := freePorts(2 * size)
	if err != nil {
		t.Fatal(err)
	}
	apiPorts, clusterPorts := ports[:size], ports[size:]
	var nodes []*node
	for i := range size {
		n := &node{id: fmt.Sprintf("node%d", i+1), listen: fmt.Sprintf("127.0.0.1:%d", apiPorts[i])}
		var peers []string
		for j, port := range apiPorts {
			if j != i {
				peers = append(peers, fmt.Sprintf("127.0.0.1:%d", port))
			}
		}
		n.configure(t, filepath.Join(dir, n.id), fmt.Sprintf("127.0.0.1:%d", clusterPorts[i]), peers, standbyReads)
		nodes = append(nodes, n)
	}
	return nodes
}

// configure writes the node's folders and its server config (node-config.sh,
// the config the README gives operators), and installs oldVersion's binary.
func (n *node) configure(t *testing.T, dir, clusterListen string, peers []string, standbyReads bool) {
	t.Helper()
	n.dir = dir
	n.pluginDir = filepath.Join(dir, "plugins")
	n.config = filepath.Join(dir, "server.hcl")
	if err := os.MkdirAll(filepath.Join(dir, "raft"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(n.pluginDir, 0o755); err != nil {
		t.Fatal(err)
	}
	n.configArgs = append([]string{dir, n.id, n.listen, clusterListen}, peers...)
	n.writeConfig(t, fmt.Sprintf("DISABLE_STANDBY_READS=%v", tested.standbyReads && !standbyReads))
	n.install(t, oldVersion)
}

// writeConfig writes the node's server config with node-config.sh, env
// added to what the script reads; the node reads it when it next starts.
func (n *node) writeConfig(t *testing.T, env ...string) {
	t.Helper()
	cmd := exec.Command("./node-config.sh", n.configArgs...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	config := string(out)
	if err != nil {
		t.Fatalf("node-config.sh: %v\n%s", err, config)
	}
	if err := os.WriteFile(n.config, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
}

// inParallel runs do on each of nodes at once, as an operator's tooling does
// on every machine, and fails the test with the first error once all have
// returned: do runs on goroutines of its own, so it must not fail the test.
func (c *cluster) inParallel(nodes []*node, do func(*node) error) {
	c.t.Helper()
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = do(n) }()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			c.t.Fatal(err)
		}
	}
}

// initialise runs vault operator init through the first node, which keeps
// the one key share and the root token, and unseals it: it becomes the
// active node, which the others join.
func (c *cluster) initialise() {
	c.t.Helper()
	first := c.nodes[0]
	r := must(c.t, first, http.StatusOK, "PUT", "sys/init", map[string]interface{}{"secret_shares": 1, "secret_threshold": 1})
	c.unsealKey = r.body["keys"].([]interface{})[0].(string)
	c.token = r.body["root_token"].(string)
	for _, n := range c.nodes {
		n.setToken(c.token)
	}
	c.unseal(first)
	if a := c.active(); a != first {
		c.t.Fatalf("%s became active, want %s, the node initialised", a.id, first.id)
	}
	// Autopilot makes a joining node a voter once it has been healthy this
	// long; the default 10 s guards against flapping machines, not needed here.
	must(c.t, first, http.StatusNoContent, "POST", "sys/storage/raft/autopilot/configuration",
		map[string]interface{}{"server_stabilization_time": "1s"})
}

// registerAndEnable registers the plugin once, for the whole cluster, and
// mounts it, as the README tells an operator to.
func (c *cluster) registerAndEnable() {
	c.t.Helper()
	first := c.nodes[0]
	first.srv.mustCLI(c.t, "plugin", "register", "-sha256="+pluginSHA[oldVersion], "-version="+oldVersion,
		"-command="+pluginCommand(oldVersion), "secret", pluginName)
	first.srv.mustCLI(c.t, "secrets", "enable", "-path="+mount, "-plugin-version="+oldVersion, pluginName)
}

// setToken gives the node's CLI the cluster's root token, also once the
// node's Vault is started again.
func (n *node) setToken(token string) {
	n.token = token
	if n.srv != nil {
		n.srv.token = token
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
// restart kills them (stopAll does if a test fails first).
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
	n.mustKillPluginProcesses(t)
}

// becomeSubreaper, where the system has one, makes orphans of the processes
// this test process starts its own children.
var becomeSubreaper = func() error { return nil }

// mustKillPluginProcesses is killPluginProcesses that fails the test, and
// lets it go on to its checks, if a plugin process survives.
func (n *node) mustKillPluginProcesses(t testing.TB) int {
	t.Helper()
	killed, err := n.killPluginProcesses()
	if err != nil {
		t.Error(err)
	}
	return killed
}

// killPluginProcesses kills every process started from the node's plugin
// directory, whatever its parent now is, reaps those this process adopted,
// and waits until they are gone. It returns how many it killed.
func (n *node) killPluginProcesses() (int, error) {
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
	_, err := n.killPluginProcesses()
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
// caught-up voter again. The plugin processes its old Vault left go first,
// as they would with the machine.
func (c *cluster) restart(n *node) {
	c.t.Helper()
	n.mustKillPluginProcesses(c.t)
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
	committed, _ := must(c.t, a, http.StatusOK, "GET", "sys/leader", nil).body["raft_committed_index"].(float64)
	waitFor(c.t, 30*time.Second, fmt.Sprintf("%s caught up with %s (committed index %v)", n.id, a.id, committed), func() (bool, string) {
		r, err := send(n.addr(), "", "GET", "sys/leader", nil)
		applied, _ := r.body["raft_applied_index"].(float64)
		return err == nil && r.body["leader_address"] == a.addr() && applied >= committed && committed > 0, fmt.Sprint(r, err)
	})
}
