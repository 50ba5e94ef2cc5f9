// Package redistest runs a real redis-server for tests: on a free loopback
// port, with its users in an aclfile, stopped by its PID.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// The users every server starts with: the plugin's admin, and the tests'
// own, which a rotation of the plugin's password leaves alone.
const (
	PluginUser   = "vault-admin"
	ObserverUser = "observer"
)

// Server is one redis-server process.
type Server struct {
	Addr           string
	PluginPassword string
	dir            string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	log    *os.File
}

// Binary is redis-server from REDIS_SERVER, else from PATH.
func Binary() (string, error) {
	if path := os.Getenv("REDIS_SERVER"); path != "" {
		return path, nil
	}
	path, err := exec.LookPath("redis-server")
	if err != nil {
		return "", errors.New("redis-server not found: set REDIS_SERVER to its path, or install Redis 7 (Debian and Ubuntu: apt-get install redis-server; macOS: brew install redis)")
	}
	return path, nil
}

// Start runs a redis-server in dir, which holds its config, aclfile and log.
func Start(dir string) (*Server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	s := &Server{Addr: addr, PluginPassword: "plugin-" + RandomHex(), dir: dir}
	_, port, _ := net.SplitHostPort(addr)
	acl := strings.Join([]string{
		"user default off",
		"user " + PluginUser + " on >" + s.PluginPassword + " ~* &* +@all",
		"user " + ObserverUser + " on >" + observerPassword + " ~* &* +@all",
	}, "\n") + "\n"
	conf := strings.Join([]string{
		"bind 127.0.0.1", "port " + port, "dir " + dir, "aclfile " + filepath.Join(dir, "users.acl"),
		`save ""`, "appendonly no", "daemonize no",
	}, "\n") + "\n"
	if err := os.WriteFile(filepath.Join(dir, "users.acl"), []byte(acl), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "redis.conf"), []byte(conf), 0o600); err != nil {
		return nil, err
	}
	return s, s.Restart()
}

// observerPassword is the tests' own user's; nothing the plugin does
// changes it.
const observerPassword = "observer-password"

// Restart starts the server again, on the same port with the users its
// aclfile holds, after Stop or Kill.
func (s *Server) Restart() error {
	binary, err := Binary()
	if err != nil {
		return err
	}
	log, err := os.OpenFile(filepath.Join(s.dir, "redis.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(binary, filepath.Join(s.dir, "redis.conf"))
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		log.Close()
		return err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.mu.Lock()
	s.cmd, s.exited, s.log = cmd, exited, log
	s.mu.Unlock()

	c := s.Observer()
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("redis-server exited at start, want it to answer PING; see %s", log.Name())
		default:
		}
		if time.Now().After(deadline) {
			s.Kill()
			return fmt.Errorf("redis-server at %s did not answer PING within 10s: %v", s.Addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// PID is the running server's process ID.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd.Process.Pid
}

// Stop shuts the server down with SIGTERM, then SIGKILL if it has not
// exited within 10 s.
func (s *Server) Stop() { s.signal(syscall.SIGTERM, 10*time.Second) }

// Kill is kill -9 of the server.
func (s *Server) Kill() { s.signal(syscall.SIGKILL, 10*time.Second) }

func (s *Server) signal(sig syscall.Signal, wait time.Duration) {
	s.mu.Lock()
	cmd, exited, log := s.cmd, s.exited, s.log
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(cmd.Process.Pid, sig)
	select {
	case <-exited:
	case <-time.After(wait):
		_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}
	log.Close()
}

// Observer is a client as the tests' own admin user.
func (s *Server) Observer() *redis.Client { return s.Client(ObserverUser, observerPassword) }

// Client is a client as the given user, one connection, no retries.
func (s *Server) Client(user, password string) *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr: s.Addr, Username: user, Password: password, Protocol: 2,
		MaxRetries: -1, PoolSize: 1, DialTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second,
	})
}

// Users are the server's ACL users, read as the tests' own user.
func (s *Server) Users(ctx context.Context) ([]string, error) {
	c := s.Observer()
	defer c.Close()
	return c.ACLUsers(ctx).Result()
}

// CanLogIn tells whether user logs in with password: nil if it does, else
// Redis's refusal, or the failure to reach it.
func (s *Server) CanLogIn(ctx context.Context, user, password string) error {
	// AUTH on a connection that logged in as nobody: a user of no command
	// may still run it.
	c := s.Client("", "")
	defer c.Close()
	return c.Do(ctx, "AUTH", user, password).Err()
}

// RandomHex is 96 random bits in hex.
func RandomHex() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
