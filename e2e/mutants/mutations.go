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
	// Plugin is the folder of the plugin the bug is planted in: "" for the
	// static engine at the root, "dynamic" for the Redis plugin.
	Plugin string
	Edits  []edit
	Append []appendix
	Suites []string
}

// secretsFile is where most bugs are planted: the secrets' read and write path.
const secretsFile = "path_secrets.go"

// Where secretWrite has just taken the name's lock, and where secretDelete,
// holding it and having read the metadata of what it deletes, deletes it.
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
		Edits:  []edit{insertBefore(secretsFile, writeLocked, answer500(late+" && "+oneIn(20)))},
		Append: []appendix{startedAt(secretsFile)},
		// The unit suite is over in about two seconds.
		Suites: []string{"chaos"},
	},
	// The API's meaning, broken only once the process is 5 s old: the unit
	// suite is over by then, so only the table's run through a server can
	// catch them.
	{
		Name: "late-cas-required-lets-create-through",
		Desc: "once the plugin process is 5 s old, a cas_required mount lets a create through without cas",
		Edits: []edit{{File: secretsFile, Old: "\tif cfg.CASRequired && !hasCAS {\n",
			New: "\tif cfg.CASRequired && !hasCAS && !(req.Operation == logical.CreateOperation && " + late + ") {\n"}},
		Append: []appendix{startedAt(secretsFile)},
		Suites: apiSuites,
	},
	{
		Name: "late-config-write-ignored",
		Desc: "once the plugin process is 5 s old, a config write is stored but the running mount keeps the old config",
		Edits: []edit{
			{File: configFile, Old: "\t\"net/http\"\n", New: "\t\"net/http\"\n\t\"time\"\n"},
			{File: configFile, Old: "\tb.config = &updated\n", New: "\tif !(" + late + ") {\n\t\tb.config = &updated\n\t}\n"},
		},
		Append: []appendix{startedAt(configFile)},
		Suites: apiSuites,
	},
	{
		Name: "late-update-renews-created-time",
		Desc: "once the plugin process is 5 s old, an update gives the secret a new created_time",
		Edits: []edit{insertAfter(secretsFile, "\t\tmeta.Version, meta.CreatedTime = current.Version+1, current.CreatedTime\n",
			"\t\tif "+late+" {\n\t\t\tmeta.CreatedTime = now\n\t\t}\n")},
		Append: []appendix{startedAt(secretsFile)},
		Suites: apiSuites,
	},
	{
		Name: "late-write-drops-a-key",
		Desc: "once the plugin process is 5 s old, a write of several keys stores all but one",
		Edits: []edit{insertBefore(secretsFile, "\tcas, hasCAS, resp := parseCAS(req.Data)\n",
			"\tif len(data) > 1 && "+late+" {\n\t\tfor key := range data {\n\t\t\tdelete(data, key)\n\t\t\tbreak\n\t\t}\n\t}\n")},
		Append: []appendix{startedAt(secretsFile)},
		Suites: apiSuites,
	},
	{
		Name: "late-stale-list",
		Desc: "once the plugin process is 5 s old, a list comes from a copy up to 2 s old",
		Edits: []edit{
			{File: secretsFile, Old: "\t\"strings\"\n\t\"time\"\n", New: "\t\"strings\"\n\t\"sync\"\n\t\"time\"\n"},
			{File: secretsFile, Old: "\tkeys, err := req.Storage.List(ctx, secretStorageKey(prefix))\n",
				New: "\tkeys, err := recentList(ctx, b, req.Storage, secretStorageKey(prefix))\n"},
		},
		Append: []appendix{startedAt(secretsFile), {File: secretsFile, Code: recentListCode}},
		Suites: apiSuites,
	},
	{
		Name: "late-undocumented-field",
		Desc: "once the plugin process is 5 s old, a list of secrets answers a field its OpenAPI schema lacks",
		Edits: []edit{{File: secretsFile, Old: "\treturn logical.ListResponse(keys), nil\n",
			New: "\tresp := logical.ListResponse(keys)\n\tif len(keys) > 0 && " + late + " {\n\t\tresp.Data[\"count\"] = len(keys)\n\t}\n\treturn resp, nil\n"}},
		Append: []appendix{startedAt(secretsFile)},
		Suites: apiSuites,
	},

	// The dynamic plugin's: each breaks the promise that a credential
	// lives only while its lease does.
	{
		Name: "revoke-fails-on-missing-user", Plugin: "dynamic",
		Desc:   "deleting a user that is already gone is an error, so its lease cannot be revoked",
		Edits:  []edit{{File: userFile, Old: "if err := conn.ACLDelUser(ctx, username).Err(); err != nil {", New: "if n, err := conn.ACLDelUser(ctx, username).Result(); err != nil || n == 0 {"}},
		Suites: restoreSuites,
	},
	{
		Name: "revoke-deletes-nothing", Plugin: "dynamic",
		Desc: "revoke answers success without deleting the user",
		Edits: []edit{{File: userFile, Old: `		if err := deleteUser(ctx, conn, lease.Username); err != nil {
			return err
		}
`, New: ""}},
		Suites: leaseSuites,
	},
	{
		Name: "no-wal-before-setuser", Plugin: "dynamic",
		Desc:  "a user is made with no write-ahead log entry, so the sweep may delete it while its create is in flight",
		Edits: []edit{{File: credsFile, Old: "walID, err := framework.PutWAL(ctx, s, walKindUser, &userWAL{Username: username})", New: "walID, err := \"\", error(nil)"}},
		// The sweep deletes a half-made user with no WAL entry as soon as the
		// rollback would, so no proof's outcome differs; what the entry
		// still guards, a sweep that races a create in flight, only a unit
		// test can time.
		Suites: []string{"unit"},
	},
	{
		Name: "rollback-deletes-nothing", Plugin: "dynamic",
		Desc: "the rollback of an abandoned create deletes no user",
		Edits: []edit{{File: "wal.go", Old: `		return b.withConn(ctx, req.Storage, func(conn *connection) error {
			return deleteUser(ctx, conn, w.Username)
		})`, New: "\t\treturn nil"}},
		Suites: crashSuites,
	},
	{
		Name: "sweep-deletes-nothing", Plugin: "dynamic",
		Desc:   "the sweep leaves the users of leases a snapshot restore forgot",
		Edits:  []edit{{File: "sweep.go", Old: "\tif b.usernameTag == \"\" {", New: "\tif true {"}},
		Suites: restoreSuites,
	},
	{
		Name: "lease-without-username", Plugin: "dynamic",
		Desc:   "the lease does not carry the username its revoke needs",
		Edits:  []edit{{File: credsFile, Old: "lease.internal())", New: `map[string]any{"role": lease.Role})`}},
		Suites: leaseSuites,
	},
	{
		Name: "renew-past-max-ttl", Plugin: "dynamic",
		Desc:   "renew extends a lease by its ttl whatever its max_ttl",
		Edits:  []edit{{File: userFile, Old: "seconds(lease.MaxTTL)", New: "0", All: true}},
		Suites: leaseSuites,
	},
}

