// Command newplugin writes a new plugin repository from the one it sits in:
// `make new-plugin NAME=... MODULE=... DIR=...` runs it. It reads the names to
// replace from the repository itself (go.mod, the Makefile's PLUGIN and MOUNT,
// operationPrefix in backend.go), so a repository it wrote can write the next.
// Standard library only, so that it runs wherever Go does.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

func main() {
	from := flag.String("from", ".", "the plugin repository to copy")
	name := flag.String("name", "", "the new plugin's name: vault-plugin-secrets-<name>, whose <name> becomes the mount")
	module := flag.String("module", "", "the new root module path, such as <host>/<owner>/<NAME>")
	dir := flag.String("dir", "", "where to write the new repository, relative to -from; must not exist or be empty")
	kind := flag.String("kind", "", "static (the default): secrets stored by name; dynamic: Redis users with leases, from dynamic/")
	flag.Parse()
	if err := newPlugin(*from, *kind, *name, *module, *dir); err != nil {
		fmt.Fprintln(os.Stderr, "new-plugin:", err)
		os.Exit(1)
	}
}

// names are what a plugin repository calls itself.
type names struct {
	module, plugin, mount, prefix string
}

// namePrefix is how HashiCorp names secrets plugins; the mount and the OpenAPI
// prefix are what follows it.
const namePrefix = "vault-plugin-secrets-"

// kinds are the plugins a repository holds: the static engine at its root,
// less the folders of the others, and each other kind in its folder, less
// its fault proof and its benchmarks against a peer, which import the
// root's harness.
var kinds = map[string]struct {
	folder   string
	leaveOut []string
}{
	"":        {".", []string{"dynamic/"}},
	"static":  {".", []string{"dynamic/"}},
	"dynamic": {"dynamic", []string{"e2e/", "bench/", "BENCHMARKS.md"}},
}

// newPlugin checks every input before it writes anything.
func newPlugin(repo, kind, name, module, dir string) error {
	k, ok := kinds[kind]
	if !ok {
		return fmt.Errorf("KIND %q: want static or dynamic", kind)
	}
	from := filepath.Join(repo, k.folder)
	if _, err := os.Stat(filepath.Join(from, "go.mod")); err != nil {
		return fmt.Errorf("KIND %s: this repository has no %s plugin in %s", kind, kind, from)
	}
	old, version, err := readNames(from)
	if err != nil {
		return err
	}
	short := strings.TrimPrefix(name, namePrefix)
	to := names{module: module, plugin: name, mount: short, prefix: short}
	if err := checkName(name); err != nil {
		return err
	}
	if err := checkModulePath(module); err != nil {
		return fmt.Errorf("MODULE %q is not a valid Go module path: %v", module, err)
	}
	if dir, err = checkDir(repo, dir); err != nil {
		return err
	}
	files, err := listFiles(from, k.leaveOut)
	if err != nil {
		return err
	}
	if err := checkUnused(from, files, old, to); err != nil {
		return err
	}

	// Write beside DIR, then move it in place: a failure leaves nothing behind.
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+"-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	for _, f := range files {
		if err := copyFile(from, tmp, f, old, to, k.leaveOut); err != nil {
			return err
		}
	}
	changelog := fmt.Sprintf("# Changelog\n\n## %s\n\n- First version, written by `make new-plugin`.\n", version)
	if err := os.WriteFile(filepath.Join(tmp, "CHANGELOG.md"), []byte(changelog), 0o644); err != nil {
		return err
	}
	if err := firstCommit(tmp, fmt.Sprintf("%s, written by make new-plugin from %s", name, old.module)); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	// Go renames onto no directory, not even an empty one.
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return err
	}
	fmt.Printf("%s is in %s with a first commit. Next:\n\n  cd %s && make test\n", name, dir, dir)
	return nil
}

// readNames reads the repository's own names and the Makefile's VERSION.
func readNames(from string) (names, string, error) {
	var n names
	var version string
	for _, v := range []struct {
		file, pattern string
		value         *string
	}{
		{"go.mod", `(?m)^module\s+(\S+)`, &n.module},
		{"Makefile", `(?m)^PLUGIN\s*:?=\s*(\S+)`, &n.plugin},
		{"Makefile", `(?m)^MOUNT\s*\??=\s*(\S+)`, &n.mount},
		{"Makefile", `(?m)^VERSION\s*\??=\s*(\S+)`, &version},
		{"backend.go", `(?m)^const operationPrefix = "([^"]+)"`, &n.prefix},
	} {
		text, err := os.ReadFile(filepath.Join(from, v.file))
		if err != nil {
			return n, "", err
		}
		m := regexp.MustCompile(v.pattern).FindSubmatch(text)
		if m == nil {
			return n, "", fmt.Errorf("%s has no line matching %s", filepath.Join(from, v.file), v.pattern)
		}
		*v.value = string(m[1])
	}
	return n, version, nil
}

