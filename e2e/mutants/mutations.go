package main

import (
	"fmt"
	"strings"
)

// edit replaces Old by New in File, a path from the repository's root. Old
// must occur exactly once unless All is set, so that a change to the engine
// makes the edit fail instead of planting its bug somewhere else.
type edit struct {
	File     string
	Old, New string
	All      bool
}

// appendix is code added at the end of File: the state or helpers a bug needs.
type appendix struct {
	File, Code string
}

// mutation is one planted bug and the suites that must catch it.
type mutation struct {
	Name, Desc string
	Edits      []edit
	Append     []appendix
	Suites     []string
}

// secretsFile is where most bugs are planted: the secrets' read and write path.
const secretsFile = "path_secrets.go"

// Where secretWrite and secretDelete have just taken the name's lock.
const (
	writeLocked  = "\tcurrent, err := b.lockedMetadata(ctx, req.Storage, name)\n"
	deleteLocked = "\tif err := req.Storage.Delete(ctx, secretStorageKey(name)); err != nil {\n"
)

// unitAndChaos are the suites most bugs must be caught by: any of them would
// lose a client's data.
var unitAndChaos = []string{"unit", "chaos"}

// mutations are the bugs planted, one copy of the engine each.
var mutations = []mutation{
	{
		Name:   "no-name-lock",
		Desc:   "writes and deletes take a fresh lock instead of the name's",
		Edits:  []edit{{File: secretsFile, Old: "locksutil.LockForKey(b.secretLocks, name)", New: "&locksutil.LockEntry{}", All: true}},
		Suites: unitAndChaos,
	},
	{
		Name:   "write-5xx",
		Desc:   "about one write in twenty answers 500 before storing anything",
		Edits:  []edit{insertBefore(secretsFile, writeLocked, answer500(oneIn(20)))},
		Suites: unitAndChaos,
	},
	{
		Name: "create-overwrites",
		Desc: "a write Vault authorised as a create overwrites a secret created meanwhile",
		Edits: []edit{remove(secretsFile, `	if req.Operation == logical.CreateOperation && current != nil {
		return logical.ErrorResponse("name: secret was created by another request since this write began; retry"), nil
	}
`)},
		Suites: unitAndChaos,
	},
	{
		Name: "update-creates",
		Desc: "a write Vault authorised as an update creates a secret deleted meanwhile",
		Edits: []edit{remove(secretsFile, `	if req.Operation == logical.UpdateOperation && current == nil {
		return logical.ErrorResponse("name: secret was deleted by another request since this write began; retry"), nil
	}
`)},
		Suites: unitAndChaos,
	},
	{
		Name: "version-skip",
		Desc: "about one write in ten stores version current+2 instead of current+1",
		Edits: []edit{insertBefore(secretsFile, "\tvalue, err := encodeSecret(&meta, encodedData)\n",
			"\tif current != nil && "+oneIn(10)+" {\n\t\tmeta.Version++\n\t}\n")},
		Suites: unitAndChaos,
	},
	{
		Name:   "delete-not-done",
		Desc:   "about one delete in ten answers 204 without deleting",
		Edits:  []edit{insertBefore(secretsFile, deleteLocked, "\tif "+oneIn(10)+" {\n\t\treturn nil, nil\n\t}\n")},
		Suites: unitAndChaos,
	},
	{
		Name: "stale-read",
		Desc: "reads come from a per-process copy up to 2 s old that writes do not refresh",
		Edits: []edit{
			{File: secretsFile, Old: "\t\"strings\"\n\t\"time\"\n", New: "\t\"strings\"\n\t\"sync\"\n\t\"time\"\n"},
			{File: secretsFile, Old: "getSecret(ctx, req.Storage, secretStorageKey(name), true)",
				New: "recentSecret(ctx, req.Storage, secretStorageKey(name))"},
		},
		Append: []appendix{{File: secretsFile, Code: recentSecretCode}},
		Suites: unitAndChaos,
	},
	{
		Name: "invalidate-forgets",
		Desc: "Invalidate forgets nothing, so a node's cache keeps what another node replaced",
		Edits: []edit{
			{File: "backend.go", Old: "\t\tb.config = nil\n", New: ""},
			{File: "backend.go", Old: "\t\tb.metadata.Remove(name)\n\t\tlock.Unlock()\n", New: "\t\tlock.Unlock()\n"},
		},
		// Vault Community never calls Invalidate; an OpenBao standby does, and
		// answers config reads from its cache.
		Suites: []string{"unit", "chaos-openbao"},
	},
	{
		Name:   "late-5xx",
		Desc:   "once the plugin process is 5 s old, about one write in twenty answers 500",
		Edits:  []edit{insertBefore(secretsFile, writeLocked, answer500("time.Since(started) > 5*time.Second && "+oneIn(20)))},
		Append: []appendix{{File: secretsFile, Code: "\n// started is when this plugin process began.\nvar started = time.Now()\n"}},
		// The unit suite is over in about two seconds.
		Suites: []string{"chaos"},
	},
}

