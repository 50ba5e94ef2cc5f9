// Command mutants plants known bugs in copies of the engine and runs the test
// suites against each copy: a suite that passes with a bug planted guards
// less than it seems to. `make mutants` runs it from e2e/. When the engine
// changes, edit the table in mutations so that each bug is planted again.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"go/format"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

// edit replaces Old by New in File, a path from the repository's root. Old
// must occur exactly once unless All is set, so that a change to the engine
// makes the edit fail instead of planting its bug somewhere else.
type edit struct {
	File     string
	Old, New string
	All      bool
}

// appendix is code added at the end of File: the state or helpers a bug needs.
type appendix struct {
	File, Code string
}

// mutation is one planted bug and the suites that must catch it.
type mutation struct {
	Name, Desc string
	Edits      []edit
	Append     []appendix
	Suites     []string
}

const secretsFile = "path_secrets.go"

// Where secretWrite and secretDelete have just taken the name's lock.
const (
	writeLocked  = "\tcurrent, err := b.lockedMetadata(ctx, req.Storage, name)\n"
	deleteLocked = "\tif err := req.Storage.Delete(ctx, secretStorageKey(name)); err != nil {\n"
)

var unitAndChaos = []string{"unit", "chaos"}

var mutations = []mutation{
	{
		Name:   "no-name-lock",
		Desc:   "writes and deletes take a fresh lock instead of the name's",
		Edits:  []edit{{File: secretsFile, Old: "locksutil.LockForKey(b.secretLocks, name)", New: "&locksutil.LockEntry{}", All: true}},
		Suites: unitAndChaos,
	},
	{
		Name:   "write-5xx",
		Desc:   "about one write in twenty answers 500 before storing anything",
		Edits:  []edit{insertBefore(secretsFile, writeLocked, answer500(oneIn(20)))},
		Suites: unitAndChaos,
	},
	{
		Name: "create-overwrites",
		Desc: "a write Vault authorised as a create overwrites a secret created meanwhile",
		Edits: []edit{remove(secretsFile, `	if req.Operation == logical.CreateOperation && current != nil {
		return logical.ErrorResponse("name: secret was created by another request since this write began; retry"), nil
	}
`)},
		Suites: unitAndChaos,
	},
	{
		Name: "update-creates",
		Desc: "a write Vault authorised as an update creates a secret deleted meanwhile",
		Edits: []edit{remove(secretsFile, `	if req.Operation == logical.UpdateOperation && current == nil {
		return logical.ErrorResponse("name: secret was deleted by another request since this write began; retry"), nil
	}
`)},
		Suites: unitAndChaos,
	},
	{
		Name: "version-skip",
		Desc: "about one write in ten stores version current+2 instead of current+1",
		Edits: []edit{insertBefore(secretsFile, "\tvalue, err := encodeSecret(&meta, encodedData)\n",
			"\tif current != nil && "+oneIn(10)+" {\n\t\tmeta.Version++\n\t}\n")},
		Suites: unitAndChaos,
	},
	{
		Name:   "delete-not-done",
		Desc:   "about one delete in ten answers 204 without deleting",
		Edits:  []edit{insertBefore(secretsFile, deleteLocked, "\tif "+oneIn(10)+" {\n\t\treturn nil, nil\n\t}\n")},
		Suites: unitAndChaos,
	},
	{
		Name: "stale-read",
		Desc: "reads come from a per-process copy up to 2 s old that writes do not refresh",
		Edits: []edit{
			{File: secretsFile, Old: "\t\"strings\"\n\t\"time\"\n", New: "\t\"strings\"\n\t\"sync\"\n\t\"time\"\n"},
			{File: secretsFile, Old: "getSecret(ctx, req.Storage, secretStorageKey(name), true)",
				New: "recentSecret(ctx, req.Storage, secretStorageKey(name))"},
		},
		Append: []appendix{{File: secretsFile, Code: recentSecretCode}},
		Suites: unitAndChaos,
	},
	{
		Name: "invalidate-forgets",
		Desc: "Invalidate forgets nothing, so a node's cache keeps what another node replaced",
		Edits: []edit{
			{File: "backend.go", Old: "\t\tb.config = nil\n", New: ""},
			{File: "backend.go", Old: "\t\tb.metadata.Remove(name)\n\t\tlock.Unlock()\n", New: "\t\tlock.Unlock()\n"},
		},
		// Vault Community never calls Invalidate; an OpenBao standby does, and
		// answers config reads from its cache.
		Suites: []string{"unit", "chaos-openbao"},
	},
	{
		Name:   "late-5xx",
		Desc:   "once the plugin process is 5 s old, about one write in twenty answers 500",
		Edits:  []edit{insertBefore(secretsFile, writeLocked, answer500("time.Since(started) > 5*time.Second && "+oneIn(20)))},
		Append: []appendix{{File: secretsFile, Code: "\n// started is when this plugin process began.\nvar started = time.Now()\n"}},
		// The unit suite is over in about two seconds.
		Suites: []string{"chaos"},
	},
}