var nameRule = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

// checkName refuses what Vault's catalog (letters, digits, '_', '-', '.') or a
// file system would, and is stricter still: the name also becomes the binary,
// the mount and the OpenAPI prefix, for which HashiCorp uses kebab case.
func checkName(name string) error {
	if !nameRule.MatchString(name) {
		return fmt.Errorf("NAME %q: use lowercase letters, digits and single hyphens, as in vault-plugin-secrets-<name>", name)
	}
	if len(name) > 100 {
		return fmt.Errorf("NAME is %d bytes long; at most 100 leave room for the versions and platforms in file names", len(name))
	}
	return nil
}

// checkModulePath is golang.org/x/mod/module.CheckPath, less its rules for
// Windows file names and gopkg.in.
func checkModulePath(path string) error {
	if !utf8.ValidString(path) || path == "" {
		return errors.New("empty or not UTF-8")
	}
	elems := strings.Split(path, "/")
	for i, e := range elems {
		switch {
		case e == "":
			return errors.New("empty path element")
		case e[0] == '.' || e[len(e)-1] == '.':
			return fmt.Errorf("element %q starts or ends with a dot", e)
		}
		for _, r := range e {
			lower := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.'
			if i == 0 && !lower || !lower && !strings.ContainsRune("_~ABCDEFGHIJKLMNOPQRSTUVWXYZ", r) {
				return fmt.Errorf("invalid character %q in %q", r, e)
			}
		}
	}
	if !strings.Contains(elems[0], ".") || elems[0][0] == '-' {
		return fmt.Errorf("the first element %q must be a host name, with a dot", elems[0])
	}
	// A last element such as v2 is a major version: 2 or more, no dots.
	if last := elems[len(elems)-1]; len(elems) > 1 && regexp.MustCompile(`^v[0-9.]+$`).MatchString(last) &&
		!regexp.MustCompile(`^v([2-9]|[1-9][0-9]+)$`).MatchString(last) {
		return fmt.Errorf("invalid major version suffix %q", last)
	}
	return nil
}

// checkDir resolves dir against from and refuses one that holds files or lies
// inside the repository.
func checkDir(from, dir string) (string, error) {
	if dir == "" {
		return "", errors.New("DIR is required: where to write the new repository")
	}
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(from, dir)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	repo, err := filepath.Abs(from)
	if err != nil {
		return "", err
	}
	if rel, err := filepath.Rel(repo, dir); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("DIR %s is inside the repository %s: choose a folder outside it", dir, repo)
	}
	if parent, err := os.Stat(filepath.Dir(dir)); err != nil || !parent.IsDir() {
		return "", fmt.Errorf("DIR %s: its parent folder does not exist", dir)
	}
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return "", fmt.Errorf("DIR %s: %v", dir, err)
	case len(entries) > 0:
		return "", fmt.Errorf("DIR %s exists and is not empty", dir)
	}
	return dir, nil
}

// listFiles lists what git holds or would add under from, less what begins
// with one of leaveOut: tracked files that still exist and untracked ones
// that .gitignore does not exclude.
func listFiles(from string, leaveOut []string) ([]string, error) {
	out, err := exec.Command("git", "-C", from, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		return nil, fmt.Errorf("listing the files of %s with git (it must be a git checkout): %v", from, err)
	}
	var files []string
	for _, f := range strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00") {
		left := slices.ContainsFunc(leaveOut, func(prefix string) bool { return strings.HasPrefix(f, prefix) })
		if _, err := os.Stat(filepath.Join(from, f)); err == nil && f != "CHANGELOG.md" && !left {
			files = append(files, f)
		}
	}
	return files, nil
}

// checkUnused refuses a new name or mount that the code already uses (the e2e
// tests mount "api", the benchmarks "kv"): the next rename could not tell
// the two apart. Go modules name other modules, documentation may hold any
// word; neither is checked.
func checkUnused(from string, files []string, old, new names) error {
	for _, f := range files {
		if base := filepath.Base(f); base == "go.mod" || base == "go.sum" || filepath.Ext(f) == ".md" {
			continue
		}
		text, err := os.ReadFile(filepath.Join(from, f))
		if err != nil {
			return err
		}
		for _, word := range []string{new.plugin, new.mount} {
			if word == old.plugin || word == old.mount || word == old.prefix {
				continue
			}
			// The old names stay as they are; only a use of word changes the text.
			r := renames{{old.module, old.module, false}, {old.plugin, old.plugin, false}, {word, "", true}}
			if s := string(text); r.apply(s) != s {
				return fmt.Errorf("NAME gives %q, which %s already uses: choose another NAME", word, f)
			}
		}
	}
	return nil
}