// recentSecretCode is a cache as one might add for speed: keyed by storage
// key alone, so mounts share it, and never refreshed by a write.
const recentSecretCode = `
var (
	recentMu      sync.Mutex
	recentSecrets = map[string]recentSecretEntry{}
)

type recentSecretEntry struct {
	entry *secretEntry
	read  time.Time
}

func recentSecret(ctx context.Context, s logical.Storage, key string) (*secretEntry, error) {
	recentMu.Lock()
	defer recentMu.Unlock()
	if r, ok := recentSecrets[key]; ok && time.Since(r.read) < 2*time.Second {
		return r.entry, nil
	}
	entry, err := getSecret(ctx, s, key, true)
	if err != nil {
		return nil, err
	}
	recentSecrets[key] = recentSecretEntry{entry: entry, read: time.Now()}
	return entry, nil
}
`

// insertBefore plants code just before anchor, so that the bug runs where
// anchor's state already holds.
func insertBefore(file, anchor, code string) edit {
	return edit{File: file, Old: anchor, New: code + anchor}
}

// remove drops a guard: the bug is the engine without it.
func remove(file, old string) edit {
	return edit{File: file, Old: old}
}

// oneIn is a condition true about once in n calls. It counts microseconds:
// macOS's wall clock has no finer grain, and a multiple of 1000 nanoseconds
// is always a multiple of 20.
func oneIn(n int) string {
	return fmt.Sprintf("time.Now().UnixNano()/1000%%%d == 0", n)
}

// answer500 fails a request with a plain error, which Vault answers with a 500.
func answer500(cond string) string {
	return "\tif " + cond + " {\n\t\treturn nil, fmt.Errorf(\"storage busy\")\n\t}\n"
}

// suites are the test suites a mutation can name. Each runs against a copy of
// the engine: unit in the copy, the others in e2e/ with PLUGIN_SOURCE naming
// the copy. chaos-openbao is the run on OpenBao whose standbys answer reads
// through their own plugin process.
var suites = map[string]struct {
	inE2E bool
	env   []string
	args  []string
}{
	"unit":          {false, nil, []string{"test", "-race", "-count=1", "./..."}},
	"chaos":         {true, nil, []string{"test", "-count=1", "-timeout", "20m", "-run", "^TestChaos", "-v", "./..."}},
	"chaos-openbao": {true, []string{"E2E_SERVER=openbao"}, []string{"test", "-count=1", "-timeout", "20m", "-run", "^TestChaos_StandbyReads", "-v", "./..."}},
}

// checkTable refuses a table that would plant nothing or name no suite.
func checkTable() error {
	seen := map[string]bool{}
	for _, m := range mutations {
		if m.Name == "" || seen[m.Name] || strings.ContainsAny(m.Name, "/, ") {
			return fmt.Errorf("mutation %q: names must be unique, without '/', ',' or spaces", m.Name)
		}
		seen[m.Name] = true
		if len(m.Edits)+len(m.Append) == 0 || len(m.Suites) == 0 {
			return fmt.Errorf("mutation %s: needs an edit and a suite", m.Name)
		}
		for _, e := range m.Edits {
			if e.Old == "" {
				return fmt.Errorf("mutation %s: an edit of %s has no old text", m.Name, e.File)
			}
		}
		for _, s := range m.Suites {
			if _, ok := suites[s]; !ok {
				return fmt.Errorf("mutation %s: no suite %q", m.Name, s)
			}
		}
	}
	return nil
}
