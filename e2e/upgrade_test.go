package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vault-reference/vault-plugin-secrets-reference/apicases"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/api/traffic"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/cluster"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/faults"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/recorder"
)

// An upgrade moves a mount to a new version of the plugin: on one server, it
// keeps every secret; in a cluster under load, by pin or by a rolling tune,
// it fails only the few requests the README allows, and a later failover
// keeps the new version.

func TestUpgrade_NewVersionKeepsEverySecret(t *testing.T) {
	enable(t, dev, "upgrade", oldVersion)
	const secrets = 20
	for i := 0; i < secrets; i++ {
		cluster.Must(t, dev, http.StatusOK, "POST", fmt.Sprintf("upgrade/secrets/s%d", i), apicases.KV("i", fmt.Sprint(i)))
	}
	cluster.Must(t, dev, http.StatusNoContent, "POST", "upgrade/config", map[string]any{"max_secret_bytes": 4096})

	dev.MustCLI(t, "plugin", "register", "-sha256="+pluginSHA[newVersion], "-version="+newVersion,
		"-command="+pluginCommand(newVersion), "secret", pluginName)
	t.Cleanup(func() {
		dev.CLI("secrets", "disable", "upgrade")
		dev.CLI("plugin", "deregister", "-version="+newVersion, "secret", pluginName)
	})
	dev.MustCLI(t, "secrets", "tune", "-plugin-version="+newVersion, "upgrade")
	// Vault 1.21's CLI ignores -mounts in the root namespace, so reload by name:
	// every mount of the plugin restarts on the version it is tuned to.
	dev.MustCLI(t, cluster.Tested.ReloadArgs(pluginName, false)...)

	cluster.WaitFor(t, 10*time.Second, "running_plugin_version "+newVersion+" after the reload", func() (bool, string) {
		got := runningVersion(t, dev, "upgrade")
		return got == newVersion, fmt.Sprint(got)
	})
	for i := 0; i < secrets; i++ {
		r := cluster.Must(t, dev, http.StatusOK, "GET", fmt.Sprintf("upgrade/secrets/s%d", i), nil)
		if r.Data()["data"].(map[string]any)["i"] != fmt.Sprint(i) || r.Data()["version"] != float64(1) {
			t.Fatalf("after upgrade s%d reads %s, want i=%d at version 1", i, r, i)
		}
	}
	if cfg := cluster.Must(t, dev, http.StatusOK, "GET", "upgrade/config", nil).Data(); cfg["max_secret_bytes"] != float64(4096) {
		t.Fatalf("config after upgrade %v, want max_secret_bytes 4096", cfg)
	}
	cluster.Must(t, dev, http.StatusOK, "POST", "upgrade/secrets/s0", map[string]any{"data": map[string]any{"i": "new"}, "cas": 1})
}

func TestCluster_UpgradeByPinUnderLoadAndRollBack(t *testing.T) {
	c := cluster.Shared(t)
	pin := "sys/plugins/pins/secret/" + pluginName
	if !cluster.Tested.HasPins {
		// OpenBao forked before Vault added pins: upgrade by tune instead.
		cluster.Must(t, c.Active(), http.StatusNotFound, "POST", pin, map[string]any{"version": newVersion}, "unsupported path")
		return
	}
	mounts := prepareUpgrade(t, c)
	t.Cleanup(func() { cluster.Send(c.Active().Addr(), c.Token, "DELETE", pin, nil) })

	// One write moves every mount of the plugin, whatever version each is tuned to.
	upgradeUnderLoad(t, c, mounts, newVersion, func(active *cluster.Node) {
		cluster.Must(t, active, http.StatusOK, "POST", pin, map[string]any{"version": newVersion})
		active.Server.MustCLI(t, cluster.Tested.ReloadArgs(pluginName, true)...)
	})
	if v := cluster.Must(t, c.Active(), http.StatusOK, "GET", pin, nil).Data()["version"]; v != newVersion {
		t.Fatalf("the pin reads %v after the step-down, want %s", v, newVersion)
	}
	// Rolled back by deleting the pin: each mount runs its tuned version again.
	upgradeUnderLoad(t, c, mounts, oldVersion, func(active *cluster.Node) {
		cluster.Must(t, active, http.StatusOK, "DELETE", pin, nil)
		active.Server.MustCLI(t, cluster.Tested.ReloadArgs(pluginName, true)...)
	})
}

