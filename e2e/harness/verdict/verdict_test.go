package verdict

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// useFile points FileEnv at a fresh file for the rest of t.
func useFile(t *testing.T) string {
	path := filepath.Join(t.TempDir(), "verdicts.jsonl")
	t.Setenv(FileEnv, path)
	return path
}

func TestRoundTrip(t *testing.T) {
	path := useFile(t)
	var ops []string
	for i := range maxOperations + 2 {
		ops = append(ops, fmt.Sprintf("write %d", i))
	}
	Violation(t, "history refused", ops...)
	Undecided(t, "history refused", "read a")
	Violation(t, "no progress")

	got, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []Verdict{
		{Test: t.Name(), Check: "history refused", Operations: ops[:maxOperations], Omitted: 2},
		{Test: t.Name(), Check: "history refused", Undecided: true, Operations: []string{"read a"}},
		{Test: t.Name(), Check: "no progress"},
	}
	if !slices.EqualFunc(got, want, func(a, b Verdict) bool {
		return a.Test == b.Test && a.Check == b.Check && a.Undecided == b.Undecided &&
			slices.Equal(a.Operations, b.Operations) && a.Omitted == b.Omitted
	}) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

// TestConcurrentWriters writes lines long enough that two interleaved
// writes would split one.
func TestConcurrentWriters(t *testing.T) {
	path := useFile(t)
	const writers, each = 8, 50
	pad := strings.Repeat("x", 32<<10)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				Violation(t, "history refused", fmt.Sprintf("%d/%d %s", w, i, pad))
			}
		})
	}
	wg.Wait()

	got, err := Read(path)
	if err != nil {
		t.Fatalf("got %v, want whole lines", err)
	}
	seen := map[string]bool{}
	for _, v := range got {
		if len(v.Operations) != 1 || !strings.HasSuffix(v.Operations[0], " "+pad) {
			t.Fatalf("got a verdict with operations %.80q, want one ending in the padding", v.Operations)
		}
		seen[strings.TrimSuffix(v.Operations[0], " "+pad)] = true
	}
	if len(got) != writers*each || len(seen) != writers*each {
		t.Errorf("got %d verdicts, %d distinct, want %d of each", len(got), len(seen), writers*each)
	}
}

func TestUnsetWritesNothing(t *testing.T) {
	t.Setenv(FileEnv, "") // restores the variable after the test
	os.Unsetenv(FileEnv)
	dir := t.TempDir()
	t.Chdir(dir)
	r := &recorder{TB: t}
	Violation(r, "history refused", "write a")
	Undecided(r, "history refused", "write a")
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 || len(r.errs) != 0 {
		t.Errorf("got files %v (%v) and errors %q, want neither", entries, err, r.errs)
	}
}

func TestReadMissingFile(t *testing.T) {
	got, err := Read(filepath.Join(t.TempDir(), "none.jsonl"))
	if got != nil || err != nil {
		t.Errorf("got %v, %v, want no verdicts and no error", got, err)
	}
}

// TestFailedWriteFailsTheTest: a verdict lost would count a bug caught as
// missed, so the test that could not record it must fail.
func TestFailedWriteFailsTheTest(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no such directory", "verdicts.jsonl")
	t.Setenv(FileEnv, path)
	r := &recorder{TB: t}
	Violation(r, "history refused")
	if len(r.errs) != 1 || !strings.Contains(r.errs[0], path) {
		t.Errorf("got errors %q, want one naming the reason", r.errs)
	}
}

// recorder keeps the errors reported to it instead of failing the test, so
// that a test can see whether Violation reported one.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}
