// Package docs_test checks the documentation's relative links, so that a page
// moved or a heading renamed fails a test instead of leaving a reader at a
// dead end. It lives in a folder of its own, not in the root package, because
// `make mutants` copies only the root's own files, and a test there that
// reads README.md would fail in every copy.
package docs_test

import (
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// pages are the documents whose links are checked, as patterns relative to
// the repository's root.
var pages = []string{"README.md", "docs/*.md", "e2e/README.md", "e2e/harness/README.md"}

// generated are files that a make target writes, by the target's name: a
// fresh clone may not have them yet, so a link to one resolves while the
// Makefile's target still writes it.
var generated = map[string]string{
	"BENCHMARKS.md":     "bench",
	"e2e/CHAOS_RUNS.md": "chaos-runs",
}

// link is one link as written in a page.
type link struct {
	page   string // relative to the root, with '/'
	line   int
	target string
}

func (l link) String() string { return fmt.Sprintf("%s:%d: link %q", l.page, l.line, l.target) }

func TestLinks_EveryRelativeLinkResolves(t *testing.T) {
	root := repoRoot(t)
	checked := 0
	for _, page := range pagesIn(t, root) {
		for _, l := range links(t, root, page) {
			if problem := resolve(root, l); problem != "" {
				t.Errorf("%s: %s", l, problem)
			}
			checked++
		}
	}
	if checked == 0 {
		t.Fatalf("found no relative link in %v, want the README's map at least: is the parser broken?", pages)
	}
}

// TestLinks_READMEMapsEveryPage: a reader who starts at the README must
// reach every other page from it.
func TestLinks_READMEMapsEveryPage(t *testing.T) {
	root := repoRoot(t)
	linked := map[string]bool{}
	for _, l := range links(t, root, "README.md") {
		if file, _, relative := split("README.md", l.target); relative {
			linked[file] = true
		}
	}
	for _, page := range pagesIn(t, root) {
		if page != "README.md" && !linked[page] {
			t.Errorf("README.md links no %s, want its map to link every page of %v", page, pages)
		}
	}
}

// TestAnchor_GitHubRules pins the anchors GitHub gives headings, which links
// must use.
func TestAnchor_GitHubRules(t *testing.T) {
	for heading, want := range map[string]string{
		"Try it":                                     "try-it",
		"Upgrade and roll back":                      "upgrade-and-roll-back",
		"`secrets/<name>`: one secret":               "secretsname-one-secret",
		"What the server answers, before the plugin": "what-the-server-answers-before-the-plugin",
		"A [linked](other.md#x) heading":             "a-linked-heading",
		"Works with: Vault 1.21 & OpenBao 2.7":       "works-with-vault-121--openbao-27",
		"make_test and `make e2e`":                   "make_test-and-make-e2e",
	} {
		if got := anchor(heading); got != want {
			t.Errorf("anchor(%q) = %q, want %q", heading, got, want)
		}
	}
	got := anchors("# Notes\n\n## Notes\n\n```shell\n# not a heading\n```\n\n## Notes\n")
	if want := []string{"notes", "notes-1", "notes-2"}; !slices.Equal(got, want) {
		t.Errorf("anchors of three headings \"Notes\" = %q, want %q", got, want)
	}
}

// resolve says what is wrong with l, or "" when it resolves.
func resolve(root string, l link) string {
	file, fragment, relative := split(l.page, l.target)
	if !relative {
		return ""
	}
	if file == "" {
		return "points outside the repository, want a file in it"
	}
	info, err := os.Stat(filepath.Join(root, filepath.FromSlash(file)))
	switch {
	case err != nil && generated[file] != "":
		target := generated[file]
		if !makeTargetWrites(root, target, path.Base(file)) {
			return fmt.Sprintf("%s does not exist and the Makefile's %s target no longer writes it, want a file that exists or that a target writes", file, target)
		}
		if fragment != "" {
			return fmt.Sprintf("%s is written by make %s and is absent here, so its anchor #%s cannot be checked; want a link to the file alone", file, target, fragment)
		}
		return ""
	case err != nil:
		return fmt.Sprintf("%s does not exist, want a file or folder of the repository", file)
	case fragment == "":
		return ""
	case info.IsDir() || !strings.HasSuffix(file, ".md"):
		return fmt.Sprintf("has anchor #%s into %s, want anchors only into a Markdown file", fragment, file)
	}
	text, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(file)))
	if err != nil {
		return err.Error()
	}
	have := anchors(string(text))
	if !slices.Contains(have, fragment) {
		return fmt.Sprintf("%s has no heading with anchor #%s, want one of %s", file, fragment, strings.Join(have, ", "))
	}
	return ""
}