func copyFile(from, to, f string, old, new names, leaveOut []string) error {
	src := filepath.Join(from, f)
	info, err := os.Stat(src)
	if err != nil {
		return err
	}
	text, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	// One pass, so that a new name holding an old one is not renamed twice.
	// go.mod and go.sum name other modules: only the module path changes there.
	r := renames{{old.module, new.module, false}}
	if base := filepath.Base(f); base != "go.mod" && base != "go.sum" {
		r = append(r, rename{old.plugin, new.plugin, false}, rename{old.mount, new.mount, true}, rename{old.prefix, new.prefix, true})
	}
	if !bytes.Contains(text, []byte{0}) {
		text = []byte(r.apply(string(text)))
	}
	if filepath.Ext(f) == ".md" {
		text = withoutLinksInto(text, leaveOut)
	}
	if f == "README.md" {
		text = readme(text, new.plugin)
	}
	dst := filepath.Join(to, f)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return os.WriteFile(dst, text, info.Mode().Perm())
}

// withoutLinksInto drops from markdown what links into a path left out: the
// rows of a table that do, and any other paragraph that does, so that every
// link of the new repository resolves. A page links what it leaves out in
// paragraphs and rows of their own for this.
func withoutLinksInto(text []byte, leaveOut []string) []byte {
	var alternatives []string
	for _, p := range leaveOut {
		alternatives = append(alternatives, regexp.QuoteMeta(p))
	}
	link := regexp.MustCompile(`\]\((\.\./)*(` + strings.Join(alternatives, "|") + `)`)
	var kept [][]byte
	for _, block := range bytes.Split(text, []byte("\n\n")) {
		if !link.Match(block) {
			kept = append(kept, block)
			continue
		}
		if !bytes.HasPrefix(bytes.TrimSpace(block), []byte("|")) {
			continue
		}
		var rows [][]byte
		for _, row := range bytes.Split(block, []byte("\n")) {
			if !link.Match(row) {
				rows = append(rows, row)
			}
		}
		kept = append(kept, bytes.Join(rows, []byte("\n")))
	}
	return bytes.Join(kept, []byte("\n\n"))
}

// readme gives the new plugin its own title and a plain first line in place
// of the text before the first section, which speaks of the plugin copied.
func readme(text []byte, name string) []byte {
	head := fmt.Sprintf("# %s\n\nA HashiCorp Vault secrets engine, built as an external plugin: [The API](#the-api) says what it does.\n\n", name)
	if i := bytes.Index(text, []byte("\n## ")); i >= 0 {
		return append([]byte(head), text[i+1:]...)
	}
	return append([]byte(head), text...)
}

// rename replaces from with to; a word rename (a mount, a prefix) only where
// from stands alone: not after a letter, digit, '_', '.' or '-' (so not inside
// a longer name or github.ref) and not before a letter, digit or '_'.
type rename struct {
	from, to string
	word     bool
}

type renames []rename

func (rs renames) apply(text string) string {
	var b strings.Builder
	for i := 0; i < len(text); {
		r, ok := rs.at(text, i)
		if !ok {
			b.WriteByte(text[i])
			i++
			continue
		}
		b.WriteString(r.to)
		i += len(r.from)
	}
	return b.String()
}

// at returns the first rename that matches text at i.
func (rs renames) at(text string, i int) (rename, bool) {
	for _, r := range rs {
		if r.from == "" || !strings.HasPrefix(text[i:], r.from) {
			continue
		}
		end := i + len(r.from)
		if r.word && (i > 0 && (wordByte(text[i-1]) || strings.IndexByte(".-", text[i-1]) >= 0) || end < len(text) && wordByte(text[end])) {
			continue
		}
		return r, true
	}
	return rename{}, false
}

func wordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

// firstCommit makes dir a git repository with everything in one commit. Where
// git knows no committer, it names the generator for this commit only.
func firstCommit(dir, message string) error {
	git := func(args ...string) error {
		out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	if err := git("init", "-q"); err != nil {
		return err
	}
	if err := git("add", "-A"); err != nil {
		return err
	}
	var identity []string
	for key, fallback := range map[string]string{"user.name": "make new-plugin", "user.email": "new-plugin@localhost"} {
		if out, _ := exec.Command("git", "-C", dir, "config", key).Output(); len(bytes.TrimSpace(out)) == 0 {
			identity = append(identity, "-c", key+"="+fallback)
		}
	}
	return git(append(identity, "commit", "-q", "-m", message)...)
}
