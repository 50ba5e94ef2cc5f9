// Package e2e drives the plugin binary inside a real Vault server, the way an
// operator does: registration by SHA-256, versions, upgrade, reload, crash,
// ACLs and persistence.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

const (
	// pluginName and mount are the only places the e2e tests name the plugin
	// and its default mount (the Makefile's PLUGIN and MOUNT).
	pluginName = "vault-plugin-secrets-reference"
	mount      = "ref"
	rootToken  = "e2e-root"
	oldVersion = "v0.1.0"
	newVersion = "v0.2.0"
)

var (
	vaultBinary string
	// pluginDir is the server's plugin_directory; it holds one binary per
	// version, named pluginCommand(version).
	pluginDir string
	pluginSHA = map[string]string{}
	// dev is the dev-mode server most tests share, with oldVersion registered.
	dev *server
)

func pluginCommand(version string) string { return pluginName + "-" + version }

func TestMain(m *testing.M) {
	if dir := os.Getenv(reaperEnv); dir != "" {
		reap(dir)
		os.Exit(0)
	}
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		code = 1
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	// A user's VAULT_NAMESPACE, VAULT_TOKEN, VAULT_CACERT and the like would
	// reach the CLI and the API client the tests run; only the servers these
	// tests start are addressed, with the settings the tests give.
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "VAULT_") && name != "VAULT_BINARY" {
			os.Unsetenv(name)
		}
	}
	// Building Vault takes up to about 20 minutes, once.
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "./vault.sh").Output()
	if err != nil {
		return 1, fmt.Errorf("finding a Vault binary: %w", err)
	}
	vaultBinary = strings.TrimSpace(string(out))
	if err := startRun(); err != nil {
		return 1, err
	}
	defer endRun()
	defer stopShared()

	work, err := os.MkdirTemp("", "e2e-")
	if err != nil {
		return 1, err
	}
	defer os.RemoveAll(work)
	pluginDir = filepath.Join(work, "plugins")
	for _, v := range []string{oldVersion, newVersion} {
		sha, err := buildPlugin(v, filepath.Join(pluginDir, pluginCommand(v)))
		if err != nil {
			return 1, err
		}
		pluginSHA[v] = sha
	}

	config := filepath.Join(work, "dev.hcl")
	if err := os.WriteFile(config, []byte(fmt.Sprintf("plugin_directory = %q\n", pluginDir)), 0o600); err != nil {
		return 1, err
	}
	dev, err = startServer(work, "-dev", "-dev-root-token-id="+rootToken, "-config="+config)
	if err != nil {
		return 1, err
	}
	defer dev.stop()
	if out, err := dev.cli("plugin", "register", "-sha256="+pluginSHA[oldVersion], "-version="+oldVersion,
		"-command="+pluginCommand(oldVersion), "secret", pluginName); err != nil {
		return 1, fmt.Errorf("registering the plugin: %v: %s", err, out)
	}
	return m.Run(), nil
}

// buildPlugin builds the plugin with the project's own Makefile, as an operator
// would, and returns the SHA-256 the Makefile wrote beside it.
func buildPlugin(version, binary string) (string, error) {
	return buildPluginFrom("..", version, binary)
}

func buildPluginFrom(source, version, binary string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "make", "-s", "-C", source, "build", "VERSION="+version, "BIN="+binary)
	cmd.Env = goDefaultsEnv()
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("make build %s: %v: %s", version, err, out)
	}
	sha, err := os.ReadFile(binary + ".sha256")
	if err != nil {
		return "", err
	}
	// The plugin directory must hold only what Vault may run.
	return strings.TrimSpace(string(sha)), os.Remove(binary + ".sha256")
}

// goDefaultsEnv is this environment with Go's own defaults, as on a user's
// machine: GOENV=off ignores a go env file, and GOFLAGS is what Go assumes
// when none is set (a build machine may set -buildvcs=false, which hides
// whether a build from a git checkout is reproducible).
func goDefaultsEnv() []string {
	return append(os.Environ(), "GOENV=off", "GOFLAGS=-buildvcs=auto")
}

// server is one Vault server process on a free loopback port.
type server struct {
	cmd    *exec.Cmd
	addr   string
	token  string
	log    *lockedBuffer
	exited chan struct{}
	client *api.Client
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startServer starts `vault server` with args and waits until it answers. A dev
// server listens on a port chosen here; a server with a config file listens
// where the file says, given as listen.
func startServer(dir string, args ...string) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	listen := fmt.Sprintf("127.0.0.1:%d", port)
	return startServerAt(dir, listen, append(args, "-dev-listen-address="+listen)...)
}

