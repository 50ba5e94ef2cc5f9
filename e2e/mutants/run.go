package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"go/format"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/verdict"
)

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
	files, err := planted(filepath.Join(root, m.Plugin), m)
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

// copyEngine copies the own files of the plugin in folder plugin: for the
// static engine the root module's, for the dynamic plugin its module's and
// redistest's. Other modules and build output would only slow every copy,
// and no suite needs them.
func copyEngine(root, plugin, dst string) error {
	if plugin != "" {
		if err := copyFiles(filepath.Join(root, plugin), dst); err != nil {
			return err
		}
		return os.CopyFS(filepath.Join(dst, "redistest"), os.DirFS(filepath.Join(root, plugin, "redistest")))
	}
	if err := copyFiles(root, dst); err != nil {
		return err
	}
	// The unit tests run the API's cases from the root module's package, and
	// read back the storage entries of earlier releases from testdata.
	if err := os.Mkdir(filepath.Join(dst, "apicases"), 0o755); err != nil {
		return err
	}
	if err := copyFiles(filepath.Join(root, "apicases"), filepath.Join(dst, "apicases")); err != nil {
		return err
	}
	return os.CopyFS(filepath.Join(dst, "testdata"), os.DirFS(filepath.Join(root, "testdata")))
}

// copyFiles copies the Go files, go.mod, go.sum and Makefile of folder src,
// not its sub-folders, into dst.
func copyFiles(src, dst string) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := e.Name()
		wanted := strings.HasSuffix(name, ".go") || name == "go.mod" || name == "go.sum" || name == "Makefile"
		if !wanted || !e.Type().IsRegular() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dst, name), data, 0o644); err != nil {
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
	broken           // the mutant or its tests do not build, or its verdicts cannot be read
	builtOnly        // no selected suite names the mutation, so it only had to build
)

// outcome is one run of one suite against one mutant.
type outcome struct {
	mutation, suite string
	status          status
	why             string        // why the run does not count as caught
	failed          []string      // top-level tests that failed
	caughtAs        []string      // the checks whose verdicts named a violation
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
	if err := copyEngine(d.root, m.Plugin, copyDir); err != nil {
		return nil, err
	}
	if err := plant(copyDir, m); err != nil {
		return nil, err
	}
	log := logPath(d, m.Name, "build", run)
	fmt.Printf("mutants: %s, run %d/%d: go build, log %s\n", m.Name, run, runs, log)
	build, err := watch(command(ctx, copyDir, "build", "./..."), log, os.Stdout)
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

// runSuite runs one suite against the mutant in copyDir; the e2e suites run
// from their folder and build the copy that PLUGIN_SOURCE names.
func runSuite(ctx context.Context, mutation, suite string, run, runs int, copyDir string, d dirs) (outcome, error) {
	s := suites[suite]
	dir := copyDir
	if s.dir != "" {
		dir = filepath.Join(d.root, s.dir)
	}
	log := logPath(d, mutation, suite, run)
	fmt.Printf("mutants: %s, run %d/%d: %s suite, log %s\n", mutation, run, runs, suite, log)
	cmd := command(ctx, dir, s.args...)
	cmd.Env = append(append(os.Environ(), "PLUGIN_SOURCE="+copyDir), s.env...)
	// The e2e suites' checks write verdicts; the engine's own unit tests
	// know nothing of them.
	o, err := judge(cmd, log, os.Stdout, s.dir != "")
	o.mutation, o.suite = mutation, suite
	return o, err
}

// logPath names a run's log after what ran, so that a row of the report
// leads to its logs.
func logPath(d dirs, mutation, suite string, run int) string {
	return filepath.Join(d.out, fmt.Sprintf("%s-%s-%d.log", mutation, suite, run))
}

// verdictsPath puts a run's verdicts beside its log, so that the report can
// be checked against both.
func verdictsPath(log string) string {
	return strings.TrimSuffix(log, ".log") + ".verdicts.jsonl"
}

// judge runs cmd with its verdicts going to a file beside log, its output to
// log and term, and says what the run found; checked says the suite's checks
// write verdicts.
func judge(cmd *exec.Cmd, log string, term io.Writer, checked bool) (outcome, error) {
	path := verdictsPath(log)
	// A file left by an earlier run would lend this one its verdicts.
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return outcome{}, err
	}
	cmd.Env = append(cmd.Environ(), verdict.FileEnv+"="+path)
	w, err := watch(cmd, log, term)
	if err != nil {
		return outcome{}, err
	}
	vs, err := verdict.Read(path)
	if err != nil {
		return outcome{status: broken, why: "unreadable verdicts: " + err.Error()}, nil
	}
	return decide(w, checked, vs), nil
}