// split gives the file a link in page points to, relative to the root ("" when
// it leaves the repository; page itself for "#anchor"), and its fragment.
// relative is false for a link to another site or scheme.
func split(page, target string) (file, fragment string, relative bool) {
	if regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*:|^//`).MatchString(target) {
		return "", "", false
	}
	p, fragment, _ := strings.Cut(target, "#")
	if unescaped, err := url.PathUnescape(p); err == nil {
		p = unescaped
	}
	switch {
	case p == "":
		return page, fragment, true
	case strings.HasPrefix(p, "/"): // GitHub reads it from the repository's root
		p = path.Clean(strings.TrimPrefix(p, "/"))
	default:
		p = path.Join(path.Dir(page), p)
	}
	if p == ".." || strings.HasPrefix(p, "../") {
		return "", fragment, true
	}
	return p, fragment, true
}

var (
	fence      = regexp.MustCompile("^\\s*(```|~~~)")
	codeSpan   = regexp.MustCompile("(?s)``.+?``|`[^`]+`")
	inlineLink = regexp.MustCompile(`!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)`)
	definition = regexp.MustCompile(`(?m)^ {0,3}\[[^\]]+\]:\s*<?([^\s>]+)>?`)
	htmlLink   = regexp.MustCompile(`(?i)<(?:a|img)\s[^>]*?(?:href|src)="([^"]+)"`)
)

// links returns every link in page, outside code, with its line.
func links(t *testing.T, root, page string) []link {
	t.Helper()
	text, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(page)))
	if err != nil {
		t.Fatal(err)
	}
	prose := withoutCode(string(text))
	var found []link
	for _, re := range []*regexp.Regexp{inlineLink, definition, htmlLink} {
		for _, m := range re.FindAllStringSubmatchIndex(prose, -1) {
			line := 1 + strings.Count(prose[:m[0]], "\n")
			found = append(found, link{page: page, line: line, target: prose[m[2]:m[3]]})
		}
	}
	return found
}

// withoutCode blanks fenced blocks and code spans, keeping every line where
// it was: what they hold is code, not links or headings.
func withoutCode(text string) string {
	lines := strings.Split(text, "\n")
	inFence := false
	for i, line := range lines {
		if fence.MatchString(line) {
			inFence = !inFence
			lines[i] = ""
		} else if inFence {
			lines[i] = ""
		}
	}
	return codeSpan.ReplaceAllStringFunc(strings.Join(lines, "\n"), func(span string) string {
		return strings.Map(func(r rune) rune {
			if r == '\n' {
				return r
			}
			return ' '
		}, span)
	})
}

var (
	heading  = regexp.MustCompile(`^ {0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$`)
	explicit = regexp.MustCompile(`(?i)<a\s[^>]*?(?:name|id)="([^"]+)"`)
)

// anchors lists the anchors GitHub gives the headings of a Markdown text,
// in order, a repeated one with -1, -2... as GitHub numbers them, and any
// explicit <a name> or <a id>. Headings are the '#' kind, which these pages
// use.
func anchors(text string) []string {
	var list []string
	seen := map[string]int{}
	inFence := false
	for _, line := range strings.Split(text, "\n") {
		if fence.MatchString(line) {
			inFence = !inFence
			continue
		}
		if inFence {
			continue
		}
		for _, m := range explicit.FindAllStringSubmatch(line, -1) {
			list = append(list, m[1])
		}
		m := heading.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		a := anchor(m[1])
		if n := seen[a]; n > 0 {
			seen[a]++
			a = fmt.Sprintf("%s-%d", a, n)
		} else {
			seen[a] = 1
		}
		list = append(list, a)
	}
	return list
}

var linkInHeading = regexp.MustCompile(`!?\[([^\]]*)\]\([^)]*\)`)

// anchor is GitHub's anchor for a heading: its text as shown (a link's text,
// not its address), lower-cased, with punctuation and symbols dropped and
// each space made a hyphen.
func anchor(text string) string {
	text = strings.ToLower(linkInHeading.ReplaceAllString(text, "$1"))
	var b strings.Builder
	for _, r := range text {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.IsMark(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// makeTargetWrites says whether the recipe of the Makefile's target names
// file.
func makeTargetWrites(root, target, file string) bool {
	text, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		return false
	}
	in := false
	for _, line := range strings.Split(string(text), "\n") {
		switch {
		case strings.HasPrefix(line, target+":"):
			in = true
		case in && strings.HasPrefix(line, "\t"):
			if strings.Contains(line, file) {
				return true
			}
		case in:
			return false
		}
	}
	return false
}

// pagesIn lists the pages that exist under root, relative to it.
func pagesIn(t *testing.T, root string) []string {
	t.Helper()
	var list []string
	for _, pattern := range pages {
		matches, err := filepath.Glob(filepath.Join(root, filepath.FromSlash(pattern)))
		if err != nil {
			t.Fatal(err)
		}
		if len(matches) == 0 {
			t.Errorf("no page matches %s, want at least one", pattern)
		}
		for _, m := range matches {
			rel, err := filepath.Rel(root, m)
			if err != nil {
				t.Fatal(err)
			}
			list = append(list, filepath.ToSlash(rel))
		}
	}
	return list
}

// repoRoot is the root module's folder: go test runs in docs/.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("no go.mod in %s, want the repository's root above docs/: %v", root, err)
	}
	return root
}
