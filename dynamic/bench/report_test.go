package bench

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vault-reference/vault-plugin-secrets-reference/dynamic/redistest"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/cluster"
)

// report is everything one run measured.
type report struct {
	machine  string
	loads    []load
	bounds   map[*engine]bounds
	outcomes []*outcome
}

func (r *report) write(t *testing.T, path string) {
	t.Helper()
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("# Benchmarks: against HashiCorp's Redis database plugin")
	p("")
	p("Every figure here was written by `make bench`; rerun it to reproduce them on your machine.")
	p("")
	p("Machine: %s.", r.machine)
	p("")
	p("One Vault server (a raft cluster of one node, on loopback) runs every engine; each engine has a redis-server of its own (%s) that loads its users from an aclfile, so that no engine's ACL SAVE keeps another's users. Every role grants `+ping`, with a TTL of %v and a max TTL of %v.", redisVersion(t), roleTTL, roleMaxTTL)
	p("")
	p("- **%s**: this plugin at `%s/`, with `save_acl=true` as its README configures it for such a Redis; built as the lease proof builds it, taking a write-ahead log entry for abandoned after %v (a release waits 10 minutes).", ours.name, ours.mount, walMinAge)
	p("- **%s**: `github.com/hashicorp/vault-plugin-database-redis` %s, the plugin users would pick instead, registered as a database plugin and run by Vault's database secrets engine at `%s/`.", peer.name, peerVersion(t), peer.mount)
	p("- **%s**: this plugin at `%s/` with `save_acl=false`, in the throughput table only: what ACL SAVE costs.", unsaved.name, unsaved.mount)
	r.writeLoads(p)
	r.writeBounds(p)
	r.writeOutcomes(p)
	p("")
	p("## Reproduce")
	p("")
	p("```shell")
	p("make bench")
	p("```")
	p("")
	p("in `dynamic/`. It builds the plugin, and once each Vault and HashiCorp's plugin (`bench/peer.sh`, from `bench/peerbuild`, a module that requires only it), runs `bench/` and rewrites this file. Close other work first: the figures are only as quiet as the machine.")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (r *report) writeLoads(p func(string, ...any)) {
	p("")
	p("## Issue and revoke")
	p("")
	p("Each worker reads `<mount>/creds/%s` and at once revokes the lease it got with `sys/leases/revoke`: one credential is both. Each engine is driven for %v per turn in %d alternating rounds; ratios are the medians of the round-by-round ratios of %s's credentials per second to the engine's. Per credential: the entries Vault appended to its raft log (one per write or delete of its storage), and what the engine's Redis counted in `INFO stats` and `INFO commandstats` during the engine's turns.", role, roundTime, rounds, ours.name)
	p("")
	p("| conc. | engine | credentials/s | p50 | p99 | %s ÷ engine | raft entries | Redis connections | Redis commands | Redis time (of which ACL SAVE) |", ours.name)
	p("|---|---|---|---|---|---|---|---|---|---|")
	for _, l := range r.loads {
		for _, e := range []*engine{ours, peer, unsaved} {
			res := l.results[e]
			ratio := "—"
			if e != ours {
				ratio = fmt.Sprintf("%.2f×", medianRatio(l.ratios[e]))
			}
			n := float64(res.credentials)
			p("| %d | %s | %.0f | %v | %v | %s | %.1f | %.1f | %.1f | %v (%v) |", l.concurrency, e.name, res.perSecond(),
				res.percentile(0.5).Round(time.Millisecond/10), res.percentile(0.99).Round(time.Millisecond/10), ratio,
				float64(res.raftEntries)/n, float64(res.redis.connections)/n, float64(res.redis.commands)/n,
				perCredential(res.redis.busy, n), perCredential(res.redis.saving, n))
		}
	}
	p("")
	for _, l := range r.loads {
		o, h, ratio := l.results[ours], l.results[peer], medianRatio(l.ratios[peer])
		spread := fmt.Sprintf("reference ÷ HashiCorp by round: %.2f× to %.2f×", slices.Min(l.ratios[peer]), slices.Max(l.ratios[peer]))
		if ratio < 1 {
			p("- **HashiCorp's plugin is faster at concurrency %d**, by %.2f×: %.0f credentials per second against the reference's %.0f (%s).", l.concurrency, 1/ratio, h.perSecond(), o.perSecond(), spread)
		} else {
			p("- **The reference is faster at concurrency %d**, by %.2f×: %.0f credentials per second against HashiCorp's plugin's %.0f (%s).", l.concurrency, ratio, o.perSecond(), h.perSecond(), spread)
		}
	}
	p("")
	p("Why, from the two plugins' code and the figures above:")
	p("")
	for _, l := range r.loads {
		o, h, u := l.results[ours], l.results[peer], l.results[unsaved]
		n, m := float64(o.credentials), float64(h.credentials)
		switch {
		case medianRatio(l.ratios[peer]) < 1:
			p("- **Concurrency %d.** HashiCorp's plugin skips two steps the reference takes for every credential. The reference has Redis run ACL SAVE after ACL SETUSER and after ACL DELUSER (%.1f per credential, %v of Redis's time), which rewrites the whole aclfile so that the users survive a restart of Redis; HashiCorp's plugin runs none. And the reference reads the role, writes a write-ahead log entry naming the user before ACL SETUSER and deletes it after, and keeps a record of the user for its sweep from the create to the revoke, each a call from its process back to Vault's storage: Vault appended %.1f raft entries per credential for it against %.1f for HashiCorp's plugin, whose database engine runs inside Vault and writes no log for a dynamic credential (`builtin/logical/database/path_creds_create.go`). With `save_acl=false` the reference made %.0f credentials per second: ACL SAVE accounts for %s of the gap; the rest lies in the steps only the reference takes, its calls to Vault's storage and the raft entries of the log and the record.",
				l.concurrency, float64(o.redis.saves)/n, perCredential(o.redis.saving, n), float64(o.raftEntries)/n, float64(h.raftEntries)/m,
				u.perSecond(), share(u.perSecond()-o.perSecond(), h.perSecond()-o.perSecond()))
		case l.concurrency > 1:
			p("- **Concurrency %d.** HashiCorp's plugin holds one mutex around every NewUser and DeleteUser (`redis.go`), so it makes and deletes one user at a time, and its DeleteUser closes its radix pool of Redis connections under that mutex, so that the next NewUser dials a new pool. radix's Close waits for the goroutine that dials the pool's connections after the first, which pauses after each dial the close cut short (`pool.go` in radix v4): a revoke that closely follows a create holds the mutex through those pauses, and every other create and revoke waits. HashiCorp's p99 was %v against the reference's %v; Redis accepted %.1f connections per HashiCorp credential, a full pool being 4, and none per reference credential, whose client keeps its connections.",
				l.concurrency, h.percentile(0.99).Round(time.Millisecond), o.percentile(0.99).Round(time.Millisecond), float64(h.redis.connections)/m)
		case slices.Min(l.ratios[peer]) <= 1:
			p("- **Concurrency %d.** One request at a time, HashiCorp's mutex costs nothing; the reference was faster although it runs ACL SAVE and its write-ahead log, by a margin within the rounds' spread.", l.concurrency)
		default:
			p("- **Concurrency %d.** One request at a time, HashiCorp's mutex costs nothing; the reference was faster in every round although it runs ACL SAVE and its write-ahead log, which this harness does not explain.", l.concurrency)
		}
	}
}

// share is part over whole as a percentage, within 0 and 100.
func share(part, whole float64) string {
	if whole <= 0 {
		return "none"
	}
	return fmt.Sprintf("%.0f%%", 100*min(max(part/whole, 0), 1))
}

func (r *report) writeBounds(p func(string, ...any)) {
	p("")
	p("## Revocation bound")
	p("")
	p("For each engine, %d leases revoked one at a time, then %d left to expire, a quarter of a second apart. Each credential is tried against Redis every %v until Redis refuses it; the figure is when the refused login was sent, counted from the acknowledged revoke (the first login is sent at once), or from the earliest the lease could expire (its issue's call plus its TTL).", boundLeases, boundLeases, loginEvery)
	p("")
	p("| engine | after a revoke: median, longest | logins that worked after the revoke | after expiry: median, longest | refused before expiry |")
	p("|---|---|---|---|---|")
	for _, e := range []*engine{ours, peer} {
		b := r.bounds[e]
		p("| %s | %s, %s | %d | %v, %v | %d |", e.name, micro(median(b.afterRevoke)), micro(longest(b.afterRevoke)), b.workedAfterRevoke,
			median(b.afterExpiry).Round(time.Millisecond/10), longest(b.afterExpiry).Round(time.Millisecond/10), b.refusedEarly)
	}
	o, h := r.bounds[ours], r.bounds[peer]
	p("")
	if o.workedAfterRevoke+h.workedAfterRevoke == 0 {
		p("Both engines delete the user before Vault acknowledges a revoke: the first login after the acknowledgement was refused every time.")
	}
	if median(h.afterExpiry) > median(o.afterExpiry) {
		p("After expiry HashiCorp's credentials were refused later (median %v against %v): its last DeleteUser closed its pool, so each revocation at expiry dials a new pool and closes it at once, waiting out radix's pauses (above) under its mutex, and revocations due close together queue behind one another.", median(h.afterExpiry).Round(time.Millisecond/10), median(o.afterExpiry).Round(time.Millisecond/10))
	}
}

func (r *report) writeOutcomes(p func(string, ...any)) {
	p("")
	p("## What each engine leaves behind under faults")
	p("")
	p("In each scenario both engines run the lease proof's clients at once (%d each: issue, renew a few times, then revoke or let the lease expire), each against its own Redis, for %v, and each is judged by the proof's ledger and checks (`dynamic/e2e/leases`, bounds: %v after a revoke, %v after expiry) while a prober tries every credential. Users left are the users of the engine (named `%s…` by the reference, `%s…` by HashiCorp's plugin) in Redis once every lease had died; in brackets, those no issue returned, which no lease names. They are counted again at the end of the run, at least %v after the last kill: time for Vault's rollback, which runs every minute, to take the reference's write-ahead log entries, and for its sweep to delete a user past its lease's longest life.", clientsPerEngine, scenarioTime, checkBounds.Revoke, checkBounds.Expiry, ours.prefix, peer.prefix, rollbackPass)
	p("")
	p("- **%s**.", noFault)
	p("- **%s**: each Redis stopped (SIGTERM) and started again halfway.", redisRestart)
	p("- **%s**: %d times, %v apart, %d creates sent at once to each engine, and %v later every plugin process of the Vault server killed (SIGKILL).", pluginKilled, kills, killEvery, burst, killDelay)
	p("")
	p("| scenario | engine | leases issued | issues failed (in flight at a kill) | leases the checks found a violation in | failed attempts to revoke, in Vault's log | leases Vault kept | users left when every lease had died | still there at the end |")
	p("|---|---|---|---|---|---|---|---|---|")
	for _, o := range r.outcomes {
		p("| %s | %s | %d | %d (%d) | %s | %s | %d | %d (%d) | %d (%d) |", o.scenario, o.engine.name, o.issued, o.failed, o.inFlight,
			violations(o), counts(o.revokeErrors), o.kept, len(o.orphans), o.unleased(o.orphans), len(o.left), o.unleased(o.left))
	}
	p("")
	for i := 0; i+1 < len(r.outcomes); i += 2 {
		o, h := r.outcomes[i], r.outcomes[i+1]
		switch {
		case len(h.orphans) > 0 && len(o.orphans) == 0:
			p("- **%s**: HashiCorp's plugin left %s; the reference left none.", o.scenario, usersLeft(h))
		case len(h.orphans)+len(o.orphans) > 0:
			p("- **%s**: HashiCorp's plugin left %s; the reference left %s.", o.scenario, usersLeft(h), usersLeft(o))
		default:
			p("- **%s**: neither engine left a user in Redis.", o.scenario)
		}
		if len(h.violations)+len(o.violations) > 0 {
			p("  The checks found a violation in HashiCorp's plugin's leases: %s; in the reference's: %s.", violations(h), violations(o))
		}
		if o.scenario == pluginKilled && o.unleased(o.left) > 0 {
			p("  The reference's users still there at the end outlived both its rollback and its sweep (`sweep.go`), which must delete them.")
		}
		if o.scenario == pluginKilled && o.unleased(o.orphans) > 0 && o.unleased(o.left) == 0 {
			p("  The reference's users that no issue returned were gone by the end: a kill after the create made the user and deleted its write-ahead log entry, but before Vault stored the lease, leaves a user no lease names (Vault may send the create again to the new process, which makes another). Its record in the plugin's storage names it, and the plugin's sweep deletes it once its lease's longest life (max_ttl) and a minute have passed.")
		}
		if o.scenario == pluginKilled && h.unleased(h.orphans) > o.unleased(o.left) {
			p("  Vault's database engine calls the plugin's NewUser and only then records the lease, with no write-ahead log: a user Redis made for a create whose answer died with the plugin's process has no lease, and nothing deletes it. The reference names the user in a write-ahead log entry before ACL SETUSER, and Vault's rollback deletes the users of the entries a kill left behind.")
		}
		if o.scenario == pluginKilled && len(h.revokeErrors) > 0 && len(o.revokeErrors) == 0 {
			p("  Vault's attempts to revoke HashiCorp's leases failed while its plugin's processes were killed (%s, in Vault's log), the reference's never: Vault's database engine does not send a call cut short that way again, so Vault's expiration manager retries the revocation later, with a backoff (`vault/expiration.go`), and the credential works meanwhile; Vault's plugin backend, which runs the reference, starts a new process and sends the call again (`builtin/plugin/backend.go`).", counts(h.revokeErrors))
		}
		if o.scenario == redisRestart && h.violations["credential-refused-while-its-lease-lived"] > o.violations["credential-refused-while-its-lease-lived"] {
			p("  HashiCorp's plugin runs no ACL SAVE, so a Redis that loads its users from its aclfile forgets, when it restarts, every user the plugin made since it started: credentials whose leases still lived were refused. The reference saves after every change of users (`save_acl`).")
		}
	}
}

// usersLeft says how many users an outcome left in Redis, and whose.
func usersLeft(o *outcome) string {
	if len(o.orphans) == 0 {
		return "no user"
	}
	return fmt.Sprintf("%d users in Redis once every lease had died (%d of leases Vault had yet to revoke, %d that no issue had returned), and %d at the end of the run (%d, %d)",
		len(o.orphans), len(o.orphans)-o.unleased(o.orphans), o.unleased(o.orphans), len(o.left), len(o.left)-o.unleased(o.left), o.unleased(o.left))
}

// violations lists how many leases each check found a violation in.
func violations(o *outcome) string { return counts(o.violations) }

// counts lists each count with what it counts, or says none.
func counts(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for what, n := range m {
		parts = append(parts, fmt.Sprintf("%d %s", n, strings.ReplaceAll(what, "|", `\|`)))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

func perCredential(d time.Duration, credentials float64) time.Duration {
	return time.Duration(float64(d) / credentials).Round(time.Microsecond)
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func medianRatio(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func longest(ds []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}

// micro is d to the microsecond, and a shorter time as such.
func micro(d time.Duration) string {
	if d < time.Microsecond {
		return "under 1µs"
	}
	return d.Round(time.Microsecond).String()
}

// redisVersion is "Redis x.y.z", from the redis-server the engines run.
func redisVersion(t *testing.T) string {
	binary, err := redistest.Binary()
	if err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command(binary, "--version").Output()
	for _, f := range strings.Fields(string(out)) {
		if v, ok := strings.CutPrefix(f, "v="); ok {
			return "Redis " + v
		}
	}
	return "Redis of unknown version"
}

// peerVersion is the version of HashiCorp's plugin peer.sh builds.
func peerVersion(t *testing.T) string {
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Version}}", "github.com/hashicorp/vault-plugin-database-redis")
	cmd.Dir = "peerbuild"
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list in peerbuild: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// machine is the line BENCHMARKS.md at the repository's root has.
func machine() string {
	mem := "unknown"
	if meminfo, err := os.ReadFile("/proc/meminfo"); err == nil {
		if kb, err := strconv.Atoi(strings.Fields(strings.SplitN(string(meminfo), "\n", 2)[0])[1]); err == nil {
			mem = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
		}
	}
	vaultVersion, _ := exec.Command(cluster.Binary, "version").Output()
	cpu := "unknown"
	if info, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(info), "\n") {
			if strings.HasPrefix(line, "model name") {
				cpu = strings.TrimSpace(strings.SplitN(line, ":", 2)[1])
				break
			}
		}
	}
	return fmt.Sprintf("%d cores (%s), %s memory, %s %s/%s, %s", runtime.NumCPU(), cpu, mem,
		runtime.Version(), runtime.GOOS, runtime.GOARCH, strings.TrimSpace(string(vaultVersion)))
}