func TestCluster_RollingUpgradeUnderLoad(t *testing.T) {
	c := cluster.Shared(t)
	mounts := prepareUpgrade(t, c)
	upgradeUnderLoad(t, c, mounts, newVersion, func(active *cluster.Node) {
		for _, m := range mounts {
			active.Server.MustCLI(t, "secrets", "tune", "-plugin-version="+newVersion, m)
		}
		active.Server.MustCLI(t, cluster.Tested.ReloadArgs(pluginName, true)...)
	})
	t.Cleanup(func() {
		for _, m := range mounts {
			cluster.Send(c.Active().Addr(), c.Token, "POST", "sys/mounts/"+m+"/tune", map[string]any{"plugin_version": oldVersion})
		}
		c.Active().Server.CLI(cluster.Tested.ReloadArgs(pluginName, true)...)
	})
}

// prepareUpgrade mounts the plugin a second time, at oldVersion, for the
// test, puts newVersion's binary on every node beside the old one and
// registers it, as an upgrade begins, and returns both mounts: a reload must
// move each, and may fail requests on one at a time only.
func prepareUpgrade(t *testing.T, c *cluster.Cluster) []string {
	t.Helper()
	for _, n := range c.Nodes {
		n.Install(t, newVersion)
	}
	c.Active().Server.MustCLI(t, "plugin", "register", "-sha256="+pluginSHA[newVersion], "-version="+newVersion,
		"-command="+pluginCommand(newVersion), "secret", pluginName)
	second := mount + "-b"
	c.Active().Server.MustCLI(t, "secrets", "enable", "-path="+second, "-plugin-version="+oldVersion, pluginName)
	t.Cleanup(func() { cluster.Send(c.Active().Addr(), c.Token, "DELETE", "sys/mounts/"+second, nil) })
	return []string{mount, second}
}

// reloadFailures bounds what may fail while a global reload moves two mounts
// to another version: requests in flight to the mount reloaded second,
// between the first reload and its own.
const (
	reloadFailures = 20
	reloadSpan     = time.Second
)

// upgradeUnderLoad runs clients on every mount, through each standby and
// spread, through change, which must move every mount to version, and a
// step-down after it. It checks their history for linearizability and
// asserts what failed: during change at most reloadFailures requests, all on
// one mount, within reloadSpan; during the step-down what a failover shows;
// nothing else.
func upgradeUnderLoad(t *testing.T, c *cluster.Cluster, mounts []string, version string, change func(active *cluster.Node)) {
	t.Helper()
	active := c.Active()
	// Names no other run used, new ones every renameEvery, so that each
	// name's history stays short enough to decide.
	run := time.Now().UnixNano()
	names := func(round int) []string {
		var paths []string
		for _, m := range mounts {
			paths = append(paths, fmt.Sprintf("%s/secrets/upgrade/%d/%d", m, run, round))
		}
		return paths
	}
	standbys := c.Standbys()
	tr := traffic.New(c, names(0))
	rec := recorder.New(c, tr)
	watch := faults.Watch(c, rec.Now)
	rec.Start(run, recorder.Spec{Pinned: standbys[0], Client: tr.Client()},
		recorder.Spec{Pinned: standbys[1], Client: tr.Client()}, recorder.Spec{Client: tr.Client()}, recorder.Spec{Client: tr.Client()})
	rec.Every(renameEvery, func(round int) { tr.Use(names(round)) })
	defer rec.Stop()
	time.Sleep(500 * time.Millisecond)

	reload := moveEveryMount(t, active, mounts, version, change, rec.Now)
	time.Sleep(time.Second)
	stepDown := stepDownOnVersion(t, c, mounts, version, rec.Now)
	time.Sleep(time.Second)
	rec.Stop()
	res := mustBeLinearizable(t, rec, watch.Disturbances([]faults.Fault{reload, stepDown}))

	inReload := failedOnlyAsAllowed(t, rec.History(), reload, stepDown)
	span, perMount := spread(inReload)
	if len(inReload) > reloadFailures || span > reloadSpan || len(perMount) > 1 {
		t.Errorf("during the reload %d requests failed over %v, on mounts %v; want at most %d, within %v, on one mount: %v",
			len(inReload), span.Round(time.Millisecond), perMount, reloadFailures, reloadSpan, inReload)
	}
	t.Logf("to %s under load: %d operations, linearizable; the change took %v and failed %d requests over %v (%v); "+
		"then %s: %s, %v", version, res.Operations, (reload.End - reload.Start).Round(time.Millisecond), len(inReload),
		span.Round(time.Millisecond), perMount, stepDown, stepDown.Detail, (stepDown.End - stepDown.Start).Round(time.Millisecond))
}

