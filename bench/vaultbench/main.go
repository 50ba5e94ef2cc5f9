// Command vaultbench measures the plugin through a real Vault server, side by
// side with the floor plugin, HashiCorp's KV plugin, Vault's built-in KV and
// the plugin built without its SystemView cache, in alternating rounds, and
// writes BENCHMARKS.md. Run it with `make bench`.
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// engine is one secrets engine under test, mounted at its own path.
type engine struct {
	name    string // as reported
	mount   string
	plugin  string // plugin file name in the plugin directory; empty for built-in kv
	options map[string]string
	// prefix is where its secrets live under the mount; wrap turns a value into a write body.
	prefix string
	wrap   func(value string) interface{}
	pid    int // of the plugin process while the loads run; 0 for built-in kv
}

func dataBody(v string) interface{} {
	return map[string]interface{}{"data": map[string]interface{}{"password": v}}
}
func kvBody(v string) interface{} { return map[string]interface{}{"password": v} }

var engines = []*engine{
	// The plugin's name and mount are the Makefile's PLUGIN and MOUNT, as flags.
	{name: "reference", prefix: "secrets/", wrap: dataBody},
	{name: "floor", mount: "floor", plugin: "floor", prefix: "secrets/", wrap: dataBody},
	// Vault lets only a mount of type "kv" set a version; the plugin defaults to 1.
	{name: "kv-plugin", mount: "kvp", plugin: "vault-plugin-secrets-kv", wrap: kvBody},
	{name: "kv-builtin", mount: "kv", options: map[string]string{"version": "1"}, wrap: kvBody},
	// The plugin built from -source without cachedSystemView (buildUncached).
	{name: "uncached", mount: "uncached", plugin: "uncached", prefix: "secrets/", wrap: dataBody},
}

var (
	vaultBinary   = flag.String("vault", "", "Vault server binary")
	openbaoBinary = flag.String("openbao", "", "OpenBao server binary: if set, reads and writes of reference and floor are measured through it too")
	pluginPath    = flag.String("plugin", "", "the reference plugin binary")
	pluginSource  = flag.String("source", "", "the reference plugin's module, built again without its SystemView cache")
	pluginName    = flag.String("name", "", "its name in Vault's catalog")
	pluginMount   = flag.String("mount", "", "where to mount it")
	inProcess     = flag.String("inprocess", "", "benchstat output of the in-process benchmarks, to include")
	out           = flag.String("out", "BENCHMARKS.md", "report to write")
	chart         = flag.String("chart", "throughput.svg", "chart to write")
	rounds        = flag.Int("rounds", 8, "alternating rounds per measurement")
	roundTime     = flag.Duration("round", time.Second, "length of one engine's turn in a round")
	scaleCount    = flag.Int("scale", 100000, "secrets in the folder of the list-at-scale test")
)

const token = "bench-root"

var addr string

func main() {
	flag.Parse()
	log.SetFlags(0)
	if *pluginPath == "" || *pluginSource == "" || *pluginName == "" || *pluginMount == "" {
		fatalf("-plugin, -source, -name and -mount are required")
	}
	engines[0].plugin, engines[0].mount = *pluginName, *pluginMount
	work, err := os.MkdirTemp("", "vaultbench-")
	check(err)
	defer os.RemoveAll(work)
	pluginDir := filepath.Join(work, "plugins")
	check(os.MkdirAll(pluginDir, 0o755))
	check(copyFile(*pluginPath, filepath.Join(pluginDir, engines[0].plugin)))
	gobuild(".", filepath.Join(pluginDir, "floor"), "./floor")
	gobuild(".", filepath.Join(pluginDir, "vault-plugin-secrets-kv"), "github.com/hashicorp/vault-plugin-secrets-kv/cmd/vault-plugin-secrets-kv")
	buildUncached(*pluginSource, filepath.Join(work, "uncached"), filepath.Join(pluginDir, "uncached"))

	server = startServer(*vaultBinary, work, pluginDir)
	defer stopServer()

	var report report
	report.machine = machine()
	report.coldEnables = append(report.coldEnables, mountEngines(engines, pluginDir))

	// write updates one name per worker; create writes a new name every time.
	for _, op := range []string{"read", "write", "create", "list"} {
		for _, c := range []int{1, 8, 32} {
			report.loads = append(report.loads, measure(engines, op, c))
		}
	}
	report.resources(pluginDir)
	report.scale()
	report.coldStarts()

	// The same plugin binary, and the floor, through OpenBao: a server of its
	// own once Vault's is gone, so neither takes cores from the other.
	if *openbaoBinary != "" {
		stopServer()
		server = startServer(*openbaoBinary, work, pluginDir)
		version, err := exec.Command(*openbaoBinary, "version").Output()
		fields := strings.Fields(string(version))
		if err != nil || len(fields) < 2 {
			fatalf("%s version: %v %q", *openbaoBinary, err, version)
		}
		report.openbaoVersion = strings.Join(fields[:2], " ") // "OpenBao vX.Y.Z", without the commit
		mountEngines(engines[:2], pluginDir)
		for _, op := range []string{"read", "write"} {
			for _, c := range []int{1, 8, 32} {
				report.openbao = append(report.openbao, measure(engines[:2], op, c))
			}
		}
	}
	report.write()
}

