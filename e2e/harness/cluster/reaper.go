package cluster

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Nothing a run starts may outlive it, even when a test panics or `go test
// -timeout` ends the process before any cleanup runs. Each run works in its
// own folder under runsDir and records there its own PID and that of every
// server it starts. A reaper process waits for the run to end, however it
// ends, and then stops what is left; the next run does the same for any run
// whose process is gone.

var RunsDir = filepath.Join(os.TempDir(), "vault-plugin-e2e-runs")

const ReaperEnv = "E2E_REAP_RUN"

// runDir is this run's folder: TMPDIR points there, so that every folder the
// tests and their scripts make, and every process working in one, can be
// told apart from anything else on the machine.
var runDir string

// StartRun makes the run's folder, stops what earlier runs left, and starts
// the reaper.
func StartRun() error {
	if err := os.MkdirAll(RunsDir, 0o755); err != nil {
		return err
	}
	StopEarlierRuns()
	dir, err := os.MkdirTemp(RunsDir, "run-")
	if err != nil {
		return err
	}
	runDir = dir
	if err := os.WriteFile(filepath.Join(dir, "owner"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return err
	}
	os.Setenv("TMPDIR", dir)
	reaperStdin, err = StartReaper(dir)
	return err
}

// StopEarlierRuns stops what each earlier run left, unless it still runs,
// and removes its folder.
func StopEarlierRuns() {
	earlier, _ := filepath.Glob(filepath.Join(RunsDir, "run-*"))
	for _, dir := range earlier {
		if owner, err := os.ReadFile(filepath.Join(dir, "owner")); err == nil && alive(strings.TrimSpace(string(owner))) {
			continue // another run, still going
		}
		StopLeftovers(dir)
		os.RemoveAll(dir)
	}
}

// StartReaper starts a process that reads its stdin until the run is gone,
// whatever ends it (the pipe closes with the process), and then stops
// what is left in dir.
func StartReaper(dir string) (io.Closer, error) {
	reaper := exec.Command(os.Args[0])
	reaper.Env = append(os.Environ(), ReaperEnv+"="+dir)
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

// EndRun stops what is left of this run and removes its folder.
func EndRun() {
	StopLeftovers(runDir)
	if reaperStdin != nil {
		reaperStdin.Close()
	}
	os.RemoveAll(runDir)
}

// Reap is the reaper's whole life: wait for the run to end, stop what it left.
func Reap(dir string) {
	buf := make([]byte, 1)
	for {
		if _, err := os.Stdin.Read(buf); err != nil {
			break
		}
	}
	StopLeftovers(dir)
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

// StopLeftovers kills, by PID, every process of the run in dir: any whose
// command line names the folder (servers, scripts, plugin processes, also
// orphaned ones), and the rest of a recorded server's process group, if one
// of its members names the folder (else the PID was reused since). It
// returns how many it killed.
func StopLeftovers(dir string) int {
	recorded := map[string]bool{}
	if pids, err := os.ReadFile(filepath.Join(dir, "pids")); err == nil {
		for _, pid := range strings.Fields(string(pids)) {
			recorded[pid] = true
		}
	}
	all := Processes()
	ours := map[int]bool{}
	for _, p := range all {
		if strings.Contains(p.Args, dir) {
			ours[p.PID] = true
			ours[-p.Group] = recorded[strconv.Itoa(p.Group)]
		}
	}
	killed := 0
	for _, p := range all {
		if p.PID != os.Getpid() && (ours[p.PID] || ours[-p.Group]) && syscall.Kill(p.PID, syscall.SIGKILL) == nil {
			killed++
		}
	}
	return killed
}

// Process is one line of ps.
type Process struct {
	PID, Parent, Group int
	Args               string
}

// Processes lists the machine's live Processes, zombies left out: the one
// parser of ps's output.
func Processes() []Process {
	out, err := RunCommand(30*time.Second, "ps", "-e", "-o", "pid=,ppid=,pgid=,stat=,args=")
	if err != nil {
		return nil
	}
	var all []Process
	for _, line := range strings.Split(out, "\n") {
		fields := strings.Fields(line)
		if len(fields) < 5 || strings.HasPrefix(fields[3], "Z") {
			continue
		}
		p := Process{Args: strings.Join(fields[4:], " ")}
		p.PID, _ = strconv.Atoi(fields[0])
		p.Parent, _ = strconv.Atoi(fields[1])
		p.Group, _ = strconv.Atoi(fields[2])
		all = append(all, p)
	}
	return all
}

// ProcessesWhere lists the live processes keep says yes to: the one filter
// over processes, so that every test asks ps the same way.
func ProcessesWhere(keep func(Process) bool) []Process {
	var found []Process
	for _, p := range Processes() {
		if keep(p) {
			found = append(found, p)
		}
	}
	return found
}

// ProcessesUnder maps the PID of each live process started from a program
// in dir, such as a node's plugin directory, to its command line.
func ProcessesUnder(dir string) map[int]string {
	found := map[int]string{}
	for _, p := range ProcessesWhere(func(p Process) bool {
		return strings.HasPrefix(p.Args, dir+string(filepath.Separator))
	}) {
		found[p.PID] = p.Args
	}
	return found
}

// alive tells whether the process pid runs.
func alive(pid string) bool {
	n, err := strconv.Atoi(pid)
	return err == nil && n > 0 && syscall.Kill(n, 0) == nil
}
