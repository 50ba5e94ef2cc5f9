package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRun_VersionFlagPrintsVersion(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-version"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d, stderr %q; want exit 0", code, stderr.String())
	}
	if got := strings.TrimSpace(stdout.String()); got != version {
		t.Fatalf("printed %q, want %q", got, version)
	}
}

func TestRun_BadFlagExitsNonZeroWithMessage(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-no-such-flag"}, &stdout, &stderr); code == 0 {
		t.Fatal("exit 0 for an unknown flag, want non-zero")
	}
	if !strings.Contains(stderr.String(), "no-such-flag") {
		t.Fatalf("stderr %q, want it to name no-such-flag", stderr.String())
	}
}
