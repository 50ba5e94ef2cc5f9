// Command mutants plants known bugs in copies of the engine and runs the test
// suites against each copy: a suite that passes with a bug planted guards
// less than it seems to. `make mutants` runs it from e2e/. When the engine
// changes, edit the table in mutations.go so that each bug is planted again.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// dirs are where the program reads the engine and writes its logs.
type dirs struct {
	root, e2e, out string
}

// main leaves the work to run, so that its deferred calls happen before the
// exit.
func main() {
	runs := flag.Int("runs", 1, "runs of each suite against each mutation")
	only := flag.String("only", "", "comma-separated mutations to run (default all)")
	suiteList := flag.String("suites", "unit,chaos,chaos-openbao,api,api-openbao,leases,leases-openbao,leases-crash,leases-crash-openbao,leases-restore,leases-restore-openbao", "comma-separated suites to run")
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

// choose picks the mutations -only names, refusing a name not in the table so
// that a typo does not pass as a mutant caught.
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

// chooseSuites picks the suites -suites names, refusing a name not in suites
// for the same reason as choose.
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