// mountEngines registers and enables each engine on the running server, seeds
// a secret to read and a folder of 100 to list, and notes each plugin's
// process. It returns how long the first engine's mount took from enable to
// its first read, starting its plugin process.
func mountEngines(list []*engine, pluginDir string) float64 {
	var coldEnable float64
	for _, e := range list {
		typ := "kv"
		if e.plugin != "" {
			typ = e.plugin
			sum := sha256sum(filepath.Join(pluginDir, e.plugin))
			must(call("PUT", "sys/plugins/catalog/secret/"+e.plugin, map[string]interface{}{"sha256": sum, "command": e.plugin}), 204)
		}
		enableStart := time.Now()
		must(call("POST", "sys/mounts/"+e.mount, map[string]interface{}{"type": typ, "options": e.options}), 204)
		if e == list[0] {
			waitRead(e.mount + "/config")
			coldEnable = milliseconds(time.Since(enableStart))
		}
	}
	for _, e := range list {
		must(call("POST", e.path("bench/read"), e.wrap("s3cr3t-value")), 200, 204)
		for i := 0; i < 100; i++ {
			must(call("POST", e.path(fmt.Sprintf("bench/list/k%03d", i)), e.wrap("v")), 200, 204)
		}
	}
	for _, e := range list {
		if e.plugin != "" {
			pids := pluginPIDs(filepath.Join(pluginDir, e.plugin))
			if len(pids) != 1 {
				fatalf("%s: want one plugin process, found %v", e.name, pids)
			}
			e.pid = pids[0]
		}
	}
	return coldEnable
}

func (e *engine) path(name string) string { return e.mount + "/" + e.prefix + name }

// load is one operation at one concurrency, for every engine.
type load struct {
	op          string
	concurrency int
	results     map[string]*result
	// ratios[x] holds, per round, reference's throughput over engine x's.
	ratios map[string][]float64
}

type result struct {
	requests  int
	errors    int
	elapsed   time.Duration
	latencies []time.Duration
	// CPU time the Vault and plugin processes used while the load ran.
	vaultCPU, pluginCPU time.Duration
}

func (r *result) cpuPerRequest(cpu time.Duration) time.Duration {
	return cpu / time.Duration(max(r.requests, 1))
}

func (r *result) rps() float64 { return float64(r.requests) / r.elapsed.Seconds() }

func (r *result) percentile(p float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	sort.Slice(r.latencies, func(i, j int) bool { return r.latencies[i] < r.latencies[j] })
	return r.latencies[int(float64(len(r.latencies)-1)*p)]
}

