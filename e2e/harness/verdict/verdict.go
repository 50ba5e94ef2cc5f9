// Package verdict lets a test say which check found a bug in a form a program
// can read. `make mutants` counts a planted bug as caught by the verdicts a
// run leaves, not by the wording of its log, so a reworded message cannot
// quietly change the report.
package verdict

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"testing"
)

// FileEnv names the environment variable holding the file verdicts are
// appended to; unset, nothing is written, so an ordinary run leaves no files.
const FileEnv = "VERDICT_FILE"

// maxOperations bounds the operations a verdict keeps: they are there to
// recognise the violation, and the test's log already names them all.
const maxOperations = 10

// Verdict is what one check said of one test.
type Verdict struct {
	// Test is the test's full name, subtests included, so that a verdict
	// can be matched with the test's log.
	Test string `json:"test"`
	// Check names the check, as the package that owns it spells it; the
	// reader reports it as it is.
	Check string `json:"check"`
	// Undecided says the check could neither prove nor refute the history,
	// which is no bug caught.
	Undecided bool `json:"undecided,omitempty"`
	// Operations are the offending operations as text, at most
	// maxOperations of them.
	Operations []string `json:"operations,omitempty"`
	// Omitted counts the operations left out, so that a reader knows the
	// list is not whole.
	Omitted int `json:"omitted,omitempty"`
}

// mu keeps the lines of a process's writers whole; O_APPEND alone keeps the
// test binaries of one `go test ./...` from overwriting each other's lines.
var mu sync.Mutex

// Violation records that check found a bug in t. It does not fail t: the
// caller says what it found in its own words, with t.Errorf.
func Violation(t testing.TB, check string, ops ...string) {
	t.Helper()
	record(t, check, false, ops)
}

// Undecided records that check could not decide whether t's history is
// right, so that a failure for that reason is not taken for a bug caught.
func Undecided(t testing.TB, check string, ops ...string) {
	t.Helper()
	record(t, check, true, ops)
}

// record fails t when the verdict cannot be written: a lost verdict would
// turn a bug caught into one missed.
func record(t testing.TB, check string, undecided bool, ops []string) {
	t.Helper()
	path := os.Getenv(FileEnv)
	if path == "" {
		return
	}
	v := Verdict{Test: t.Name(), Check: check, Undecided: undecided, Operations: ops}
	if len(ops) > maxOperations {
		v.Operations, v.Omitted = ops[:maxOperations], len(ops)-maxOperations
	}
	if err := appendLine(path, v); err != nil {
		t.Errorf("verdict %q of %s not recorded in %s=%s: %v", check, t.Name(), FileEnv, path, err)
	}
}

// appendLine writes v as one line in a single write, so that no other
// writer's line can land inside it.
func appendLine(path string, v Verdict) error {
	line, err := json.Marshal(v)
	if err != nil {
		return err
	}
	line = append(line, '\n')
	mu.Lock()
	defer mu.Unlock()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(line)
	return errors.Join(err, f.Close())
}

// Read returns the verdicts in the file at path. A missing file holds none:
// a run whose checks found nothing writes nothing.
func Read(path string) ([]Verdict, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var vs []Verdict
	sc := bufio.NewScanner(f)
	// A line holds at most maxOperations operations, but each may be long.
	sc.Buffer(nil, 16<<20)
	for n := 1; sc.Scan(); n++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var v Verdict
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			return nil, fmt.Errorf("%s, line %d: %w", path, n, err)
		}
		vs = append(vs, v)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return vs, nil
}