// moveEveryMount runs change through the active node and waits until every
// mount runs version; the fault it returns spans both, since requests may
// fail from the first reload to the last.
func moveEveryMount(t *testing.T, active *cluster.Node, mounts []string, version string, change func(active *cluster.Node), now func() time.Duration) faults.Fault {
	t.Helper()
	reload := faults.Fault{Kind: "plugin version change", Node: active, Start: now()}
	change(active)
	cluster.WaitFor(t, 15*time.Second, "every mount on "+version, func() (bool, string) {
		for _, m := range mounts {
			if v := runningVersion(t, active, m); v != version {
				return false, fmt.Sprintf("%s runs %v", m, v)
			}
		}
		return true, ""
	})
	reload.End = now()
	return reload
}

// stepDownOnVersion steps the active node down and checks that the next one
// runs every mount on version, with no plugin process of another: a new
// active node builds every mount afresh, from its own plugin directory.
func stepDownOnVersion(t *testing.T, c *cluster.Cluster, mounts []string, version string, now func() time.Duration) faults.Fault {
	t.Helper()
	stepDown := faults.Inject(c, faults.StepDown, nil, now)
	next := c.Active()
	expectRunningVersion(t, next, version, mounts...)
	for _, args := range cluster.ProcessesUnder(next.PluginDir) {
		if !strings.HasSuffix(args, pluginCommand(version)) {
			t.Errorf("%s runs %s after the step-down, want only %s", next.ID, args, pluginCommand(version))
		}
	}
	return stepDown
}

// failedOnlyAsAllowed fails the test for every request that failed outside
// what the README allows, a 500 during the reload or what a failover shows
// during the step-down, and returns those that failed during the reload.
func failedOnlyAsAllowed(t *testing.T, history []recorder.Op, reload, stepDown faults.Fault) []recorder.Op {
	t.Helper()
	var inReload []recorder.Op
	for _, o := range history {
		if !failed(o) {
			continue
		}
		switch {
		case o.Call <= reload.End && o.Return >= reload.Start && strings.HasPrefix(o.Answer, "500 "):
			inReload = append(inReload, o)
		case o.Call <= stepDown.End && o.Return >= stepDown.Start && failoverAnswers.MatchString(o.Answer):
		default:
			t.Errorf("%s failed, want only a 500 during the reload or a failover's answers during the step-down", o)
		}
	}
	return inReload
}

// spread is how failed requests spread: from the first one's call to the
// last return of any, and how many on each mount.
func spread(failed []recorder.Op) (time.Duration, map[string]int) {
	perMount := map[string]int{}
	var first, last time.Duration
	for i, o := range failed {
		if i == 0 {
			first = o.Call
		}
		last = max(last, o.Return)
		perMount[strings.SplitN(o.In.Key(), "/", 2)[0]]++
	}
	return last - first, perMount
}

// expectRunningVersion fails the test unless every one of mounts runs
// version on at.
func expectRunningVersion(t testing.TB, at cluster.Endpoint, version string, mounts ...string) {
	t.Helper()
	for _, m := range mounts {
		if got := runningVersion(t, at, m); got != version {
			t.Fatalf("%s on %s runs %v, want %s", m, at, got, version)
		}
	}
}
