// Package report writes what a failed cluster test leaves to look at, in
// cluster.FailureDir: porcupine's visualisation of each history a model
// refuses, with the faults annotated, and the whole recorded history. The
// servers' logs are the cluster's to save.
package report

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anishathalye/porcupine"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/cluster"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/faults"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/recorder"
)

// Visualise writes porcupine's visualisation of a refused history, with the
// faults on a row of their own, and returns its file.
func Visualise(model porcupine.Model, info porcupine.LinearizationInfo, injected []faults.Fault, dir, name string) string {
	var notes []porcupine.Annotation
	for _, f := range injected {
		notes = append(notes, porcupine.Annotation{Tag: "faults", Start: int64(f.Start), End: int64(f.End),
			Description: f.Kind + " " + f.Node.ID, Details: f.Detail, BackgroundColor: "#fde2e2"})
	}
	info.AddAnnotations(notes)
	file := filepath.Join(dir, name+".html")
	if err := os.MkdirAll(dir, 0o755); err != nil || porcupine.VisualizePath(model, info, file) != nil {
		return "(could not be written)"
	}
	return file
}

// SaveHistory writes every recorded operation, one a line, to a file named
// after the test, and returns the file.
func SaveHistory(t testing.TB, history []recorder.Op) string {
	var all strings.Builder
	for _, o := range history {
		all.WriteString(o.String() + "\n")
	}
	file := filepath.Join(cluster.FailureDir, strings.ReplaceAll(t.Name(), "/", "-")+"-history.txt")
	if err := os.MkdirAll(cluster.FailureDir, 0o755); err != nil || os.WriteFile(file, []byte(all.String()), 0o644) != nil {
		return "(could not be written)"
	}
	return file
}
