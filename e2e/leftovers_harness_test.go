package e2e

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Nothing a run starts may outlive it, even when a test panics or `go test
// -timeout` ends the process before any cleanup runs. Each run works in its
// own folder under runsDir and records there its own PID and that of every
// server it starts. A reaper process waits for the run to end, however it
// ends, and then stops what is left; the next run does the same for any run
// whose process is gone.

var runsDir = filepath.Join(os.TempDir(), pluginName+"-e2e")

const reaperEnv = "E2E_REAP_RUN"

// runDir is this run's folder: TMPDIR points there, so that every folder the
// tests and their scripts make, and every process working in one, can be
// told apart from anything else on the machine.
var runDir string

// startRun makes the run's folder, stops what earlier runs left, and starts
// the reaper.
func startRun() error {
	if err := os.MkdirAll(runsDir, 0o755); err != nil {
		return err
	}
	stopEarlierRuns()
	dir, err := os.MkdirTemp(runsDir, "run-")
	if err != nil {
		return err
	}
	runDir = dir
	if err := os.WriteFile(filepath.Join(dir, "owner"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return err
	}
	os.Setenv("TMPDIR", dir)
	reaperStdin, err = startReaper(dir)
	return err
}

// stopEarlierRuns stops what each earlier run left, unless it still runs,
// and removes its folder.
func stopEarlierRuns() {
	earlier, _ := filepath.Glob(filepath.Join(runsDir, "run-*"))
	for _, dir := range earlier {
		if owner, err := os.ReadFile(filepath.Join(dir, "owner")); err == nil && alive(strings.TrimSpace(string(owner))) {
			continue // another run, still going
		}
		stopLeftovers(dir)
		os.RemoveAll(dir)
	}
}

// startReaper starts a process that reads its stdin until the run is gone,
// whatever ends it (the pipe closes with the process), and then stops
// what is left in dir.
func startReaper(dir string) (io.Closer, error) {
	reaper := exec.Command(os.Args[0])
	reaper.Env = append(os.Environ(), reaperEnv+"="+dir)
	stdin, err := reaper.StdinPipe()
	if err != nil {
		return nil, err
	}
	// Its own process group, out of reach of a Ctrl-C that ends the run.
	reaper.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := reaper.Start(); err != nil {
		return nil, err
	}
	// Reaped when it ends, so that a test can wait for it.
	go reaper.Wait()
	return stdin, nil
}

var reaperStdin io.Closer

// endRun stops what is left of this run and removes its folder.
func endRun() {
	stopLeftovers(runDir)
	if reaperStdin != nil {
		reaperStdin.Close()
	}
	os.RemoveAll(runDir)
}

// reap is the reaper's whole life: wait for the run to end, stop what it left.
func reap(dir string) {
	buf := make([]byte, 1)
	for {
		if _, err := os.Stdin.Read(buf); err != nil {
			break
		}
	}
	stopLeftovers(dir)
	os.RemoveAll(dir)
}

// recordServer notes a server's PID, which is also its process group's.
func recordServer(pid int) {
	f, err := os.OpenFile(filepath.Join(runDir, "pids"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintln(f, pid)
}

// stopLeftovers kills, by PID, every process of the run in dir: any whose
// command line names the folder (servers, scripts, plugin processes, also
// orphaned ones), and the rest of a recorded server's process group, if one
// of its members names the folder (else the PID was reused since). It
// returns how many it killed.
func stopLeftovers(dir string) int {
	recorded := map[string]bool{}
	if pids, err := os.ReadFile(filepath.Join(dir, "pids")); err == nil {
		for _, pid := range strings.Fields(string(pids)) {
			recorded[pid] = true
		}
	}
	all := processes()
	ours := map[int]bool{}
	for _, p := range all {
		if strings.Contains(p.args, dir) {
			ours[p.pid] = true
			ours[-p.group] = recorded[strconv.Itoa(p.group)]
		}
	}
	killed := 0
	for _, p := range all {
		if p.pid != os.Getpid() && (ours[p.pid] || ours[-p.group]) && syscall.Kill(p.pid, syscall.SIGKILL) == nil {
			killed++
		}
	}
	return killed
}

// process is one line of ps.
type process struct {
	pid, parent, group int
	args               string
}

// processes lists the machine's live processes, zombies left out: the one
// parser of ps's output.
func processes() []process {
	out, err := runCommand(30*time.Second, "ps", "-e", "-o", "pid=,ppid=,pgid=,stat=,args=")
	if err != nil {
		return nil
	}
	var all []process
	for _, line := range strings.Split(out, "\n") {
		fields := strings.Fields(line)
		if len(fields) < 5 || strings.HasPrefix(fields[3], "Z") {
			continue
		}
		p := process{args: strings.Join(fields[4:], " ")}
		p.pid, _ = strconv.Atoi(fields[0])
		p.parent, _ = strconv.Atoi(fields[1])
		p.group, _ = strconv.Atoi(fields[2])
		all = append(all, p)
	}
	return all
}

// processesWhere lists the live processes keep says yes to: the one filter
// over processes, so that every test asks ps the same way.
func processesWhere(keep func(process) bool) []process {
	var found []process
	for _, p := range processes() {
		if keep(p) {
			found = append(found, p)
		}
	}
	return found
}

// processesUnder maps the PID of each live process started from a program
// in dir, such as a node's plugin directory, to its command line.
func processesUnder(dir string) map[int]string {
	found := map[int]string{}
	for _, p := range processesWhere(func(p process) bool {
		return strings.HasPrefix(p.args, dir+string(filepath.Separator))
	}) {
		found[p.pid] = p.args
	}
	return found
}

// alive tells whether the process pid runs.
func alive(pid string) bool {
	n, err := strconv.Atoi(pid)
	return err == nil && n > 0 && syscall.Kill(n, 0) == nil
}

// startFakeRun makes a run folder with a "server" that names the folder on
// its command line and has a child that does not, as Vault and a plugin
// process, and returns the folder and both PIDs.
func startFakeRun(t *testing.T, owner int) (dir string, server, child int) {
	t.Helper()
	dir, err := os.MkdirTemp(runsDir, "run-")
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
	waitFor(t, 10*time.Second, what, func() (bool, string) {
		for _, p := range processes() {
			if slices.Contains(pids, p.pid) {
				return false, fmt.Sprintf("%d still runs: %s", p.pid, p.args)
			}
		}
		return true, ""
	})
}

// running fails the test unless every one of pids runs.
func running(t *testing.T, pids ...int) {
	t.Helper()
	live := map[int]bool{}
	for _, p := range processes() {
		live[p.pid] = true
	}
	for _, pid := range pids {
		if !live[pid] {
			t.Fatalf("%d does not run", pid)
		}
	}
}
