package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// tally counts strings, keeping the order they were first seen in.
type tally struct {
	order []string
	n     map[string]int
}

// add counts s once more, so that a string seen in some runs only says how
// many.
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

// summarise makes one row of each mutation and suite, in the order they
// ran, since a row of several runs says more than each run alone.
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

// header names the columns of the table and of the report alike, so that
// the two read the same.
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

// seconds rounds d to a tenth of a second: finer would be noise between runs.
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

// writeReport keeps the table, with every failed test named and each
// mutation described, beside the logs it sums up.
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
