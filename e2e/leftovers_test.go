package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/cluster"
)

// When a run ends, however it ends, its reaper stops what it left: the
// reaper's stdin closes with the run's process, as it does here.
func TestLeftovers_TheReaperStopsARunsProcessesWhenItEnds(t *testing.T) {
	dir, server, child := startFakeRun(t, os.Getpid())
	stdin, err := cluster.StartReaper(dir)
	if err != nil {
		t.Fatal(err)
	}
	running(t, server, child)
	stdin.Close()
	waitGone(t, "the reaper to stop the run's server and its child", server, child)
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the reaper left the run's folder (%v), want it removed", err)
	}
}

// The next run stops what a run whose process is gone left, and leaves a
// run that still goes alone.
func TestLeftovers_TheNextRunStopsWhatAnEndedRunLeft(t *testing.T) {
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	ended, server, child := startFakeRun(t, gone.Process.Pid)
	going, other, otherChild := startFakeRun(t, os.Getpid())
	cluster.StopEarlierRuns()
	waitGone(t, "the processes of the ended run stopped", server, child)
	running(t, other, otherChild)
	if _, err := os.Stat(ended); !os.IsNotExist(err) {
		t.Errorf("the ended run's folder is still there (%v), want it removed", err)
	}
	if _, err := os.Stat(going); err != nil {
		t.Errorf("the folder of a run that still goes: %v, want it kept", err)
	}
}

// startFakeRun makes a run folder with a "server" that names the folder on
// its command line and has a child that does not, as Vault and a plugin
// process, and returns the folder and both PIDs.
func startFakeRun(t *testing.T, owner int) (dir string, server, child int) {
	t.Helper()
	dir, err := os.MkdirTemp(cluster.RunsDir, "run-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.WriteFile(filepath.Join(dir, "owner"), []byte(fmt.Sprint(owner)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", "sleep 300 & echo $!; wait", dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go cmd.Wait()
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	if _, err := fmt.Fscan(out, &child); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pids"), []byte(fmt.Sprintln(cmd.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, cmd.Process.Pid, child
}

// waitGone waits until none of pids runs.
func waitGone(t *testing.T, what string, pids ...int) {
	t.Helper()
	cluster.WaitFor(t, 10*time.Second, what, func() (bool, string) {
		for _, p := range cluster.Processes() {
			if slices.Contains(pids, p.PID) {
				return false, fmt.Sprintf("%d still runs: %s", p.PID, p.Args)
			}
		}
		return true, ""
	})
}

// running fails the test unless every one of pids runs.
func running(t *testing.T, pids ...int) {
	t.Helper()
	live := map[int]bool{}
	for _, p := range cluster.Processes() {
		live[p.PID] = true
	}
	for _, pid := range pids {
		if !live[pid] {
			t.Fatalf("%d does not run, want it running", pid)
		}
	}
}
