package cluster

import (
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The cluster's life: a Vault cluster of raft nodes on loopback, started,
// stopped, killed, restarted and unsealed as an operator would, and asked
// which node is active and whether the others have caught up.

// Cluster is a Vault Cluster of raft nodes on loopback. Each node has its own
// storage, ports and plugin directory, as if it ran on a machine of its own.
type Cluster struct {
	T *testing.T
	// StandbyReads: its standbys answer reads themselves (OpenBao's default).
	StandbyReads bool
	Nodes        []*Node
	UnsealKey    string
	Token        string
	Stopped      bool
}

// Node is one member of a cluster. srv is its current Vault process; a Node
// that was killed and started again gets a new one.
type Node struct {
	ID        string
	Dir       string
	PluginDir string
	Config    string
	// ConfigArgs are node-config.sh's arguments for this node.
	ConfigArgs []string
	Listen     string
	Token      string
	Server     *Server
	Down       bool
	Paused     bool // SIGSTOP: it takes requests but answers none
	Logs       []*LockedBuffer
	// Plugins are the node's plugin processes when its Vault was killed:
	// orphans now, which this process may have to reap.
	Plugins map[int]string
}

func (n *Node) Addr() string { return "http://" + n.Listen }

func (n *Node) RootToken() string { return n.Token }

func (n *Node) String() string { return n.ID }

// Binary is where the node keeps the plugin Binary of version.
func (n *Node) Binary(version string) string {
	return filepath.Join(n.PluginDir, Plugin.Command(version))
}

// Install copies the plugin binary of version into the node's plugin
// directory, as an operator does on every machine before registering.
func (n *Node) Install(t *testing.T, version string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(Plugin.Dir, Plugin.Command(version)))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(n.Binary(version), data, 0o755); err != nil {
		t.Fatal(err)
	}
}

// Start starts a cluster of size nodes, each holding the plugin binary
// of Plugin.Version, with the plugin registered once and enabled at mount. It is
// stopped when the test ends.
func Start(t *testing.T, size int) *Cluster {
	t.Helper()
	return New(t, size, false, false)
}

// shared is the cluster the tests that leave one as they found it share, in
// the order they run: one cluster start for several tests.
var shared *Cluster

// Shared returns the shared 3-node cluster, serving, with every node a
// voter; a test that fails stops it, and the next one starts another.
func Shared(t *testing.T) *Cluster {
	t.Helper()
	if shared == nil || shared.Stopped {
		shared = New(t, 3, true, false)
		return shared
	}
	shared.T = t
	t.Cleanup(func() {
		if t.Failed() {
			shared.StopAll()
		}
	})
	shared.WaitServing()
	shared.WaitVoters(len(shared.Nodes))
	return shared
}

// StopShared stops the shared cluster, if it runs, after the last test.
func StopShared() {
	if shared != nil && !shared.Stopped {
		for _, n := range shared.Nodes {
			_ = n.StopNow()
		}
	}
}

// New starts a cluster; keep leaves it running after the test unless
// the test fails. standbyReads leaves OpenBao's standbys answering reads
// themselves, its default; otherwise they forward them, as Vault's do.
func New(t *testing.T, size int, keep, standbyReads bool) *Cluster {
	t.Helper()
	began := time.Now()
	if err := BecomeSubreaper(); err != nil {
		t.Fatal(err)
	}
	c := &Cluster{T: t, StandbyReads: standbyReads && Tested.StandbyReads}
	t.Cleanup(func() {
		if !keep || t.Failed() {
			c.StopAll()
		}
	})
	c.Nodes = ConfigureNodes(t, size, standbyReads)
	c.InParallel(c.Nodes, (*Node).Start)
	c.Initialise()
	// Unsealing a node that retry_join pointed at the leader completes its join.
	c.InParallel(c.Nodes[1:], c.UnsealNode)
	c.WaitVoters(size)
	c.registerAndEnable()
	t.Logf("cluster of %d nodes up, plugin enabled at %s/: %v", size, Plugin.Mount, time.Since(began).Round(time.Millisecond))
	return c
}