// decide says what a run found, from go test's own output and the verdicts,
// never from the checks' messages, whose wording is theirs to change. In a
// suite whose checks write verdicts a failure counts as a bug caught only
// when a check named a violation: such a suite also fails for reasons that
// say nothing of the bug, a cluster that did not start or a history the
// checker could not decide. A test that hung counts: go test's -timeout
// stops the run before any check could speak.
func decide(w *watcher, checked bool, vs []verdict.Verdict) outcome {
	o := outcome{failed: w.failed, toFailure: w.toFailure}
	undecided := false
	for _, v := range vs {
		switch {
		case v.Undecided:
			undecided = true
		case !slices.Contains(o.caughtAs, v.Check):
			o.caughtAs = append(o.caughtAs, v.Check)
		}
	}
	switch {
	case !w.exitFailed:
		o.status, o.why = missed, "suite passed"
	case w.noBuild:
		o.status, o.why = broken, "tests do not build"
	case len(o.caughtAs) > 0 || w.timedOut:
		o.status = caught
	case undecided:
		o.status, o.why = missed, "history check timed out"
	case checked:
		o.status, o.why = missed, "failed, but no check named a violation"
	case len(w.failed) == 0:
		o.status, o.why = missed, "failed, but no test did"
	default:
		o.status = caught
	}
	return o
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

// failLine is go test's own line for a failed test, which the names of the
// failed tests and the time to the first failure are read from.
var failLine = regexp.MustCompile(`^\s*--- FAIL: (\S+)`)

// watcher passes a suite's output on and notes what go test says in it as
// the lines go by, so that the time to the first failure is the real one.
type watcher struct {
	out     io.Writer
	start   time.Time
	partial []byte

	exitFailed bool
	// sawFailure: a --- FAIL: line went by, toFailure after the start.
	sawFailure bool
	toFailure  time.Duration
	failed     []string // top-level names
	timedOut   bool     // go test's -timeout panicked: a test hung
	noBuild    bool     // a package failed to build or set up
}

// watch runs cmd, its output going to term and to logPath: term is the
// terminal, but for a test of the runner, whose own output must not carry
// another run's --- FAIL: lines.
func watch(cmd *exec.Cmd, logPath string, term io.Writer) (*watcher, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	w := &watcher{out: io.MultiWriter(term, f), start: time.Now()}
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

// Write cuts the output into lines, keeping a partial one for the next
// write, since a line may come in pieces.
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

// line notes what go test itself says in s: only its own lines are read,
// since the tests' messages may be reworded at any time.
func (w *watcher) line(s string) {
	if m := failLine.FindStringSubmatch(s); m != nil {
		if !w.sawFailure {
			w.sawFailure, w.toFailure = true, time.Since(w.start)
		}
		if name, _, _ := strings.Cut(m[1], "/"); !slices.Contains(w.failed, name) {
			w.failed = append(w.failed, name)
		}
	}
	switch {
	case strings.HasPrefix(s, "panic: test timed out after"):
		w.timedOut = true
	case strings.HasSuffix(s, "[build failed]") || strings.HasSuffix(s, "[setup failed]"):
		w.noBuild = true
	}
}
