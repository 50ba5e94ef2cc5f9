package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vault-reference/vault-plugin-secrets-reference/apicases"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/cluster"
)

// newNames are what the tests ask make new-plugin for: names that hold none
// of this repository's, so that a generated repository passes these tests too.
func newNames() (name, mount, module string) {
	mount = "new-" + strings.TrimPrefix(pluginName, "vault-plugin-secrets-")
	name = "vault-plugin-secrets-" + mount
	return name, mount, "example.com/" + name
}

// TestNewPlugin_WritesAPluginOfItsOwnThatVaultRuns runs make new-plugin as a
// new author would, on a machine where git knows no committer, and proves the
// result is a plugin of its own: none of this one's names in it, vet and unit
// tests pass, and Vault registers it, mounts it and serves a secret.
func TestNewPlugin_WritesAPluginOfItsOwnThatVaultRuns(t *testing.T) {
	name, newMount, module := newNames()
	dir := t.TempDir()
	out, err := newPlugin(t, name, module, dir, "GIT_CONFIG_GLOBAL="+os.DevNull, "GIT_CONFIG_NOSYSTEM=1")
	if err != nil {
		t.Fatalf("make new-plugin: %v\n%s\nwant it to succeed", err, out)
	}

	if log := mustRun(t, time.Minute, dir, "git", "log", "--format=%an <%ae>"); log != "make new-plugin <new-plugin@localhost>\n" {
		t.Fatalf("want one commit by make new-plugin, got:\n%s", log)
	}
	if status := mustRun(t, time.Minute, dir, "git", "status", "--porcelain"); status != "" {
		t.Fatalf("git status after the first commit:\n%s\nwant it clean", status)
	}
	expectNoTraceOfThisPlugin(t, dir)
	expectItsOwnNames(t, dir, name, newMount, module)
	if t.Failed() {
		t.FailNow()
	}

	mustRun(t, 5*time.Minute, dir, "go", "vet", "./...")
	mustRun(t, 10*time.Minute, dir, "go", "test", "-count=1", "./...")
	command, sha := buildNewPlugin(t, dir, name)
	serveNewPlugin(t, name, newMount, command, sha)
}