// recentSecretCode is a cache as one might add for speed: keyed by storage
// key alone, so mounts share it, and never refreshed by a write.
const recentSecretCode = `
var (
	recentMu      sync.Mutex
	recentSecrets = map[string]recentSecretEntry{}
)

type recentSecretEntry struct {
	entry *secretEntry
	read  time.Time
}

func recentSecret(ctx context.Context, s logical.Storage, key string) (*secretEntry, error) {
	recentMu.Lock()
	defer recentMu.Unlock()
	if r, ok := recentSecrets[key]; ok && time.Since(r.read) < 2*time.Second {
		return r.entry, nil
	}
	entry, err := getSecret(ctx, s, key, true)
	if err != nil {
		return nil, err
	}
	recentSecrets[key] = recentSecretEntry{entry: entry, read: time.Now()}
	return entry, nil
}
`

func insertBefore(file, anchor, code string) edit {
	return edit{File: file, Old: anchor, New: code + anchor}
}

func remove(file, old string) edit {
	return edit{File: file, Old: old}
}

// oneIn is a condition true about once in n calls. It counts microseconds:
// macOS's wall clock has no finer grain, and a multiple of 1000 nanoseconds
// is always a multiple of 20.
func oneIn(n int) string {
	return fmt.Sprintf("time.Now().UnixNano()/1000%%%d == 0", n)
}

// answer500 fails a request with a plain error, which Vault answers with a 500.
func answer500(cond string) string {
	return "\tif " + cond + " {\n\t\treturn nil, fmt.Errorf(\"storage busy\")\n\t}\n"
}

// suites are the test suites a mutation can name. Each runs against a copy of
// the engine: unit in the copy, the others in e2e/ with PLUGIN_SOURCE naming
// the copy. chaos-openbao is the run on OpenBao whose standbys answer reads
// through their own plugin process.
var suites = map[string]struct {
	inE2E bool
	env   []string
	args  []string
}{
	"unit":          {false, nil, []string{"test", "-race", "-count=1", "./..."}},
	"chaos":         {true, nil, []string{"test", "-count=1", "-timeout", "20m", "-run", "^TestChaos", "-v", "./..."}},
	"chaos-openbao": {true, []string{"E2E_SERVER=openbao"}, []string{"test", "-count=1", "-timeout", "20m", "-run", "^TestChaos_StandbyReads", "-v", "./..."}},
}

// timedOutMarker is what the e2e history check prints when porcupine gave up:
// the history is neither proven right nor wrong, so no bug was caught.
const timedOutMarker = "the history check timed out"

// dirs are where the program reads the engine and writes its logs.
type dirs struct {
	root, e2e, out string
}

func main() {
	runs := flag.Int("runs", 1, "runs of each suite against each mutation")
	only := flag.String("only", "", "comma-separated mutations to run (default all)")
	suiteList := flag.String("suites", "unit,chaos,chaos-openbao", "comma-separated suites to run")
	flag.Parse()
	code, err := run(*runs, *only, *suiteList)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mutants:", err)
		code = 2
	}
	os.Exit(code)
}

