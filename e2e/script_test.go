package e2e

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/cluster"
)

// The scripts behind make dev and make cluster are run as a new user runs
// them in a terminal: as a foreground job in a process group of its own, so
// that Ctrl-C reaches every process the script started.

// script is one such script, running.
type script struct {
	name   string
	cmd    *exec.Cmd
	stdout *os.File
	stderr *cluster.LockedBuffer
	exited chan struct{}
}

// startScript starts ./name with args, and env added to the test's own.
func startScript(t *testing.T, env []string, name string, args ...string) *script {
	t.Helper()
	s := &script{name: name, stderr: &cluster.LockedBuffer{}, exited: make(chan struct{})}
	s.cmd = exec.Command("./"+name, args...)
	s.cmd.Env = append(os.Environ(), env...)
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	s.cmd.Stderr = s.stderr
	// A descendant that kept stderr open must not keep the script from
	// counting as ended.
	s.cmd.WaitDelay = 10 * time.Second
	// A pipe of the test's own, not StdoutPipe: exec closes that one as soon
	// as the script exits, and what it printed last would be lost.
	stdout, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stdout, s.stdout = w, stdout
	t.Cleanup(func() { stdout.Close() })
	err = s.cmd.Start()
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	t.Cleanup(s.stop)
	return s
}

// instructions returns what the script printed before the line that says
// Ctrl-C stops it. A script that hangs never ends its output, so past within
// the script is killed and the test fails.
func (s *script) instructions(t *testing.T, within time.Duration) string {
	t.Helper()
	printed, err := readUntil(s.stdout, "Ctrl-C", within)
	if err != nil {
		s.kill()
		t.Fatalf("%s printed no instructions, want them before a line with Ctrl-C: %v:\n%s\nstderr:\n%s", s.name, err, printed, s.stderr)
	}
	return printed
}

// readUntil returns the lines r gives before one that holds marker, or, with
// an error, those it gave until it ended or within passed.
func readUntil(r io.Reader, marker string, within time.Duration) (string, error) {
	var mu sync.Mutex
	var printed strings.Builder
	found := make(chan bool, 1)
	go func() {
		lines := bufio.NewScanner(r)
		for lines.Scan() {
			if strings.Contains(lines.Text(), marker) {
				found <- true
				return
			}
			mu.Lock()
			printed.WriteString(lines.Text() + "\n")
			mu.Unlock()
		}
		found <- false
	}()
	var err error
	select {
	case ok := <-found:
		if !ok {
			err = fmt.Errorf("its output ended before a line with %q", marker)
		}
	case <-time.After(within):
		err = fmt.Errorf("no line with %q within %v", marker, within)
	}
	mu.Lock()
	defer mu.Unlock()
	return printed.String(), err
}

// ctrlC signals the script's whole process group, as Ctrl-C in a terminal
// does, and fails the test unless the script ends within; it returns how
// long the script took.
func (s *script) ctrlC(t *testing.T, within time.Duration) time.Duration {
	t.Helper()
	if err := syscall.Kill(-s.cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	select {
	case <-s.exited:
	case <-time.After(within):
		t.Fatalf("%s still runs %v after Ctrl-C, want it stopped", s.name, within)
	}
	return time.Since(began)
}

// stop is the end of every test's script, also a failed one's: Ctrl-C, so
// that the script stops what it started and removes its files, then by
// force if it hangs.
func (s *script) stop() {
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGINT)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		s.kill()
	}
}

// kill ends the script's whole process group at once and waits for the
// script: what a test does when the script would not stop by itself.
func (s *script) kill() {
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.exited
}
