// Package cluster runs Vault or OpenBao servers on loopback as an operator
// does: a dev server, or a raft cluster whose nodes are started, killed,
// paused, restarted and unsealed; it speaks to them over HTTP and the CLI,
// and stops every process it started, also when a run dies.
package cluster

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Server is one Vault Server process on a free loopback port.
type Server struct {
	Cmd     *exec.Cmd
	Address string // http://127.0.0.1:port
	Token   string
	Log     *LockedBuffer
	Exited  chan struct{}
}

func (s *Server) Addr() string { return s.Address }

func (s *Server) RootToken() string { return s.Token }

func (s *Server) String() string { return s.Address }

// FreePorts returns n distinct ports free on loopback. Each stays bound until
// all are chosen: a port asked for after another was let go again may be
// that very port.
func FreePorts(n int) ([]int, error) {
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

// FreePortPairs returns n distinct ports p with p+1 free too: a node's API
// port and, by Vault's convention, its cluster port. Every pair stays bound
// until all are chosen, so no two pairs overlap.
func FreePortPairs(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	for tries := 0; len(ports) < n; tries++ {
		if tries == 50*n {
			t.Fatalf("%d pairs of free ports in a row after %d tries, want %d", len(ports), tries, n)
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

// StartServer starts `vault server` with args and waits until it answers. A dev
// server listens on a port chosen here; a server with a config file listens
// where the file says, given as listen.
func StartServer(dir string, args ...string) (*Server, error) {
	ports, err := FreePorts(1)
	if err != nil {
		return nil, err
	}
	listen := fmt.Sprintf("127.0.0.1:%d", ports[0])
	return StartServerAt(dir, listen, append(args, "-dev-listen-address="+listen)...)
}

func StartServerAt(dir, listen string, args ...string) (*Server, error) {
	s := &Server{Address: "http://" + listen, Token: DevToken, Log: &LockedBuffer{}, Exited: make(chan struct{})}
	s.Cmd = exec.Command(Binary, append([]string{"server"}, args...)...)
	s.Cmd.Dir = dir
	s.Cmd.Env = append(append(os.Environ(), CLIEnv(s.Address, "")...), "VAULT_LOG_LEVEL=debug", "BAO_LOG_LEVEL=debug")
	s.Cmd.Stdout = s.Log
	s.Cmd.Stderr = s.Cmd.Stdout
	// Its own process group, so stop can also reach plugin processes it started.
	s.Cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.Cmd.Start(); err != nil {
		return nil, err
	}
	recordServer(s.Cmd.Process.Pid)
	go func() { _ = s.Cmd.Wait(); close(s.Exited) }()

	err := Poll(60*time.Second, func() (bool, string) {
		select {
		case <-s.Exited:
			return true, ""
		default:
		}
		r, err := SendWith(HealthHTTP, s.Address, "", "GET", "sys/health?uninitcode=200&sealedcode=200&standbycode=200", nil)
		return err == nil && r.Status == http.StatusOK, fmt.Sprint(r, err)
	})
	select {
	case <-s.Exited:
		return nil, fmt.Errorf("vault server exited, want it to answer sys/health:\n%s", s.LogText())
	default:
	}
	if err != nil {
		s.Stop()
		return nil, fmt.Errorf("vault server's sys/health: %v, want 200\n%s", err, s.LogText())
	}
	return s, nil
}

// Stop ends the server by its own process: SIGTERM, then SIGKILL to its whole
// process group if it lingers or left plugin processes behind.
func (s *Server) Stop() {
	_ = s.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.Exited:
	case <-time.After(20 * time.Second):
	}
	_ = syscall.Kill(-s.Cmd.Process.Pid, syscall.SIGKILL)
	<-s.Exited
}

// LockedBuffer collects a server's output, written by exec's copier and read by tests.
type LockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (s *Server) LogText() string { return s.Log.String() }

// CLI runs the vault CLI against the server, as an operator types it.
func (s *Server) CLI(args ...string) (string, error) {
	return s.CLIWithToken(s.Token, args...)
}

func (s *Server) CLIWithToken(token string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, Binary, args...)
	cmd.Env = append(append(os.Environ(), CLIEnv(s.Address, token)...), "NO_COLOR=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String() + stderr.String(), err
	}
	return stdout.String(), nil
}

// MustCLI runs the CLI and fails the test if the command fails.
func (s *Server) MustCLI(t *testing.T, args ...string) string {
	t.Helper()
	out, err := s.CLI(args...)
	if err != nil {
		t.Fatalf("vault %s: %v, want it to succeed\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// PluginProcesses lists the PIDs of the plugin processes the server runs:
// told apart by their parent, since other servers the tests start share its
// plugin directory.
func (s *Server) PluginProcesses(dir string) []int {
	var pids []int
	for _, p := range ProcessesWhere(func(p Process) bool {
		return p.Parent == s.Cmd.Process.Pid && strings.HasPrefix(p.Args, dir)
	}) {
		pids = append(pids, p.PID)
	}
	return pids
}
