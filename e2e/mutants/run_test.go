package main

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/verdict"
)

// Logs as go test prints them, with the checks' messages as they read
// before verdicts, and as they might read once reworded.
const (
	refusedLog = `=== RUN   TestChaos
    chaos_test.go:276: CHAOS_SEED=1: secret/a is not linearizable. Explained up to:
    --- FAIL: TestChaos/seed_1 (1.00s)
--- FAIL: TestChaos (12.00s)
FAIL
`
	rewordedLog = `=== RUN   TestChaos
    chaos_test.go:276: CHAOS_SEED=1: the model cannot explain secret/a
--- FAIL: TestChaos (12.00s)
FAIL
`
	timedOutLog = `=== RUN   TestChaos
    chaos_test.go:280: CHAOS_SEED=1: the history check timed out for [secret/a]
--- FAIL: TestChaos (12.00s)
FAIL
`
	unitLog = `--- FAIL: TestSecretWrite (0.01s)
    path_secrets_test.go:40: got version 3, want 2
FAIL
`
	hungLog = `=== RUN   TestChaos
panic: test timed out after 20m0s
	running tests:
		TestChaos (20m0s)
FAIL	github.com/vault-reference/vault-plugin-secrets-reference/e2e	1200.1s
`
	noBuildLog = "FAIL\tgithub.com/vault-reference/vault-plugin-secrets-reference/e2e [build failed]\n"
	passedLog  = "ok  \tgithub.com/vault-reference/vault-plugin-secrets-reference/e2e\t12.3s\n"
)

// watched is a watcher that has seen log go by, from a run that failed or not.
func watched(log string, failed bool) *watcher {
	w := &watcher{out: io.Discard, start: time.Now()}
	if _, err := io.WriteString(w, log); err != nil {
		panic(err)
	}
	w.exitFailed = failed
	return w
}

func TestDecide(t *testing.T) {
	refused := verdict.Verdict{Test: "TestChaos/seed_1", Check: "history refused", Operations: []string{"write a"}}
	stuck := verdict.Verdict{Test: "TestChaos/seed_1", Check: "no progress"}
	undecided := verdict.Verdict{Test: "TestChaos/seed_2", Check: "history refused", Undecided: true}
	for _, c := range []struct {
		name     string
		log      string
		failed   bool
		checked  bool // an e2e suite, whose checks write verdicts
		verdicts []verdict.Verdict
		status   status
		why      string
		caughtAs []string
		tests    []string
	}{
		{"unit test failed", unitLog, true, false, nil, caught, "", nil, []string{"TestSecretWrite"}},
		{"unit suite failed, no test did", "exit status 2\n", true, false, nil, missed, "failed, but no test did", nil, nil},
		{"a violation", refusedLog, true, true, []verdict.Verdict{refused, stuck, refused}, caught, "",
			[]string{"history refused", "no progress"}, []string{"TestChaos"}},
		{"a violation beside an undecided history", refusedLog, true, true, []verdict.Verdict{undecided, refused}, caught, "",
			[]string{"history refused"}, []string{"TestChaos"}},
		{"undecided only", timedOutLog, true, true, []verdict.Verdict{undecided}, missed, "history check timed out",
			nil, []string{"TestChaos"}},
		{"e2e failed without a verdict", rewordedLog, true, true, nil, missed, "failed, but no check named a violation",
			nil, []string{"TestChaos"}},
		{"hung", hungLog, true, true, nil, caught, "", nil, nil},
		{"tests do not build", noBuildLog, true, true, nil, broken, "tests do not build", nil, nil},
		{"suite passed", passedLog, false, true, nil, missed, "suite passed", nil, nil},
		// The messages the runner once matched count for nothing now.
		{"old wording, no verdict", refusedLog + timedOutLog, true, true, nil, missed,
			"failed, but no check named a violation", nil, []string{"TestChaos"}},
		{"new wording, a violation", rewordedLog, true, true, []verdict.Verdict{refused}, caught, "",
			[]string{"history refused"}, []string{"TestChaos"}},
		{"old undecided wording, a violation", timedOutLog, true, true, []verdict.Verdict{refused}, caught, "",
			[]string{"history refused"}, []string{"TestChaos"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := decide(watched(c.log, c.failed), c.checked, c.verdicts)
			if o.status != c.status || o.why != c.why {
				t.Errorf("got status %d %q, want %d %q", o.status, o.why, c.status, c.why)
			}
			if !slices.Equal(o.caughtAs, c.caughtAs) {
				t.Errorf("got caught as %q, want %q", o.caughtAs, c.caughtAs)
			}
			if !slices.Equal(o.failed, c.tests) {
				t.Errorf("got failed tests %q, want %q", o.failed, c.tests)
			}
		})
	}
}

// TestJudgeReadsVerdicts runs go test on a throwaway module whose test
// records verdicts through the e2e module's package, as a suite does, and
// a stale verdict file from an earlier run that must not count.
func TestJudgeReadsVerdicts(t *testing.T) {
	e2e, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	mod, err := os.ReadFile(filepath.Join(e2e, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goLine := regexp.MustCompile(`(?m)^go \S+$`).Find(mod)
	const e2eModule = "github.com/vault-reference/vault-plugin-secrets-reference/e2e"
	dir := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module throwaway\n\n"+string(goLine)+"\n\nrequire "+e2eModule+" v0.0.0\n\nreplace "+e2eModule+" => "+e2e+"\n")
	write("planted_test.go", `package throwaway

import (
	"testing"

	"`+e2eModule+`/harness/verdict"
)

func TestPlanted(t *testing.T) {
	verdict.Undecided(t, "history refused", "read a")
	verdict.Violation(t, "a check named here only", "write a")
	t.Errorf("worded as this test pleases")
}
`)
	log := filepath.Join(dir, "planted-chaos-1.log")
	write(filepath.Base(verdictsPath(log)), `{"test":"TestEarlier","check":"left by an earlier run"}`+"\n")

	cmd := exec.Command("go", "test", "-count=1", "./...")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off")
	o, err := judge(cmd, log, io.Discard, true)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"a check named here only"}
	if o.status != caught || !slices.Equal(o.caughtAs, want) || !slices.Equal(o.failed, []string{"TestPlanted"}) {
		text, _ := os.ReadFile(log)
		t.Errorf("got status %d %q, caught as %q, failed %q; want caught as %q, failed [TestPlanted]; log:\n%s",
			o.status, o.why, o.caughtAs, o.failed, want, text)
	}
}

// TestJudgeUnreadableVerdicts: verdicts that cannot be read leave the run
// unjudged, which must show in the report rather than pass for a miss.
func TestJudgeUnreadableVerdicts(t *testing.T) {
	log := filepath.Join(t.TempDir(), "garbled-chaos-1.log")
	cmd := exec.Command("sh", "-c", `echo '{"check":' >"$`+verdict.FileEnv+`"; exit 1`)
	o, err := judge(cmd, log, io.Discard, true)
	if err != nil {
		t.Fatal(err)
	}
	if o.status != broken {
		t.Errorf("got status %d %q, want %d (broken)", o.status, o.why, broken)
	}
}