func startServerAt(dir, listen string, args ...string) (*server, error) {
	s := &server{addr: "http://" + listen, token: rootToken, log: &lockedBuffer{}, exited: make(chan struct{})}
	s.cmd = exec.Command(vaultBinary, append([]string{"server"}, args...)...)
	s.cmd.Dir = dir
	s.cmd.Env = append(os.Environ(), "VAULT_ADDR="+s.addr, "VAULT_LOG_LEVEL=debug")
	s.cmd.Stdout = s.log
	s.cmd.Stderr = s.cmd.Stdout
	// Its own process group, so stop can also reach plugin processes it started.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	recordServer(s.cmd.Process.Pid)
	go func() { _ = s.cmd.Wait(); close(s.exited) }()

	config := api.DefaultConfig()
	config.Address = s.addr
	client, err := api.NewClient(config)
	if err != nil {
		s.stop()
		return nil, err
	}
	s.client = client
	client.SetToken(s.token)
	err = poll(60*time.Second, func() (bool, string) {
		select {
		case <-s.exited:
			return true, ""
		default:
		}
		r, err := sendWith(healthHTTP, s.addr, "", "GET", "sys/health?uninitcode=200&sealedcode=200&standbycode=200", nil)
		return err == nil && r.status == http.StatusOK, fmt.Sprint(r, err)
	})
	select {
	case <-s.exited:
		return nil, fmt.Errorf("vault server exited early:\n%s", s.logText())
	default:
	}
	if err != nil {
		s.stop()
		return nil, fmt.Errorf("vault server does not answer: %v\n%s", err, s.logText())
	}
	return s, nil
}

// stop ends the server by its own process: SIGTERM, then SIGKILL to its whole
// process group if it lingers or left plugin processes behind.
func (s *server) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(20 * time.Second):
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.exited
}

// lockedBuffer collects a server's output, written by exec's copier and read by tests.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (s *server) logText() string { return s.log.String() }

// cli runs the vault CLI against the server, as an operator types it.
func (s *server) cli(args ...string) (string, error) {
	return s.cliWithToken(s.token, args...)
}

func (s *server) cliWithToken(token string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, vaultBinary, args...)
	cmd.Env = append(os.Environ(), "VAULT_ADDR="+s.addr, "VAULT_TOKEN="+token, "VAULT_FORMAT=", "NO_COLOR=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String() + stderr.String(), err
	}
	return stdout.String(), nil
}

// mustCLI runs the CLI and fails the test if the command fails.
func (s *server) mustCLI(t *testing.T, args ...string) string {
	t.Helper()
	out, err := s.cli(args...)
	if err != nil {
		t.Fatalf("vault %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// reply is a raw HTTP answer from Vault.
type reply struct {
	status int
	body   map[string]interface{}
	raw    string
}

func (r reply) data() map[string]interface{} {
	d, _ := r.body["data"].(map[string]interface{})
	return d
}

func (r reply) String() string { return fmt.Sprintf("%d %s", r.status, r.raw) }

// call sends one HTTP request to Vault's API with a token and returns the status
// and the decoded body, so tests see exactly what a client sees. Status 0
// means no answer: callers in other goroutines must not call t.Fatal.
func (s *server) call(t *testing.T, token, method, path string, body interface{}) reply {
	t.Helper()
	r, err := send(s.addr, token, method, path, body)
	if err != nil && r.status != 0 {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// expect sends a request as root and fails the test unless the status is want
// and, for errors, the message holds every fragment.
func (s *server) expect(t *testing.T, want int, method, path string, body interface{}, fragments ...string) reply {
	t.Helper()
	r := s.call(t, s.token, method, path, body)
	if r.status != want {
		t.Fatalf("%s %s: got %s, want %d", method, path, r, want)
	}
	errors := fmt.Sprint(r.body["errors"])
	for _, f := range fragments {
		if !strings.Contains(errors, f) {
			t.Fatalf("%s %s: errors %s do not mention %q", method, path, errors, f)
		}
	}
	return r
}

// enable mounts the plugin at path, pinned to version.
func (s *server) enable(t *testing.T, path, version string) {
	t.Helper()
	s.expect(t, http.StatusNoContent, "POST", "sys/mounts/"+path, map[string]interface{}{
		"type":   pluginName,
		"config": map[string]interface{}{"plugin_version": version},
	})
	t.Cleanup(func() { s.call(t, s.token, "DELETE", "sys/mounts/"+path, nil) })
}

// pluginProcesses lists the PIDs of plugin processes the server started.
func (s *server) pluginProcesses(t *testing.T) []int {
	t.Helper()
	var pids []int
	for _, p := range processes() {
		if p.parent == s.cmd.Process.Pid && strings.HasPrefix(p.args, pluginDir) {
			pids = append(pids, p.pid)
		}
	}
	return pids
}

func secretBody(pairs ...string) map[string]interface{} {
	data := map[string]interface{}{}
	for i := 0; i < len(pairs); i += 2 {
		data[pairs[i]] = pairs[i+1]
	}
	return map[string]interface{}{"data": data}
}
