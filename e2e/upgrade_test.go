package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// An upgrade moves a mount to a new version of the plugin: on one server, it
// keeps every secret; in a cluster under load, by pin or by a rolling tune,
// it fails only the few requests the README allows, and a later failover
// keeps the new version.

func TestUpgrade_NewVersionKeepsEverySecret(t *testing.T) {
	dev.enable(t, "upgrade", oldVersion)
	const secrets = 20
	for i := 0; i < secrets; i++ {
		must(t, dev, http.StatusOK, "POST", fmt.Sprintf("upgrade/secrets/s%d", i), secretBody("i", fmt.Sprint(i)))
	}
	must(t, dev, http.StatusNoContent, "POST", "upgrade/config", map[string]interface{}{"max_secret_bytes": 4096})

	dev.mustCLI(t, "plugin", "register", "-sha256="+pluginSHA[newVersion], "-version="+newVersion,
		"-command="+pluginCommand(newVersion), "secret", pluginName)
	t.Cleanup(func() {
		dev.cli("secrets", "disable", "upgrade")
		dev.cli("plugin", "deregister", "-version="+newVersion, "secret", pluginName)
	})
	dev.mustCLI(t, "secrets", "tune", "-plugin-version="+newVersion, "upgrade")
	// Vault 1.21's CLI ignores -mounts in the root namespace, so reload by name:
	// every mount of the plugin restarts on the version it is tuned to.
	dev.mustCLI(t, tested.reloadArgs(false)...)

	waitFor(t, 10*time.Second, "running_plugin_version "+newVersion+" after the reload", func() (bool, string) {
		got := runningVersion(t, dev, "upgrade")
		return got == newVersion, fmt.Sprint(got)
	})
	for i := 0; i < secrets; i++ {
		r := must(t, dev, http.StatusOK, "GET", fmt.Sprintf("upgrade/secrets/s%d", i), nil)
		if r.data()["data"].(map[string]interface{})["i"] != fmt.Sprint(i) || r.data()["version"] != float64(1) {
			t.Fatalf("after upgrade s%d reads %s", i, r)
		}
	}
	if cfg := must(t, dev, http.StatusOK, "GET", "upgrade/config", nil).data(); cfg["max_secret_bytes"] != float64(4096) {
		t.Fatalf("config after upgrade %v", cfg)
	}
	must(t, dev, http.StatusOK, "POST", "upgrade/secrets/s0", map[string]interface{}{"data": map[string]interface{}{"i": "new"}, "cas": 1})
}

func TestCluster_UpgradeByPinUnderLoadAndRollBack(t *testing.T) {
	c := sharedCluster(t)
	pin := "sys/plugins/pins/secret/" + pluginName
	if !tested.hasPins {
		// OpenBao forked before Vault added pins: upgrade by tune instead.
		must(t, c.active(), http.StatusNotFound, "POST", pin, map[string]interface{}{"version": newVersion}, "unsupported path")
		return
	}
	mounts := prepareUpgrade(t, c)
	t.Cleanup(func() { send(c.active().addr(), c.token, "DELETE", pin, nil) })

	// One write moves every mount of the plugin, whatever version each is tuned to.
	upgradeUnderLoad(t, c, mounts, newVersion, func(active *node) {
		must(t, active, http.StatusOK, "POST", pin, map[string]interface{}{"version": newVersion})
		active.srv.mustCLI(t, tested.reloadArgs(true)...)
	})
	if v := must(t, c.active(), http.StatusOK, "GET", pin, nil).data()["version"]; v != newVersion {
		t.Fatalf("the pin reads %v after the step-down, want %s", v, newVersion)
	}
	// Rolled back by deleting the pin: each mount runs its tuned version again.
	upgradeUnderLoad(t, c, mounts, oldVersion, func(active *node) {
		must(t, active, http.StatusOK, "DELETE", pin, nil)
		active.srv.mustCLI(t, tested.reloadArgs(true)...)
	})
}

func TestCluster_RollingUpgradeUnderLoad(t *testing.T) {
	c := sharedCluster(t)
	mounts := prepareUpgrade(t, c)
	upgradeUnderLoad(t, c, mounts, newVersion, func(active *node) {
		for _, m := range mounts {
			active.srv.mustCLI(t, "secrets", "tune", "-plugin-version="+newVersion, m)
		}
		active.srv.mustCLI(t, tested.reloadArgs(true)...)
	})
	t.Cleanup(func() {
		for _, m := range mounts {
			send(c.active().addr(), c.token, "POST", "sys/mounts/"+m+"/tune", map[string]interface{}{"plugin_version": oldVersion})
		}
		c.active().srv.cli(tested.reloadArgs(true)...)
	})
}