// measure runs op at concurrency on each engine of list, whose first is
// the reference, in alternating rounds.
func measure(list []*engine, op string, concurrency int) load {
	l := load{op: op, concurrency: concurrency, results: map[string]*result{}, ratios: map[string][]float64{}}
	for _, e := range list {
		l.results[e.name] = &result{}
		run(e, op, concurrency, *roundTime/4, &result{}) // warm-up
	}
	for r := 0; r < *rounds; r++ {
		perRound := map[string]float64{}
		for _, e := range list {
			var res result
			vault0, plugin0 := cpuTime(server.Process.Pid), cpuTime(e.pid)
			run(e, op, concurrency, *roundTime, &res)
			perRound[e.name] = res.rps()
			total := l.results[e.name]
			total.requests += res.requests
			total.errors += res.errors
			total.elapsed += res.elapsed
			total.latencies = append(total.latencies, res.latencies...)
			total.vaultCPU += cpuTime(server.Process.Pid) - vault0
			total.pluginCPU += cpuTime(e.pid) - plugin0
		}
		for _, e := range list[1:] {
			l.ratios[e.name] = append(l.ratios[e.name], perRound[list[0].name]/perRound[e.name])
		}
	}
	var parts []string
	for _, e := range list {
		parts = append(parts, fmt.Sprintf("%s %.0f/s", e.name, l.results[e.name].rps()))
	}
	log.Printf("%-5s c=%-2d %s", op, concurrency, strings.Join(parts, ", "))
	return l
}

func milliseconds(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// created numbers the secrets the create load writes, so each is new.
var created atomic.Int64

var client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}

// run drives one engine with concurrency workers for d.
func run(e *engine, op string, concurrency int, d time.Duration, res *result) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for w := 0; w < concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			requests, errors := 0, 0
			body, _ := json.Marshal(e.wrap("s3cr3t-value"))
			for i := 0; time.Now().Before(deadline); i++ {
				method, path, payload := "GET", e.path("bench/read"), []byte(nil)
				switch op {
				case "write":
					method, path, payload = "POST", e.path(fmt.Sprintf("bench/w%d", w)), body
				case "create":
					method, path, payload = "POST", e.path(fmt.Sprintf("bench/new/c%d", created.Add(1))), body
				case "list":
					method, path = "LIST", e.path("bench/list/")
				}
				t0 := time.Now()
				status := rawCall(method, path, payload)
				lat = append(lat, time.Since(t0))
				requests++
				if status >= 300 && status != http.StatusNoContent {
					errors++
				}
			}
			mu.Lock()
			res.requests += requests
			res.errors += errors
			res.latencies = append(res.latencies, lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	if res.errors > 0 {
		fatalf("%s %s: %d of %d requests failed", e.name, op, res.errors, res.requests)
	}
}

func rawCall(method, path string, payload []byte) int {
	req, err := http.NewRequestWithContext(context.Background(), method, addr+"/v1/"+path, bytes.NewReader(payload))
	check(err)
	req.Header.Set("X-Vault-Token", token)
	resp, err := client.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

type reply struct {
	status int
	body   map[string]interface{}
}

func call(method, path string, body interface{}) reply {
	var payload []byte
	if body != nil {
		var err error
		payload, err = json.Marshal(body)
		check(err)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, addr+"/v1/"+path, bytes.NewReader(payload))
	check(err)
	req.Header.Set("X-Vault-Token", token)
	resp, err := client.Do(req)
	check(err)
	defer resp.Body.Close()
	r := reply{status: resp.StatusCode}
	_ = json.NewDecoder(resp.Body).Decode(&r.body)
	return r
}

func must(r reply, statuses ...int) reply {
	for _, s := range statuses {
		if r.status == s {
			return r
		}
	}
	fatalf("unexpected answer %d: %v", r.status, r.body)
	return r
}

// waitRead polls a path until Vault answers 200.
func waitRead(path string) {
	for i := 0; i < 5000; i++ {
		if rawCall("GET", path, nil) == http.StatusOK {
			return
		}
		time.Sleep(time.Millisecond)
	}
	fatalf("%s never answered", path)
}

// startServer starts a dev server of binary, Vault or OpenBao, with the
// plugin directory, and waits until it answers.
func startServer(binary, work, pluginDir string) *exec.Cmd {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	listen := l.Addr().String()
	l.Close()
	addr = "http://" + listen
	config := filepath.Join(work, "dev.hcl")
	check(os.WriteFile(config, []byte(fmt.Sprintf("plugin_directory = %q\n", pluginDir)), 0o600))
	cmd := exec.Command(binary, "server", "-dev", "-dev-root-token-id="+token, "-dev-listen-address="+listen, "-config="+config)
	logFile, err := os.Create(filepath.Join(work, filepath.Base(binary)+".log"))
	check(err)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	check(cmd.Start())
	for i := 0; i < 600; i++ {
		if rawCall("GET", "sys/health", nil) == http.StatusOK {
			return cmd
		}
		time.Sleep(100 * time.Millisecond)
	}
	fatalf("%s did not start", binary)
	return nil
}

// gobuild builds pkg of the module in dir into output.
func gobuild(dir, output, pkg string) {
	output, err := filepath.Abs(output)
	check(err)
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", output, pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		fatalf("go build %s: %v\n%s", pkg, err, out)
	}
}

