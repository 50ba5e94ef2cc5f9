package cluster

import (
	"context"
	"fmt"
	"os/exec"
	"testing"
	"time"
)

// Every wait in the tests has a deadline: a Vault that never answers, or a
// program that hangs, fails a test instead of stalling the run.

// Poll calls done every 50 ms until it says true or timeout passes; the
// error then says what done last got, for the caller to add what it wanted.
func Poll(timeout time.Duration, done func() (bool, string)) error {
	var last string
	for deadline := time.Now().Add(timeout); ; time.Sleep(50 * time.Millisecond) {
		var ok bool
		if ok, last = done(); ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("got %s after %v", last, timeout)
		}
	}
}

// WaitFor is poll that fails the test, saying what it got and what it
// waited for.
func WaitFor(t testing.TB, timeout time.Duration, what string, done func() (bool, string)) {
	t.Helper()
	if err := Poll(timeout, done); err != nil {
		t.Fatalf("%v, want %s", err, what)
	}
}

// RunCommand runs a program with a deadline and returns its combined output.
func RunCommand(timeout time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}