// prepareUpgrade mounts the plugin a second time, at oldVersion, for the
// test, puts newVersion's binary on every node beside the old one and
// registers it, as an upgrade begins, and returns both mounts: a reload must
// move each, and may fail requests on one at a time only.
func prepareUpgrade(t *testing.T, c *cluster) []string {
	t.Helper()
	for _, n := range c.nodes {
		n.install(t, newVersion)
	}
	c.active().srv.mustCLI(t, "plugin", "register", "-sha256="+pluginSHA[newVersion], "-version="+newVersion,
		"-command="+pluginCommand(newVersion), "secret", pluginName)
	second := mount + "-b"
	c.active().srv.mustCLI(t, "secrets", "enable", "-path="+second, "-plugin-version="+oldVersion, pluginName)
	t.Cleanup(func() { send(c.active().addr(), c.token, "DELETE", "sys/mounts/"+second, nil) })
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
func upgradeUnderLoad(t *testing.T, c *cluster, mounts []string, version string, change func(active *node)) {
	t.Helper()
	active := c.active()
	var paths []string
	for _, m := range mounts {
		p := m + "/secrets/upgrade"
		must(t, active, http.StatusNoContent, "DELETE", p, nil)
		paths = append(paths, p)
	}
	standbys := c.standbys()
	rec := newRecorder(c, paths)
	watch := startWatcher(c, rec.now)
	rec.start(time.Now().UnixNano(), clientSpec{pinned: standbys[0]}, clientSpec{pinned: standbys[1]}, clientSpec{}, clientSpec{})
	defer rec.stop()
	time.Sleep(500 * time.Millisecond)

	reload := moveEveryMount(t, active, mounts, version, change, rec.now)
	time.Sleep(time.Second)
	stepDown := stepDownOnVersion(t, c, mounts, version, rec.now)
	time.Sleep(time.Second)
	rec.stop()
	res := mustBeLinearizable(t, rec, watch.disturbances([]fault{reload, stepDown}))

	inReload := failedOnlyAsAllowed(t, rec.history(), reload, stepDown)
	span, perMount := spread(inReload)
	if len(inReload) > reloadFailures || span > reloadSpan || len(perMount) > 1 {
		t.Errorf("during the reload %d requests failed over %v, on mounts %v; want at most %d, within %v, on one mount: %v",
			len(inReload), span.Round(time.Millisecond), perMount, reloadFailures, reloadSpan, inReload)
	}
	t.Logf("to %s under load: %d operations, linearizable; the change took %v and failed %d requests over %v (%v); "+
		"then %s: %s, %v", version, res.operations, (reload.end - reload.start).Round(time.Millisecond), len(inReload),
		span.Round(time.Millisecond), perMount, stepDown, stepDown.detail, (stepDown.end - stepDown.start).Round(time.Millisecond))
}

// moveEveryMount runs change through the active node and waits until every
// mount runs version; the fault it returns spans both, since requests may
// fail from the first reload to the last.
func moveEveryMount(t *testing.T, active *node, mounts []string, version string, change func(active *node), now func() time.Duration) fault {
	t.Helper()
	reload := fault{kind: faultReload, node: active, start: now()}
	change(active)
	waitFor(t, 15*time.Second, "every mount on "+version, func() (bool, string) {
		for _, m := range mounts {
			if v := runningVersion(t, active, m); v != version {
				return false, fmt.Sprintf("%s runs %v", m, v)
			}
		}
		return true, ""
	})
	reload.end = now()
	return reload
}

// stepDownOnVersion steps the active node down and checks that the next one
// runs every mount on version, with no plugin process of another: a new
// active node builds every mount afresh, from its own plugin directory.
func stepDownOnVersion(t *testing.T, c *cluster, mounts []string, version string, now func() time.Duration) fault {
	t.Helper()
	stepDown := c.inject(faultStepDown, nil, now)
	next := c.active()
	expectRunningVersion(t, next, version, mounts...)
	for _, args := range processesUnder(next.pluginDir) {
		if !strings.HasSuffix(args, pluginCommand(version)) {
			t.Errorf("%s runs %s after the step-down", next.id, args)
		}
	}
	return stepDown
}

// failedOnlyAsAllowed fails the test for every request that failed outside
// what the README allows, a 500 during the reload or what a failover shows
// during the step-down, and returns those that failed during the reload.
func failedOnlyAsAllowed(t *testing.T, history []op, reload, stepDown fault) []op {
	t.Helper()
	var inReload []op
	for _, o := range history {
		if o.out.Outcome != outAmbiguous && o.out.Outcome != outRefused {
			continue
		}
		switch {
		case o.call <= reload.end && o.ret >= reload.start && strings.HasPrefix(o.answer, "500 "):
			inReload = append(inReload, o)
		case o.call <= stepDown.end && o.ret >= stepDown.start && failoverAnswers.MatchString(o.answer):
		default:
			t.Errorf("failed outside what the README allows: %s", o)
		}
	}
	return inReload
}

// spread is how failed requests spread: from the first one's call to the
// last return of any, and how many on each mount.
func spread(failed []op) (time.Duration, map[string]int) {
	perMount := map[string]int{}
	var first, last time.Duration
	for i, o := range failed {
		if i == 0 {
			first = o.call
		}
		last = max(last, o.ret)
		perMount[strings.SplitN(o.in.Path, "/", 2)[0]]++
	}
	return last - first, perMount
}

// expectRunningVersion fails the test unless every one of mounts runs
// version on at.
func expectRunningVersion(t testing.TB, at endpoint, version string, mounts ...string) {
	t.Helper()
	for _, m := range mounts {
		if got := runningVersion(t, at, m); got != version {
			t.Fatalf("%s on %s runs %v, want %s", m, at, got, version)
		}
	}
}