// buildUncached builds into output a copy, in dir, of the plugin's module in
// source whose Factory passes Vault's SystemView through unchanged: the
// plugin without cachedSystemView, so that what the cache saves is measured
// without a knob for it in the plugin's own code.
func buildUncached(source, dir, output string) {
	check(os.MkdirAll(dir, 0o755))
	entries, err := os.ReadDir(source)
	check(err)
	for _, e := range entries {
		name := e.Name()
		if (strings.HasSuffix(name, ".go") && !strings.HasSuffix(name, "_test.go")) || name == "go.mod" || name == "go.sum" {
			check(copyFile(filepath.Join(source, name), filepath.Join(dir, name)))
		}
	}
	backend := filepath.Join(dir, "backend.go")
	src, err := os.ReadFile(backend)
	check(err)
	for _, edit := range [][2]string{
		{"newCachedSystemView(conf.System, time.Second)", "conf.System"},
		{"\t\"time\"\n", ""}, // used by that line only
	} {
		if n := strings.Count(string(src), edit[0]); n != 1 {
			fatalf("building the plugin without its SystemView cache: %q occurs %d times in backend.go, want once; Factory changed", edit[0], n)
		}
		src = []byte(strings.Replace(string(src), edit[0], edit[1], 1))
	}
	check(os.WriteFile(backend, src, 0o644))
	gobuild(dir, output, ".")
}

func copyFile(from, to string) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, data, 0o755)
}

func sha256sum(path string) string {
	data, err := os.ReadFile(path)
	check(err)
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

func check(err error) {
	if err != nil {
		fatalf("%v", err)
	}
}

// server is the server under test; fatalf stops it, with its plugins,
// before exiting.
var server *exec.Cmd

func stopServer() {
	if server != nil {
		_ = syscall.Kill(-server.Process.Pid, syscall.SIGKILL)
		_ = server.Wait()
		server = nil
	}
}

func fatalf(format string, args ...interface{}) {
	stopServer()
	log.Fatalf(format, args...)
}

// pluginPIDs lists the processes running the given plugin file.
func pluginPIDs(pluginFile string) []int {
	out, err := exec.Command("ps", "-e", "-o", "pid=,args=").Output()
	check(err)
	var pids []int
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[1] == pluginFile {
			pid, _ := strconv.Atoi(f[0])
			pids = append(pids, pid)
		}
	}
	return pids
}

// rssKiB reads a process's resident set size from /proc.
func rssKiB(pid int) int {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	check(err)
	for _, line := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			kb, _ := strconv.Atoi(strings.Fields(line)[1])
			return kb
		}
	}
	return 0
}

// cpuTime reads the user and system time a process has used from /proc, in
// clock ticks of 10 ms (USER_HZ is 100 on Linux); 0 for pid 0.
func cpuTime(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	check(err)
	// The fields after the command name, which may hold spaces, in parentheses.
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	user, errUser := strconv.Atoi(fields[11])
	system, errSystem := strconv.Atoi(fields[12])
	if errUser != nil || errSystem != nil {
		fatalf("cannot read the CPU time of process %d", pid)
	}
	return time.Duration(user+system) * 10 * time.Millisecond
}

func machine() string {
	mem := "unknown"
	if meminfo, err := os.ReadFile("/proc/meminfo"); err == nil {
		if kb, err := strconv.Atoi(strings.Fields(strings.SplitN(string(meminfo), "\n", 2)[0])[1]); err == nil {
			mem = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
		}
	}
	vaultVersion, _ := exec.Command(*vaultBinary, "version").Output()
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
