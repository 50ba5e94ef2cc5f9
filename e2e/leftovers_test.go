package e2e

import (
	"os"
	"os/exec"
	"testing"
)

// When a run ends, however it ends, its reaper stops what it left: the
// reaper's stdin closes with the run's process, as it does here.
func TestLeftovers_TheReaperStopsARunsProcessesWhenItEnds(t *testing.T) {
	dir, server, child := startFakeRun(t, os.Getpid())
	stdin, err := startReaper(dir)
	if err != nil {
		t.Fatal(err)
	}
	running(t, server, child)
	stdin.Close()
	waitGone(t, "the reaper to stop the run's server and its child", server, child)
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the reaper left the run's folder: %v", err)
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
	stopEarlierRuns()
	waitGone(t, "the processes of the ended run", server, child)
	running(t, other, otherChild)
	if _, err := os.Stat(ended); !os.IsNotExist(err) {
		t.Errorf("the ended run's folder is still there: %v", err)
	}
	if _, err := os.Stat(going); err != nil {
		t.Errorf("the folder of a run that still goes: %v", err)
	}
}