// run returns the exit code: 1 when a mutant got past a suite or did not build.
func run(runs int, only, suiteList string) (int, error) {
	if runs < 1 {
		return 0, fmt.Errorf("-runs must be at least 1")
	}
	if err := checkTable(); err != nil {
		return 0, err
	}
	chosen, err := choose(only)
	if err != nil {
		return 0, err
	}
	selected, err := chooseSuites(suiteList)
	if err != nil {
		return 0, err
	}
	d, err := findDirs()
	if err != nil {
		return 0, err
	}
	// Every edit is tried against the engine first, so a stale mutation
	// fails in a second, not after an hour of the suites before it.
	for _, m := range chosen {
		if err := checkPlanted(d.root, m); err != nil {
			return 0, err
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var outcomes []outcome
	for _, m := range chosen {
		for r := 1; r <= runs && ctx.Err() == nil; r++ {
			outs, err := runMutant(ctx, m, r, runs, selected, d)
			if err != nil {
				return 0, err
			}
			outcomes = append(outcomes, outs...)
		}
	}
	rows := summarise(outcomes)
	printTable(os.Stdout, rows)
	if err := writeReport(filepath.Join(d.out, "report.md"), rows, chosen, runs); err != nil {
		return 0, err
	}
	if ctx.Err() != nil {
		return 0, fmt.Errorf("interrupted")
	}
	for _, row := range rows {
		if row.fails() {
			return 1, nil
		}
	}
	return 0, nil
}

// checkTable refuses a table that would plant nothing or name no suite.
func checkTable() error {
	seen := map[string]bool{}
	for _, m := range mutations {
		if m.Name == "" || seen[m.Name] || strings.ContainsAny(m.Name, "/, ") {
			return fmt.Errorf("mutation %q: names must be unique, without '/', ',' or spaces", m.Name)
		}
		seen[m.Name] = true
		if len(m.Edits)+len(m.Append) == 0 || len(m.Suites) == 0 {
			return fmt.Errorf("mutation %s: needs an edit and a suite", m.Name)
		}
		for _, e := range m.Edits {
			if e.Old == "" {
				return fmt.Errorf("mutation %s: an edit of %s has no old text", m.Name, e.File)
			}
		}
		for _, s := range m.Suites {
			if _, ok := suites[s]; !ok {
				return fmt.Errorf("mutation %s: no suite %q", m.Name, s)
			}
		}
	}
	return nil
}

func choose(only string) ([]mutation, error) {
	if only == "" {
		return mutations, nil
	}
	var chosen []mutation
	for _, name := range strings.Split(only, ",") {
		i := slices.IndexFunc(mutations, func(m mutation) bool { return m.Name == name })
		if i < 0 {
			return nil, fmt.Errorf("-only: no mutation %q", name)
		}
		chosen = append(chosen, mutations[i])
	}
	return chosen, nil
}

func chooseSuites(list string) ([]string, error) {
	var chosen []string
	for _, s := range strings.Split(list, ",") {
		if _, ok := suites[s]; !ok {
			return nil, fmt.Errorf("-suites: no suite %q", s)
		}
		chosen = append(chosen, s)
	}
	return chosen, nil
}

// findDirs expects to run in e2e/, beside the engine's root module.
func findDirs() (dirs, error) {
	e2e, err := os.Getwd()
	if err != nil {
		return dirs{}, err
	}
	root := filepath.Dir(e2e)
	for _, f := range []string{filepath.Join(e2e, "go.mod"), filepath.Join(root, "go.mod")} {
		if _, err := os.Stat(f); err != nil {
			return dirs{}, fmt.Errorf("run from e2e/, beside the root module (make mutants does): %w", err)
		}
	}
	d := dirs{root: root, e2e: e2e, out: filepath.Join(e2e, ".mutants")}
	return d, os.MkdirAll(d.out, 0o755)
}

// planted returns the files m changes as they read with m planted in the
// engine under dir. An edit whose old text is gone fails: the engine changed,
// and the mutation must be written again.
func planted(dir string, m mutation) (map[string][]byte, error) {
	files := map[string][]byte{}
	read := func(name string) ([]byte, error) {
		if src, ok := files[name]; ok {
			return src, nil
		}
		return os.ReadFile(filepath.Join(dir, name))
	}
	for i, e := range m.Edits {
		src, err := read(e.File)
		if err != nil {
			return nil, fmt.Errorf("mutation %s, edit %d: %w", m.Name, i+1, err)
		}
		switch n := bytes.Count(src, []byte(e.Old)); {
		case n == 0:
			return nil, fmt.Errorf("mutation %s, edit %d: the engine changed, this text is no longer in %s; edit the table:\n%s",
				m.Name, i+1, e.File, e.Old)
		case n > 1 && !e.All:
			return nil, fmt.Errorf("mutation %s, edit %d: this text occurs %d times in %s; quote more of it, or set All:\n%s",
				m.Name, i+1, n, e.File, e.Old)
		}
		files[e.File] = bytes.ReplaceAll(src, []byte(e.Old), []byte(e.New))
	}
	for _, a := range m.Append {
		src, err := read(a.File)
		if err != nil {
			return nil, fmt.Errorf("mutation %s, appendix: %w", m.Name, err)
		}
		files[a.File] = append(src, a.Code...)
	}
	return files, nil
}

// checkPlanted plants m in memory. Code that gofmt would change only earns a
// warning: the compiler, not gofmt, decides whether a mutant can run.
func checkPlanted(root string, m mutation) error {
	files, err := planted(root, m)
	if err != nil {
		return err
	}
	for name, src := range files {
		if !strings.HasSuffix(name, ".go") {
			continue
		}
		if formatted, err := format.Source(src); err != nil || !bytes.Equal(formatted, src) {
			fmt.Fprintf(os.Stderr, "mutants: warning: mutation %s leaves %s not gofmt-clean\n", m.Name, name)
		}
	}
	return nil
}

// copyEngine copies the root module's own files: sub-modules and build
// output would only slow every copy, and no suite needs them.
func copyEngine(root, dst string) error {
	entries, err := os.ReadDir(root)
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := e.Name()
		wanted := strings.HasSuffix(name, ".go") || name == "go.mod" || name == "go.sum" || name == "Makefile"
		if !wanted || !e.Type().IsRegular() {
			continue
		}
		src, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dst, name), src, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// plant writes m into the copy of the engine under dir.
func plant(dir string, m mutation) error {
	files, err := planted(dir, m)
	if err != nil {
		return err
	}
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), src, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// status is what one run of a suite says of a mutant.
type status int

const (
	caught    status = iota
	missed           // the suite ran and let the bug through, or could not tell
	broken           // the mutant or its tests do not build: the table is wrong
	builtOnly        // no selected suite names the mutation, so it only had to build
)

// outcome is one run of one suite against one mutant.
type outcome struct {
	mutation, suite string
	status          status
	why             string        // why the run does not count as caught
	failed          []string      // top-level tests that failed
	caughtAs        []string      // the checks that named the bug
	toFailure       time.Duration // to the first --- FAIL: line, or to the end
}

// runMutant plants m in a fresh copy of the engine and runs against it each
// selected suite that m names.
func runMutant(ctx context.Context, m mutation, run, runs int, selected []string, d dirs) ([]outcome, error) {
	var todo []string
	for _, s := range selected {
		if slices.Contains(m.Suites, s) {
			todo = append(todo, s)
		}
	}
	if len(todo) == 0 && run > 1 {
		return nil, nil
	}
	copyDir, err := os.MkdirTemp("", "mutant-"+m.Name+"-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(copyDir)
	if err := copyEngine(d.root, copyDir); err != nil {
		return nil, err
	}
	if err := plant(copyDir, m); err != nil {
		return nil, err
	}
	log := logPath(d, m.Name, "build", run)
	fmt.Printf("mutants: %s, run %d/%d: go build, log %s\n", m.Name, run, runs, log)
	build, err := watch(command(ctx, copyDir, "build", "./..."), log)
	switch {
	case ctx.Err() != nil:
		return nil, nil
	case err != nil:
		return nil, err
	case build.exitFailed:
		return []outcome{{mutation: m.Name, suite: "build", status: broken, why: "does not compile, see " + log}}, nil
	case len(todo) == 0:
		return []outcome{{mutation: m.Name, suite: "-", status: builtOnly, why: "only for " + strings.Join(m.Suites, ",")}}, nil
	}
	var outs []outcome
	for _, s := range todo {
		o, err := runSuite(ctx, m.Name, s, run, runs, copyDir, d)
		if ctx.Err() != nil {
			return outs, nil // a suite cut short says nothing of the mutant
		}
		if err != nil {
			return outs, err
		}
		outs = append(outs, o)
	}
	return outs, nil
}

func runSuite(ctx context.Context, mutation, suite string, run, runs int, copyDir string, d dirs) (outcome, error) {
	s := suites[suite]
	dir := copyDir
	if s.inE2E {
		dir = d.e2e
	}
	log := logPath(d, mutation, suite, run)
	fmt.Printf("mutants: %s, run %d/%d: %s suite, log %s\n", mutation, run, runs, suite, log)
	cmd := command(ctx, dir, s.args...)
	cmd.Env = append(append(os.Environ(), "PLUGIN_SOURCE="+copyDir), s.env...)
	w, err := watch(cmd, log)
	if err != nil {
		return outcome{}, err
	}
	o := outcome{mutation: mutation, suite: suite, failed: w.failed, caughtAs: w.caughtAs, toFailure: w.toFailure}
	o.status, o.why = w.verdict()
	return o, nil
}

func logPath(d dirs, mutation, suite string, run int) string {
	return filepath.Join(d.out, fmt.Sprintf("%s-%s-%d.log", mutation, suite, run))
}

// command runs go in dir. Ctrl-C reaches the suite from the terminal; a
// SIGTERM sent to this program alone is passed on as an interrupt, so the
// suite still stops the Vault servers it started.
func command(ctx context.Context, dir string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 2 * time.Minute
	return cmd
}

var failLine = regexp.MustCompile(`^\s*--- FAIL: (\S+)`)

// checks are what the e2e checks print when they find something, and what
// the table calls each: a run is worth as much as what named the bug.
var checks = []struct{ marker, name string }{
	{"is not linearizable", "history refused"},
	{"no definite answer outside every fault's window", "failure without a fault"},
	{"got no definite answer", "no progress"},
	{"writes acknowledged, ", "no progress"},
	{"unexpected answer:", "answer outside the API"},
	{"read what was never there", "impossible stale read"},
	{"does not read the config written", "stale cache"},
}

// watcher passes a suite's output on and notes what matters in it as the
// lines go by, so that the time to the first failure is the real one.
type watcher struct {
	out     io.Writer
	start   time.Time
	partial []byte

	exitFailed bool
	// sawFailure: a --- FAIL: line went by, toFailure after the start.
	sawFailure bool
	toFailure  time.Duration
	failed     []string // top-level names
	caughtAs   []string // what the checks reported, see checks
	timedOut   bool     // go test's -timeout panicked: a test hung
	gaveUp     bool     // porcupine gave up on a history
	noBuild    bool     // a package failed to build or set up
}

// watch runs cmd, its output going to the terminal and to logPath.
func watch(cmd *exec.Cmd, logPath string) (*watcher, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	w := &watcher{out: io.MultiWriter(os.Stdout, f), start: time.Now()}
	cmd.Stdout, cmd.Stderr = w, w
	err = cmd.Run()
	w.line(string(w.partial))
	if !w.sawFailure {
		w.toFailure = time.Since(w.start)
	}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		w.exitFailed, err = true, nil
	case errors.Is(err, exec.ErrWaitDelay):
		err = nil // it exited well; something it started kept the output open
	}
	return w, err
}

func (w *watcher) Write(p []byte) (int, error) {
	if _, err := w.out.Write(p); err != nil {
		return 0, err
	}
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		w.line(string(w.partial[:i]))
		w.partial = w.partial[i+1:]
	}
	w.partial = append([]byte(nil), w.partial...)
	return len(p), nil
}

func (w *watcher) line(s string) {
	if m := failLine.FindStringSubmatch(s); m != nil {
		if !w.sawFailure {
			w.sawFailure, w.toFailure = true, time.Since(w.start)
		}
		if name, _, _ := strings.Cut(m[1], "/"); !slices.Contains(w.failed, name) {
			w.failed = append(w.failed, name)
		}
	}
	for _, c := range checks {
		if strings.Contains(s, c.marker) && !slices.Contains(w.caughtAs, c.name) {
			w.caughtAs = append(w.caughtAs, c.name)
		}
	}
	switch {
	case strings.Contains(s, timedOutMarker):
		w.gaveUp = true
	case strings.HasPrefix(s, "panic: test timed out after"):
		w.timedOut = true
	case strings.HasSuffix(s, "[build failed]") || strings.HasSuffix(s, "[setup failed]"):
		w.noBuild = true
	}
}

// verdict counts a run as caught only when a test failed, or hung: a suite
// that fails to build or set up, or a history check that gave up, says
// nothing about the bug.
func (w *watcher) verdict() (status, string) {
	switch {
	case !w.exitFailed:
		return missed, "suite passed"
	case w.noBuild:
		return broken, "tests do not build"
	case w.gaveUp:
		return missed, "history check timed out"
	case w.timedOut:
		return caught, ""
	case len(w.failed) == 0:
		return missed, "failed, but no test did"
	}
	return caught, ""
}

// tally counts strings, keeping the order they were first seen in.
type tally struct {
	order []string
	n     map[string]int
}

func (t *tally) add(s string) {
	if t.n == nil {
		t.n = map[string]int{}
	}
	if t.n[s] == 0 {
		t.order = append(t.order, s)
	}
	t.n[s]++
}

// String shows at most limit strings (0: all), with each count only where
// it is not every run.
func (t *tally) String(runs, limit int) string {
	var parts []string
	for _, s := range t.order {
		if limit > 0 && len(parts) == limit {
			parts = append(parts, fmt.Sprintf("%d more", len(t.order)-limit))
			break
		}
		if runs > 1 && t.n[s] < runs {
			s = fmt.Sprintf("%s (%d)", s, t.n[s])
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

// row sums up the runs of one suite against one mutant.
type row struct {
	mutation, suite   string
	runs              int // every outcome, tried or not
	caught, tried     int
	broken, builtOnly bool
	tests, notes, as  tally
	fastest, slowest  time.Duration
}

// fails says whether the row makes the program exit non-zero.
func (r *row) fails() bool {
	return r.broken || (!r.builtOnly && r.caught < r.tried)
}

func summarise(outcomes []outcome) []*row {
	var rows []*row
	for _, o := range outcomes {
		i := slices.IndexFunc(rows, func(r *row) bool { return r.mutation == o.mutation && r.suite == o.suite })
		if i < 0 {
			rows = append(rows, &row{mutation: o.mutation, suite: o.suite, fastest: o.toFailure})
			i = len(rows) - 1
		}
		r := rows[i]
		r.runs++
		r.broken = r.broken || o.status == broken
		r.builtOnly = o.status == builtOnly
		if o.why != "" {
			r.notes.add(o.why)
		}
		if o.status == broken || o.status == builtOnly {
			continue
		}
		r.tried++
		if o.status == caught {
			r.caught++
		}
		for _, t := range o.failed {
			r.tests.add(t)
		}
		for _, a := range o.caughtAs {
			r.as.add(a)
		}
		r.fastest, r.slowest = min(r.fastest, o.toFailure), max(r.slowest, o.toFailure)
	}
	return rows
}

var header = []string{"mutation", "suite", "caught", "tests that failed", "caught as", "first failure (min)", "longest"}

// cells are the row's columns, naming at most limit failed tests (0: all).
func (r *row) cells(limit int) []string {
	caught, fastest, slowest := fmt.Sprintf("%d/%d", r.caught, r.tried), seconds(r.fastest), seconds(r.slowest)
	if r.broken || r.builtOnly {
		caught, fastest, slowest = "-", "-", "-"
	}
	tests := r.tests.String(r.runs, limit)
	if len(r.notes.order) > 0 {
		tests = strings.TrimPrefix(tests+"; "+r.notes.String(r.runs, 0), "; ")
	}
	if r.broken {
		caught = "BROKEN"
	}
	return []string{r.mutation, r.suite, caught, tests, r.as.String(r.runs, 0), fastest, slowest}
}

func seconds(d time.Duration) string {
	return d.Round(100 * time.Millisecond).String()
}

// printTable names a few failed tests in each row, to keep it one screen
// wide; the report names them all.
func printTable(out io.Writer, rows []*row) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r.cells(3), "\t"))
	}
	tw.Flush()
}

func writeReport(path string, rows []*row, chosen []mutation, runs int) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Mutants\n\n%s, %d run(s) of each suite; logs beside this file.\n\n", time.Now().Format(time.RFC3339), runs)
	fmt.Fprintf(&b, "| %s |\n|%s\n", strings.Join(header, " | "), strings.Repeat(" --- |", len(header)))
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s |\n", strings.Join(r.cells(0), " | "))
	}
	b.WriteString("\n")
	for _, m := range chosen {
		fmt.Fprintf(&b, "- `%s`: %s.\n", m.Name, m.Desc)
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