// expectNoTraceOfThisPlugin fails the test for every file in dir that holds
// this plugin's name or module path anywhere, or, not inside a longer name,
// a word of the module path or the mount where make new-plugin would rename
// a mount.
func expectNoTraceOfThisPlugin(t *testing.T, dir string) {
	t.Helper()
	oldModule := goModule(t, "..")
	traces := []*regexp.Regexp{regexp.MustCompile(regexp.QuoteMeta(pluginName)), regexp.MustCompile(regexp.QuoteMeta(oldModule))}
	const before, after = `(^|[^A-Za-z0-9_.-])`, `($|[^A-Za-z0-9_])`
	traces = append(traces, regexp.MustCompile(before+regexp.QuoteMeta(mount)+"/"))
	for _, word := range strings.Split(oldModule, "/")[1:] {
		traces = append(traces, regexp.MustCompile(before+regexp.QuoteMeta(word)+after))
	}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir() && d.Name() == ".git":
			return filepath.SkipDir
		case d.IsDir():
			return nil
		}
		text := readFile(t, path)
		for _, trace := range traces {
			if m := trace.FindString(text); m != "" {
				t.Errorf("%s holds %q, want no trace of this plugin", path, m)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// expectItsOwnNames fails the test unless the plugin in dir has the module
// paths, Makefile names, CHANGELOG and README of its own, the README with
// this one's sections.
func expectItsOwnNames(t *testing.T, dir, name, newMount, module string) {
	t.Helper()
	if got := goModule(t, dir); got != module {
		t.Fatalf("module %s, want %s", got, module)
	}
	for _, sub := range []string{"e2e", "bench", "newplugin", "tools"} {
		if got := goModule(t, filepath.Join(dir, sub)); got != module+"/"+sub {
			t.Errorf("%s/go.mod: module %s, want %s/%s", sub, got, module, sub)
		}
	}
	if got := makeVar(t, dir, "PLUGIN"); got != name {
		t.Errorf("Makefile PLUGIN %s, want %s", got, name)
	}
	if got := makeVar(t, dir, "MOUNT"); got != newMount {
		t.Errorf("Makefile MOUNT %s, want %s", got, newMount)
	}
	if got, want := changelogVersion(t, dir), makeVar(t, dir, "VERSION"); got != want {
		t.Errorf("the new CHANGELOG.md starts at %s, want its Makefile's VERSION %s", got, want)
	}
	readme, ours := readFile(t, filepath.Join(dir, "README.md")), readFile(t, "../README.md")
	if !strings.HasPrefix(readme, "# "+name+"\n") {
		t.Errorf("the new README starts:\n%.200s\nwant its own title, # %s", readme, name)
	}
	if intro, _, _ := strings.Cut(readme, "\n## "); strings.Contains(intro, "copied") {
		t.Errorf("the new README's introduction:\n%s\nwant it not to speak of being copied", intro)
	}
	if got, want := headings(readme), headings(ours); !reflect.DeepEqual(got, want) {
		t.Errorf("the new README's sections %q, want this one's %q", got, want)
	}
}

// buildNewPlugin builds the plugin in dir with its own Makefile into the dev
// server's plugin directory, and returns its command and SHA-256.
func buildNewPlugin(t *testing.T, dir, name string) (command, sha string) {
	t.Helper()
	command = name + "-" + oldVersion
	binary := filepath.Join(pluginDir, command)
	t.Cleanup(func() { os.Remove(binary) })
	mustRun(t, 5*time.Minute, dir, "make", "-s", "build", "VERSION="+oldVersion, "BIN="+binary)
	written, err := os.ReadFile(binary + ".sha256")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(binary + ".sha256"); err != nil {
		t.Fatal(err)
	}
	if got := mustRun(t, time.Minute, dir, binary, "-version"); got != oldVersion+"\n" {
		t.Fatalf("%s -version: %q, want %s", name, got, oldVersion)
	}
	return command, strings.TrimSpace(string(written))
}

// serveNewPlugin registers the new plugin in the dev server, mounts it and
// fails the test unless it serves a secret and documents itself under its
// own names.
func serveNewPlugin(t *testing.T, name, newMount, command, sha string) {
	t.Helper()
	catalog := "sys/plugins/catalog/secret/" + name
	cluster.Must(t, dev, http.StatusNoContent, "PUT", catalog, map[string]any{
		"sha256": sha, "version": oldVersion, "command": command,
	})
	t.Cleanup(func() { cluster.Send(dev.Addr(), dev.Token, "DELETE", catalog+"?version="+oldVersion, nil) })
	cluster.Must(t, dev, http.StatusNoContent, "POST", "sys/mounts/"+newMount, map[string]any{
		"type": name, "config": map[string]any{"plugin_version": oldVersion},
	})
	t.Cleanup(func() { cluster.Send(dev.Addr(), dev.Token, "DELETE", "sys/mounts/"+newMount, nil) })
	if got := runningVersion(t, dev, newMount); got != oldVersion {
		t.Fatalf("running_plugin_version %v, want %s", got, oldVersion)
	}
	cluster.Must(t, dev, http.StatusOK, "POST", newMount+"/secrets/app", apicases.KV("password", "s3cr3t"))
	r := cluster.Must(t, dev, http.StatusOK, "GET", newMount+"/secrets/app", nil)
	if got := r.Data()["data"]; !reflect.DeepEqual(got, map[string]any{"password": "s3cr3t"}) || r.Data()["version"] != float64(1) {
		t.Fatalf("read back %s, want password s3cr3t at version 1", r)
	}
	help := cluster.Must(t, dev, http.StatusOK, "GET", newMount+"?help=1", nil)
	if !strings.Contains(fmt.Sprint(help.Body["help"]), "The "+newMount+" secrets engine") {
		t.Fatalf("the help:\n%s\nwant it to name The %s secrets engine", help, newMount)
	}
	// Vault names the OpenAPI schemas after the operation prefix, in title case.
	title := regexp.MustCompile(`(^|-)[a-z]`).ReplaceAllStringFunc(newMount, func(s string) string {
		return strings.ToUpper(strings.TrimPrefix(s, "-"))
	})
	if !strings.Contains(help.Raw, `"`+title+`Read`) {
		t.Fatalf("the help's OpenAPI document:\n%s\nwant an operation %sRead...", help.Raw, title)
	}
}

// TestNewPlugin_TakesTheREADMEsExample runs the README's make new-plugin
// line, into another folder: a word in the code could make it a refused name.
func TestNewPlugin_TakesTheREADMEsExample(t *testing.T) {
	example := regexp.MustCompile(`make new-plugin NAME=(\S+) \\\n\s*MODULE=(\S+) DIR=`).FindStringSubmatch(readFile(t, "../README.md"))
	if example == nil {
		t.Fatal("the README has no make new-plugin example, want one with NAME, MODULE and DIR")
	}
	dir := filepath.Join(t.TempDir(), "example")
	if out, err := newPlugin(t, example[1], example[2], dir); err != nil {
		t.Fatalf("make new-plugin NAME=%s MODULE=%s: %v\n%s\nwant it to succeed", example[1], example[2], err, out)
	}
	if got := makeVar(t, dir, "PLUGIN"); got != example[1] {
		t.Fatalf("Makefile PLUGIN %s, want %s", got, example[1])
	}
}

// TestNewPlugin_RefusesBadInputAndWritesNothing gives make new-plugin what
// Vault, a file system or Go would refuse, or a folder already in use.
func TestNewPlugin_RefusesBadInputAndWritesNothing(t *testing.T) {
	name, _, module := newNames()
	for _, c := range []struct {
		about, name, module, want string
		used                      bool
	}{
		{"no name", "", module, "NAME", false},
		{"a slash in the name", "vault-plugin-secrets-a/b", module, "NAME", false},
		{"a space in the name", "vault plugin", module, "NAME", false},
		{"a leading dash", "-" + name, module, "NAME", false},
		{"a name too long for a file", strings.Repeat("a", 300), module, "NAME", false},
		// Spelt in two, or this file would hold the name as well as the mount.
		{"a mount the e2e tests use", "vault-plugin-secrets-" + "api", module, `"api"`, false},
		{"a mount the benchmarks use", "vault-plugin-secrets-" + "kv", module, `"kv"`, false},
		{"no dot in the module's host", name, "plugins/" + name, "MODULE", false},
		{"capitals in the module's host", name, "Example.com/" + name, "MODULE", false},
		{"an empty module path element", name, "example.com//" + name, "MODULE", false},
		{"a /v1 major version", name, "example.com/" + name + "/v1", "MODULE", false},
		{"a folder that is not empty", name, module, "not empty", true},
	} {
		t.Run(c.about, func(t *testing.T) {
			parent := t.TempDir()
			dir := filepath.Join(parent, "new")
			if c.used {
				dir = parent
				if err := os.WriteFile(filepath.Join(parent, "kept"), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			before := listDir(t, parent)
			out, err := newPlugin(t, c.name, c.module, dir)
			if err == nil || !strings.Contains(out, "new-plugin: ") || !strings.Contains(out, c.want) {
				t.Fatalf("make new-plugin: %v, want an error about %s:\n%s", err, c.want, out)
			}
			if after := listDir(t, parent); !reflect.DeepEqual(after, before) {
				t.Fatalf("the folder held %v, now %v, want it unchanged", before, after)
			}
		})
	}
}

// TestChangelog_NewestEntryIsTheMakefileVersion keeps CHANGELOG.md in step
// with the version make build stamps into the binary.
func TestChangelog_NewestEntryIsTheMakefileVersion(t *testing.T) {
	if got, want := changelogVersion(t, ".."), makeVar(t, "..", "VERSION"); got != want {
		t.Fatalf("the newest CHANGELOG.md entry is %s, want the Makefile's VERSION %s", got, want)
	}
}

// newPlugin runs make new-plugin in this repository with Go's defaults.
func newPlugin(t *testing.T, name, module, dir string, env ...string) (string, error) {
	t.Helper()
	cmd, cancel := command(2*time.Minute, "..", "make", "-s", "new-plugin", "NAME="+name, "MODULE="+module, "DIR="+dir)
	defer cancel()
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// command is a command in dir with Go's defaults and a deadline.
func command(timeout time.Duration, dir, name string, args ...string) (*exec.Cmd, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = goDefaultsEnv()
	// Children that outlive a killed command (go run's) must not hold it up.
	cmd.WaitDelay = 5 * time.Second
	return cmd, cancel
}

// mustRun runs a command and fails the test unless it succeeds; it returns
// what the command printed on stdout.
func mustRun(t *testing.T, timeout time.Duration, dir, name string, args ...string) string {
	t.Helper()
	cmd, cancel := command(timeout, dir, name, args...)
	defer cancel()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s in %s: %v, want it to succeed\n%s%s", name, strings.Join(args, " "), dir, err, out, stderr.String())
	}
	return string(out)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(text)
}

// goModule is the module path in dir's go.mod.
func goModule(t *testing.T, dir string) string {
	t.Helper()
	return match(t, filepath.Join(dir, "go.mod"), `(?m)^module\s+(\S+)`)
}

// makeVar is the value a Makefile gives a variable, as make new-plugin reads it.
func makeVar(t *testing.T, dir, name string) string {
	t.Helper()
	return match(t, filepath.Join(dir, "Makefile"), `(?m)^`+name+`\s*[:?]?=\s*(\S+)`)
}

// changelogVersion is the version of the newest entry in dir's CHANGELOG.md.
func changelogVersion(t *testing.T, dir string) string {
	t.Helper()
	return match(t, filepath.Join(dir, "CHANGELOG.md"), `(?m)^## (\S+)`)
}

func match(t *testing.T, path, pattern string) string {
	t.Helper()
	m := regexp.MustCompile(pattern).FindStringSubmatch(readFile(t, path))
	if m == nil {
		t.Fatalf("%s has no line matching %s, want one", path, pattern)
	}
	return m[1]
}

// headings lists a Markdown file's section titles.
func headings(text string) []string {
	return regexp.MustCompile(`(?m)^## .*$`).FindAllString(text, -1)
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}
