package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anishathalye/porcupine"
)

// What a failed cluster test leaves to look at, in failureDir: porcupine's
// visualisation of each history the model refuses, with the faults
// annotated, and the whole log of every server the test ran.

// failureDir is kept across runs and ignored by git.
const failureDir = ".chaos"

// visualise writes porcupine's visualisation of a refused history, with the
// faults on a row of their own, and returns its file.
func visualise(model porcupine.Model, info porcupine.LinearizationInfo, faults []fault, dir, name string) string {
	var notes []porcupine.Annotation
	for _, f := range faults {
		notes = append(notes, porcupine.Annotation{Tag: "faults", Start: int64(f.start), End: int64(f.end),
			Description: f.kind + " " + f.node.id, Details: f.detail, BackgroundColor: "#fde2e2"})
	}
	info.AddAnnotations(notes)
	file := filepath.Join(dir, name+".html")
	if err := os.MkdirAll(dir, 0o755); err != nil || porcupine.VisualizePath(model, info, file) != nil {
		return "(could not be written)"
	}
	return file
}

// saveHistory writes every recorded operation, one a line, to a file named
// after the test, and returns the file.
func saveHistory(t testing.TB, history []op) string {
	var all strings.Builder
	for _, o := range history {
		all.WriteString(o.String() + "\n")
	}
	file := filepath.Join(failureDir, strings.ReplaceAll(t.Name(), "/", "-")+"-history.txt")
	if err := os.MkdirAll(failureDir, 0o755); err != nil || os.WriteFile(file, []byte(all.String()), 0o644) != nil {
		return "(could not be written)"
	}
	return file
}

// saveLogs writes the whole log of each Vault node n ran to a file named
// after the test.
func saveLogs(t testing.TB, n *node) {
	var all strings.Builder
	for _, l := range n.logs {
		all.WriteString(l.String())
	}
	file := filepath.Join(failureDir, strings.ReplaceAll(t.Name(), "/", "-")+"-"+n.id+".log")
	if err := os.MkdirAll(failureDir, 0o755); err == nil && os.WriteFile(file, []byte(all.String()), 0o644) == nil {
		t.Logf("%s: its servers' logs are in %s", n.id, file)
	}
}
