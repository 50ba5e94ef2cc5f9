package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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
// of oldVersion, with the plugin registered once and enabled at ref/.
func startCluster(t *testing.T, size int) *cluster {
	t.Helper()
	began := time.Now()
	// Vault resolves symlinks in plugin_directory (macOS's temp dir is one); the
	// plugin processes' command lines then start with the resolved path.
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := becomeSubreaper(); err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t}
	t.Cleanup(c.stopAll)

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
		var joins strings.Builder
		for j := 0; j < size; j++ {
			if j != i {
				fmt.Fprintf(&joins, "  retry_join {\n    leader_api_addr = \"http://127.0.0.1:%d\"\n  }\n", apiPorts[j])
			}
		}
		// performance_multiplier = 1 is the production timing: elections in
		// about 2 s instead of 7-12 s with the development default. Autopilot
		// promotes a joined node to voter on its next reconcile, every 10 s by
		// default; every second here, so the cluster is up sooner.
		config := fmt.Sprintf(`storage "raft" {
  path                         = %q
  node_id                      = %q
  performance_multiplier       = 1
  autopilot_reconcile_interval = "1s"
  autopilot_update_interval    = "500ms"
%s}
listener "tcp" {
  address         = %q
  cluster_address = "127.0.0.1:%d"
  tls_disable     = true
}
api_addr         = "http://%s"
cluster_addr     = "https://127.0.0.1:%d"
plugin_directory = %q
disable_mlock    = true
`, filepath.Join(n.dir, "raft"), n.id, joins.String(), n.listen, clusterPorts[i], n.listen, clusterPorts[i], n.pluginDir)
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
	first.srv.mustCLI(t, "secrets", "enable", "-path=ref", "-plugin-version="+oldVersion, pluginName)
	t.Logf("cluster of %d nodes up, plugin enabled at ref/: %v", size, time.Since(began).Round(time.Millisecond))
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
// whatever its parent now is, waits until they are gone, and returns how many.
func (n *node) killPlugins(t *testing.T) int {
	t.Helper()
	pids := processesUnder(n.pluginDir)
	for pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	// Those seen before Vault died may have exited since, unreaped.
	unreaped := maps.Clone(pids)
	maps.Copy(unreaped, n.plugins)
	n.plugins = nil
	for i := 0; i < 100; i++ {
		for pid := range unreaped {
			// Reaps an orphan this process adopted; ECHILD for any other.
			if got, err := syscall.Wait4(pid, nil, syscall.WNOHANG, nil); got == pid || err != nil {
				delete(unreaped, pid)
			}
		}
		if len(unreaped) == 0 && len(processesUnder(n.pluginDir)) == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if left := processesUnder(n.pluginDir); len(left) > 0 {
		t.Errorf("%s: plugin processes %v survive SIGKILL", n.id, left)
	}
	return len(pids)
}

// processesUnder maps the PID of each live process whose command starts with
// dir to its command line.
func processesUnder(dir string) map[int]string {
	out, err := exec.Command("ps", "-e", "-o", "pid=,args=").Output()
	if err != nil {
		return nil
	}
	found := map[int]string{}
	for _, line := range strings.Split(string(out), "\n") {
		pid, args, _ := strings.Cut(strings.TrimSpace(line), " ")
		if args = strings.TrimSpace(args); strings.HasPrefix(args, dir+string(filepath.Separator)) {
			n, _ := strconv.Atoi(pid)
			found[n] = args
		}
	}
	return found
}

// stopAll kills every node and every plugin process, also after a failed
// test; a failed test also gets the end of each node's log.
func (c *cluster) stopAll() {
	for _, n := range c.nodes {
		if n.srv == nil {
			continue
		}
		if c.t.Failed() {
			log := n.srv.logText()
			if len(log) > 4000 {
				log = log[len(log)-4000:]
			}
			c.t.Logf("%s log, last lines:\n%s", n.id, log)
		}
		if !n.down {
			n.plugins = processesUnder(n.pluginDir)
			_ = syscall.Kill(n.srv.cmd.Process.Pid, syscall.SIGKILL)
			<-n.srv.exited
			n.down = true
		}
		n.killPlugins(c.t)
		_ = syscall.Kill(-n.srv.cmd.Process.Pid, syscall.SIGKILL)
	}
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
	deadline := time.Now().Add(60 * time.Second)
	for {
		r, err := send(n.addr(), "", "PUT", "sys/unseal", map[string]interface{}{"key": c.unsealKey})
		if err == nil && r.status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) || !strings.Contains(r.raw, "not initialized") {
			return fmt.Errorf("unseal %s: %s %v", n.id, r, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var last reply
	for time.Now().Before(deadline) {
		// 200: active; 429: an unsealed standby.
		r, err := send(n.addr(), "", "GET", "sys/health", nil)
		if err == nil && (r.status == http.StatusOK || r.status == http.StatusTooManyRequests) {
			return nil
		}
		last = r
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s: sys/health still %s a minute after unseal", n.id, last)
}

// activeNode is the node whose sys/health says active, or nil while no live
// node, or more than one, says so.
func (c *cluster) activeNode() *node {
	var active []*node
	for _, n := range c.nodes {
		if n.down {
			continue
		}
		if r, err := send(n.addr(), "", "GET", "sys/health", nil); err == nil && r.status == http.StatusOK {
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
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if a := c.activeNode(); a != nil {
			return a
		}
	}
	c.t.Fatal("no active node within a minute")
	return nil
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

// waitVoters waits until the raft configuration holds want voters and
// autopilot calls the cluster healthy, so any one node may fail.
func (c *cluster) waitVoters(want int) {
	c.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		a := c.activeNode()
		if a != nil {
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
			if err == nil && voters == want && state.data()["healthy"] == true {
				return
			}
			last = fmt.Sprintf("%d voters; autopilot %s", voters, state.raw)
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("the cluster has not %d healthy voters within a minute: %s", want, last)
}

// waitCaughtUp waits until node n follows the active node and has applied
// all the active node had committed: a restarted node then votes, and may be
// elected, like the others. (Autopilot may still call a node healthy that
// died seconds ago.)
func (c *cluster) waitCaughtUp(n *node) {
	c.t.Helper()
	a := c.active()
	committed, _ := c.must(a, http.StatusOK, "GET", "sys/leader", nil).body["raft_committed_index"].(float64)
	var last reply
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		r, err := send(n.addr(), "", "GET", "sys/leader", nil)
		applied, _ := r.body["raft_applied_index"].(float64)
		if err == nil && r.body["leader_address"] == a.addr() && applied >= committed && committed > 0 {
			return
		}
		last = r
	}
	c.t.Fatalf("%s has not caught up with %s (committed index %v) within 30 s: %s", n.id, a.id, committed, last)
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
	var reader io.Reader
	if body != nil {
		encoded, err := json.Marshal(body)
		if err != nil {
			return reply{}, err
		}
		reader = bytes.NewReader(encoded)
	}
	req, err := http.NewRequest(method, addr+"/v1/"+path, reader)
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
