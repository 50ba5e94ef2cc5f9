package main

import (
	"path/filepath"
	"testing"
)

// TestMutations_PlantInTheEngine plants every mutation of the table in memory
// against the engine's own files, so that an engine change that removes the
// text a mutation edits fails make unit, not make mutants an hour in.
func TestMutations_PlantInTheEngine(t *testing.T) {
	if err := checkTable(); err != nil {
		t.Fatalf("the table: %v; want every mutation named once, with an edit and a suite", err)
	}
	root, err := filepath.Abs("../..") // e2e/mutants is two folders below the engine
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mutations {
		t.Run(m.Name, func(t *testing.T) {
			if _, err := planted(filepath.Join(root, m.Plugin), m); err != nil {
				t.Errorf("want every edit's old text in the engine (once, unless All); got %v", err)
			}
		})
	}
}