// apiSuites run the API's table through each server.
var apiSuites = []string{"api", "api-openbao"}

// configFile holds the config path.
const configFile = "path_config.go"

// late is true once the plugin process is 5 s old (see startedAt).
const late = "time.Since(started) > 5*time.Second"

// startedAt adds to file when the plugin process began.
func startedAt(file string) appendix {
	return appendix{File: file, Code: "\n// started is when this plugin process began.\nvar started = time.Now()\n"}
}

// recentListCode serves a mount's list from a copy up to 2 s old, once the
// process is 5 s old.
const recentListCode = `
var (
	recentListMu sync.Mutex
	recentLists  = map[recentListKey]recentListEntry{}
)

type recentListKey struct {
	b      *backend
	prefix string
}

type recentListEntry struct {
	keys []string
	read time.Time
}

func recentList(ctx context.Context, b *backend, s logical.Storage, prefix string) ([]string, error) {
	recentListMu.Lock()
	defer recentListMu.Unlock()
	key := recentListKey{b, prefix}
	if r, ok := recentLists[key]; ok && time.Since(started) > 5*time.Second && time.Since(r.read) < 2*time.Second {
		return append([]string(nil), r.keys...), nil
	}
	keys, err := s.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	recentLists[key] = recentListEntry{keys: keys, read: time.Now()}
	return keys, nil
}
`

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
func insertAfter(file, anchor, code string) edit {
	return edit{File: file, Old: anchor, New: anchor + code}
}

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
	// dir is where the suite runs, from the repository's root; "" is the
	// copy itself. Suites that run elsewhere write verdicts.
	dir  string
	env  []string
	args []string
}{
	"unit":          {"", nil, []string{"test", "-race", "-count=1", "./..."}},
	"chaos":         {"e2e", nil, []string{"test", "-count=1", "-timeout", "20m", "-run", "^TestChaos", "-v", "./..."}},
	"chaos-openbao": {"e2e", []string{"E2E_SERVER=openbao"}, []string{"test", "-count=1", "-timeout", "20m", "-run", "^TestChaos_StandbyReads", "-v", "./..."}},
	"api":           {"e2e", nil, []string{"test", "-count=1", "-timeout", "10m", "-run", "^TestAPICases_ThroughServer", "-v", "."}},
	"api-openbao":   {"e2e", []string{"E2E_SERVER=openbao"}, []string{"test", "-count=1", "-timeout", "10m", "-run", "^TestAPICases_ThroughServer", "-v", "."}},
	// The dynamic plugin's lease proofs, each the shortest that sees its
	// bugs: the proof without faults, a create killed midway, a restore.
	"leases":                 {"dynamic/e2e", nil, leaseProof("TestLeases_CredentialsLiveOnlyWhileTheirLeasesDo")},
	"leases-openbao":         {"dynamic/e2e", []string{"E2E_SERVER=openbao"}, leaseProof("TestLeases_CredentialsLiveOnlyWhileTheirLeasesDo")},
	"leases-crash":           {"dynamic/e2e", nil, leaseProof("TestOutage_RollbackDeletesTheUserOfACreateKilledMidway")},
	"leases-crash-openbao":   {"dynamic/e2e", []string{"E2E_SERVER=openbao"}, leaseProof("TestOutage_RollbackDeletesTheUserOfACreateKilledMidway")},
	"leases-restore":         {"dynamic/e2e", nil, leaseProof("TestLeases_SnapshotRestoreRevokesItsLeasesAndForgetsLaterOnes")},
	"leases-restore-openbao": {"dynamic/e2e", []string{"E2E_SERVER=openbao"}, leaseProof("TestLeases_SnapshotRestoreRevokesItsLeasesAndForgetsLaterOnes")},
}

// leaseProof runs one of the dynamic plugin's lease proofs.
func leaseProof(test string) []string {
	return []string{"test", "-count=1", "-timeout", "10m", "-run", "^" + test + "$", "-v", "."}
}

// The suites each bug of the dynamic plugin must be caught by: its unit
// tests, and the lease proof that meets it on each server.
var (
	leaseSuites   = []string{"unit", "leases", "leases-openbao"}
	crashSuites   = []string{"unit", "leases-crash", "leases-crash-openbao"}
	restoreSuites = []string{"unit", "leases-restore", "leases-restore-openbao"}
)

// Where the dynamic plugin's bugs are planted.
const (
	userFile  = "secret_user.go"
	credsFile = "path_creds.go"
)

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