// ConfigureNodes gives each of size nodes a folder, ports of its own and a
// server config that lists the others to join, as an operator's tooling
// would, and installs Plugin.Version's binary on each.
func ConfigureNodes(t *testing.T, size int, standbyReads bool) []*Node {
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
	ports, err := FreePorts(2 * size)
	if err != nil {
		t.Fatal(err)
	}
	apiPorts, clusterPorts := ports[:size], ports[size:]
	var nodes []*Node
	for i := range size {
		n := &Node{ID: fmt.Sprintf("node%d", i+1), Listen: fmt.Sprintf("127.0.0.1:%d", apiPorts[i])}
		var peers []string
		for j, port := range apiPorts {
			if j != i {
				peers = append(peers, fmt.Sprintf("127.0.0.1:%d", port))
			}
		}
		n.configure(t, filepath.Join(dir, n.ID), fmt.Sprintf("127.0.0.1:%d", clusterPorts[i]), peers, standbyReads)
		nodes = append(nodes, n)
	}
	return nodes
}

// configure writes the node's folders and its server config (node-config.sh,
// the config the README gives operators), and installs Plugin.Version's binary.
func (n *Node) configure(t *testing.T, dir, clusterListen string, peers []string, standbyReads bool) {
	t.Helper()
	n.Dir = dir
	n.PluginDir = filepath.Join(dir, "plugins")
	n.Config = filepath.Join(dir, "server.hcl")
	if err := os.MkdirAll(filepath.Join(dir, "raft"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(n.PluginDir, 0o755); err != nil {
		t.Fatal(err)
	}
	n.ConfigArgs = append([]string{dir, n.ID, n.Listen, clusterListen}, peers...)
	n.WriteConfig(t, fmt.Sprintf("DISABLE_STANDBY_READS=%v", Tested.StandbyReads && !standbyReads))
	n.Install(t, Plugin.Version)
}

// WriteConfig writes the node's server config with node-config.sh, env
// added to what the script reads; the node reads it when it next starts.
func (n *Node) WriteConfig(t *testing.T, env ...string) {
	t.Helper()
	cmd := exec.Command(Scripts+"/node-config.sh", n.ConfigArgs...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	config := string(out)
	if err != nil {
		t.Fatalf("node-config.sh: %v, want a config\n%s", err, config)
	}
	if err := os.WriteFile(n.Config, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
}

// InParallel runs do on each of nodes at once, as an operator's tooling does
// on every machine, and fails the test with the first error once all have
// returned: do runs on goroutines of its own, so it must not fail the test.
func (c *Cluster) InParallel(nodes []*Node, do func(*Node) error) {
	c.T.Helper()
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = do(n) }()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			c.T.Fatal(err)
		}
	}
}

// Initialise runs vault operator init through the first node, which keeps
// the one key share and the root token, and unseals it: it becomes the
// active node, which the others join.
func (c *Cluster) Initialise() {
	c.T.Helper()
	first := c.Nodes[0]
	r := Must(c.T, first, http.StatusOK, "PUT", "sys/init", map[string]any{"secret_shares": 1, "secret_threshold": 1})
	c.UnsealKey = r.Body["keys"].([]any)[0].(string)
	c.Token = r.Body["root_token"].(string)
	for _, n := range c.Nodes {
		n.SetToken(c.Token)
	}
	c.Unseal(first)
	if a := c.Active(); a != first {
		c.T.Fatalf("%s became active, want %s, the node initialised", a.ID, first.ID)
	}
	// Autopilot makes a joining node a voter once it has been healthy this
	// long; the default 10 s guards against flapping machines, not needed here.
	Must(c.T, first, http.StatusNoContent, "POST", "sys/storage/raft/autopilot/configuration",
		map[string]any{"server_stabilization_time": "1s"})
}

// registerAndEnable registers the plugin once, for the whole cluster, and
// mounts it, as the README tells an operator to.
func (c *Cluster) registerAndEnable() {
	c.T.Helper()
	first := c.Nodes[0]
	first.Server.MustCLI(c.T, "plugin", "register", "-sha256="+Plugin.SHA256[Plugin.Version], "-version="+Plugin.Version,
		"-command="+Plugin.Command(Plugin.Version), "secret", Plugin.Name)
	first.Server.MustCLI(c.T, "secrets", "enable", "-path="+Plugin.Mount, "-plugin-version="+Plugin.Version, Plugin.Name)
}

// SetToken gives the node's CLI the cluster's root token, also once the
// node's Vault is started again.
func (n *Node) SetToken(token string) {
	n.Token = token
	if n.Server != nil {
		n.Server.Token = token
	}
}

// Start runs the node's Vault, sealed, in its own process group.
func (n *Node) Start() error {
	s, err := StartServerAt(n.Dir, n.Listen, "-config="+n.Config)
	if err != nil {
		return fmt.Errorf("%s: %w", n.ID, err)
	}
	n.Server, n.Down = s, false
	n.Logs = append(n.Logs, s.Log)
	n.SetToken(n.Token)
	return nil
}

// Kill is Kill -9 of the node's Vault alone, as when its machine dies, and
// returns when it was killed. Its plugin processes outlive it, orphaned:
// restart kills them (stopAll does if a test fails first).
func (n *Node) Kill(t *testing.T) time.Time {
	t.Helper()
	n.Plugins = ProcessesUnder(n.PluginDir)
	if err := syscall.Kill(n.Server.Cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill %s: %v", n.ID, err)
	}
	killed := time.Now()
	<-n.Server.Exited
	n.Down = true
	return killed
}

// Stop shuts the node's Vault down as a service manager does, with SIGTERM.
func (n *Node) Stop(t *testing.T) {
	t.Helper()
	n.Plugins = ProcessesUnder(n.PluginDir)
	n.Server.Stop()
	n.Down = true
	n.MustKillPluginProcesses(t)
}

// BecomeSubreaper, where the system has one, makes orphans of the processes
// this test process starts its own children.
var BecomeSubreaper = func() error { return nil }

// MustKillPluginProcesses is killPluginProcesses that fails the test, and
// lets it go on to its checks, if a plugin process survives.
func (n *Node) MustKillPluginProcesses(t testing.TB) int {
	t.Helper()
	killed, err := n.KillPluginProcesses()
	if err != nil {
		t.Error(err)
	}
	return killed
}

// KillPluginProcesses kills every process started from the node's plugin
// directory, whatever its parent now is, reaps those this process adopted,
// and waits until they are gone. It returns how many it killed.
func (n *Node) KillPluginProcesses() (int, error) {
	pids := ProcessesUnder(n.PluginDir)
	for pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	// Those seen before Vault died may have exited since, unreaped.
	unreaped := maps.Clone(pids)
	maps.Copy(unreaped, n.Plugins)
	n.Plugins = nil
	err := Poll(5*time.Second, func() (bool, string) {
		for pid := range unreaped {
			// Reaps an orphan this process adopted; ECHILD for any other.
			if got, err := syscall.Wait4(pid, nil, syscall.WNOHANG, nil); got == pid || err != nil {
				delete(unreaped, pid)
			}
		}
		left := ProcessesUnder(n.PluginDir)
		return len(unreaped) == 0 && len(left) == 0, fmt.Sprint(left)
	})
	if err != nil {
		return len(pids), fmt.Errorf("%s's plugin processes after SIGKILL: %w, want none", n.ID, err)
	}
	return len(pids), nil
}

// StopAll kills every node and every plugin process, also after a failed
// test; a failed test also gets the end of each node's log.
func (c *Cluster) StopAll() {
	c.Stopped = true
	for _, n := range c.Nodes {
		if n.Server == nil {
			continue
		}
		if c.T.Failed() {
			SaveLogs(c.T, n)
		}
		if err := n.StopNow(); err != nil {
			c.T.Error(err)
		}
	}
}

// StopNow kills the node's Vault, its process group and its plugins.
func (n *Node) StopNow() error {
	if n.Paused {
		_ = syscall.Kill(n.Server.Cmd.Process.Pid, syscall.SIGCONT)
	}
	if !n.Down {
		n.Plugins = ProcessesUnder(n.PluginDir)
		_ = syscall.Kill(n.Server.Cmd.Process.Pid, syscall.SIGKILL)
		<-n.Server.Exited
		n.Down = true
	}
	_, err := n.KillPluginProcesses()
	_ = syscall.Kill(-n.Server.Cmd.Process.Pid, syscall.SIGKILL)
	return err
}

// Unseal unseals a node with the cluster's one key share and waits until it
// is active or a standby of the active node.
func (c *Cluster) Unseal(n *Node) {
	c.T.Helper()
	if err := c.UnsealNode(n); err != nil {
		c.T.Fatal(err)
	}
}

// UnsealNode is unseal for any goroutine: it returns what went wrong.
func (c *Cluster) UnsealNode(n *Node) error {
	// A joining node takes the key once retry_join (every 2 s) has fetched
	// the leader's challenge; until then it says it is not initialized.
	err := Poll(60*time.Second, func() (bool, string) {
		r, err := Send(n.Addr(), "", "PUT", "sys/unseal", map[string]any{"key": c.UnsealKey})
		return err == nil && r.Status == http.StatusOK, fmt.Sprint(r, err)
	})
	if err != nil {
		return fmt.Errorf("unseal %s: %w, want 200", n.ID, err)
	}
	// 200: active; 429: an unsealed standby.
	if err := Poll(60*time.Second, func() (bool, string) {
		r, err := SendWith(HealthHTTP, n.Addr(), "", "GET", "sys/health", nil)
		return err == nil && (r.Status == http.StatusOK || r.Status == http.StatusTooManyRequests), fmt.Sprint(r, err)
	}); err != nil {
		return fmt.Errorf("%s's sys/health after unseal: %w, want 200 (active) or 429 (standby)", n.ID, err)
	}
	return nil
}

// ActiveNode is the node whose sys/health says active, or nil while no live
// node, or more than one, says so.
func (c *Cluster) ActiveNode() *Node {
	var active []*Node
	for _, n := range c.Nodes {
		if n.Down || n.Paused {
			continue
		}
		if r, err := SendWith(HealthHTTP, n.Addr(), "", "GET", "sys/health", nil); err == nil && r.Status == http.StatusOK {
			active = append(active, n)
		}
	}
	if len(active) != 1 {
		return nil
	}
	return active[0]
}

// Active waits for an Active node and returns it.
func (c *Cluster) Active() *Node {
	c.T.Helper()
	var a *Node
	WaitFor(c.T, 60*time.Second, "an active node", func() (bool, string) {
		a = c.ActiveNode()
		return a != nil, "none, or more than one"
	})
	return a
}

// WaitOtherActive waits until a node other than old is active.
func (c *Cluster) WaitOtherActive(old *Node) *Node {
	c.T.Helper()
	var a *Node
	WaitFor(c.T, 30*time.Second, "a node but "+old.ID+" active", func() (bool, string) {
		a = c.ActiveNode()
		return a != nil && a != old, fmt.Sprint(a)
	})
	return a
}

// MakeActive steps active nodes down until target is the active one.
func (c *Cluster) MakeActive(target *Node) {
	c.T.Helper()
	for i := 0; i < 5; i++ {
		a := c.Active()
		if a == target {
			return
		}
		a.Server.MustCLI(c.T, "operator", "step-down")
		c.WaitOtherActive(a)
	}
	c.T.Fatalf("%s is still not active after 5 step-downs, want it active", target.ID)
}

// Standbys lists the live nodes other than the active one.
func (c *Cluster) Standbys() []*Node {
	c.T.Helper()
	a := c.Active()
	var s []*Node
	for _, n := range c.Nodes {
		if n != a && !n.Down {
			s = append(s, n)
		}
	}
	return s
}

// Restart starts a node that was killed, unseals it and waits until it is a
// caught-up voter again. The plugin processes its old Vault left go first,
// as they would with the machine.
func (c *Cluster) Restart(n *Node) {
	c.T.Helper()
	n.MustKillPluginProcesses(c.T)
	if err := n.Start(); err != nil {
		c.T.Fatal(err)
	}
	c.Unseal(n)
	c.WaitCaughtUp(n)
	c.WaitVoters(len(c.Nodes))
}

// WaitStandby waits until n, resumed after a pause, knows it is a standby.
func (c *Cluster) WaitStandby(n *Node) {
	c.T.Helper()
	WaitFor(c.T, 30*time.Second, n.ID+" to say it is a standby", func() (bool, string) {
		r, err := SendWith(HealthHTTP, n.Addr(), "", "GET", "sys/health", nil)
		return err == nil && r.Status == http.StatusTooManyRequests, fmt.Sprint(r, err)
	})
	c.WaitCaughtUp(n)
}

// WaitServing waits until the plugin serves a read through every node.
func (c *Cluster) WaitServing() {
	c.T.Helper()
	for _, n := range c.Nodes {
		WaitFor(c.T, 30*time.Second, "the plugin serving through "+n.ID, func() (bool, string) {
			return Plugin.Serving(n, c.Token)
		})
	}
}

// WaitVoters waits until the raft configuration holds want voters and
// autopilot calls the cluster healthy, so any one node may fail.
func (c *Cluster) WaitVoters(want int) {
	c.T.Helper()
	WaitFor(c.T, 60*time.Second, fmt.Sprintf("%d healthy voters", want), func() (bool, string) {
		a := c.ActiveNode()
		if a == nil {
			return false, "no active node"
		}
		voters := 0
		r, err := Send(a.Addr(), c.Token, "GET", "sys/storage/raft/configuration", nil)
		if err == nil && r.Status == http.StatusOK {
			config, _ := r.Data()["config"].(map[string]any)
			servers, _ := config["servers"].([]any)
			for _, s := range servers {
				if s.(map[string]any)["voter"] == true {
					voters++
				}
			}
		}
		state, err := Send(a.Addr(), c.Token, "GET", "sys/storage/raft/autopilot/state", nil)
		return err == nil && voters == want && state.Data()["healthy"] == true,
			fmt.Sprintf("%d voters; autopilot %s", voters, state.Raw)
	})
}

// WaitCaughtUp waits until node n follows the active node and has applied
// all the active node had committed: a restarted node then votes, and may be
// elected, like the others. (Autopilot may still call a node healthy that
// died seconds ago.)
func (c *Cluster) WaitCaughtUp(n *Node) {
	c.T.Helper()
	a := c.Active()
	committed, _ := Must(c.T, a, http.StatusOK, "GET", "sys/leader", nil).Body["raft_committed_index"].(float64)
	WaitFor(c.T, 30*time.Second, fmt.Sprintf("%s caught up with %s (committed index %v)", n.ID, a.ID, committed), func() (bool, string) {
		r, err := Send(n.Addr(), "", "GET", "sys/leader", nil)
		applied, _ := r.Body["raft_applied_index"].(float64)
		return err == nil && r.Body["leader_address"] == a.Addr() && applied >= committed && committed > 0, fmt.Sprint(r, err)
	})
}

// SaveLogs writes the whole log of each Vault node n ran to a file named
// after the test.
func SaveLogs(t testing.TB, n *Node) {
	var all strings.Builder
	for _, l := range n.Logs {
		all.WriteString(l.String())
	}
	file := filepath.Join(FailureDir, strings.ReplaceAll(t.Name(), "/", "-")+"-"+n.ID+".log")
	if err := os.MkdirAll(FailureDir, 0o755); err == nil && os.WriteFile(file, []byte(all.String()), 0o644) == nil {
		t.Logf("%s: its servers' logs are in %s", n.ID, file)
	}
}
