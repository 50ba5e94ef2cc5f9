package main

import (
	"fmt"
	"log"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

type report struct {
	machine    string
	pluginFile string
	loads      []load
	// coldEnables are enable-to-first-read times of a mount that starts the
	// plugin process; warmEnables those of mounts 2 to 50.
	coldEnables []float64
	// warmEnables are the enable-to-first-read times of mounts 2 to 50.
	warmEnables       []float64
	rss1, rss50       int
	processes50       int
	sizes             map[string]int64
	scaleWrite        time.Duration
	scaleList         []float64
	scaleListRSS      int
	bigWrite, bigRead []float64
	bigBytes          int
	// openbao holds the reads and writes of reference and floor through
	// OpenBao, measured after Vault's server stopped.
	openbao        []load
	openbaoVersion string
}

func (r *report) resources(pluginDir string) {
	ours := filepath.Join(pluginDir, engines[0].plugin)
	r.pluginFile = ours
	pids := pluginPIDs(ours)
	if len(pids) != 1 {
		fatalf("%d reference plugin processes, want 1", len(pids))
	}
	r.rss1 = rssKiB(pids[0])
	for i := 2; i <= 50; i++ {
		mount := fmt.Sprintf("%s%d", engines[0].mount, i)
		start := time.Now()
		must(call("POST", "sys/mounts/"+mount, map[string]any{"type": engines[0].plugin}), 204)
		waitRead(mount + "/config")
		r.warmEnables = append(r.warmEnables, milliseconds(time.Since(start)))
		must(call("POST", mount+"/secrets/app", dataBody("v")), 200)
	}
	pids = pluginPIDs(ours)
	r.processes50 = len(pids)
	r.rss50 = rssKiB(pids[0])
	r.sizes = map[string]int64{}
	for _, e := range engines {
		if e.plugin != "" {
			info, err := os.Stat(filepath.Join(pluginDir, e.plugin))
			check(err)
			r.sizes[e.name] = info.Size()
		}
	}
	log.Printf("RSS 1 mount %d KiB, 50 mounts %d KiB in %d process(es); enable to first read of mounts 2-50: median %.1f ms",
		r.rss1, r.rss50, r.processes50, median(r.warmEnables))
}

func (r *report) scale() {
	start := time.Now()
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if s := rawCall("POST", engines[0].path(fmt.Sprintf("scale/s%06d", i)), []byte(`{"data":{"k":"v"}}`)); s != 200 {
					fatalf("scale write %d: status %d", i, s)
				}
			}
		}()
	}
	for i := 0; i < *scaleCount; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	r.scaleWrite = time.Since(start)
	for i := 0; i < 5; i++ {
		t0 := time.Now()
		reply := must(call("LIST", engines[0].path("scale/"), nil), 200)
		r.scaleList = append(r.scaleList, float64(time.Since(t0).Microseconds())/1000)
		if n := len(reply.body["data"].(map[string]any)["keys"].([]any)); n != *scaleCount {
			fatalf("listed %d keys, want %d", n, *scaleCount)
		}
	}
	r.scaleListRSS = rssKiB(pluginPIDs(r.pluginFile)[0])
	// The largest secret the default config accepts: {"password":"…"} is 15
	// bytes around the value.
	r.bigBytes = 524288
	big := dataBody(strings.Repeat("v", r.bigBytes-15))
	for i := 0; i < 5; i++ {
		t0 := time.Now()
		must(call("POST", engines[0].path("big"), big), 200)
		r.bigWrite = append(r.bigWrite, float64(time.Since(t0).Microseconds())/1000)
		t0 = time.Now()
		must(call("GET", engines[0].path("big"), nil), 200)
		r.bigRead = append(r.bigRead, float64(time.Since(t0).Microseconds())/1000)
	}
	log.Printf("scale: %d writes in %v, list median %.0f ms; %d-byte secret: write %.1f ms, read %.1f ms",
		*scaleCount, r.scaleWrite.Round(time.Millisecond), median(r.scaleList), r.bigBytes, median(r.bigWrite), median(r.bigRead))
}

// coldStarts removes every mount of the plugin, so that its process exits, and
// times the enable of a new mount, which starts it again; four times over.
func (r *report) coldStarts() {
	mounts := []string{engines[0].mount}
	for i := 2; i <= 50; i++ {
		mounts = append(mounts, fmt.Sprintf("%s%d", engines[0].mount, i))
	}
	for i := 0; i < 4; i++ {
		for _, m := range mounts {
			must(call("DELETE", "sys/mounts/"+m, nil), 204)
		}
		for wait := 0; len(pluginPIDs(r.pluginFile)) > 0; wait++ {
			if wait > 1000 {
				fatalf("the plugin process did not exit once its mounts were gone")
			}
			time.Sleep(10 * time.Millisecond)
		}
		mounts = []string{fmt.Sprintf("cold%d", i)}
		start := time.Now()
		must(call("POST", "sys/mounts/"+mounts[0], map[string]any{"type": engines[0].plugin}), 204)
		waitRead(mounts[0] + "/config")
		r.coldEnables = append(r.coldEnables, milliseconds(time.Since(start)))
	}
	log.Printf("enable to first read, starting the process: %v ms", r.coldEnables)
}

func (r *report) write() {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("# Benchmarks")
	p("")
	p("Every figure here was written by `make bench`; rerun it to reproduce them on your machine.")
	p("")
	p("Machine: %s.", r.machine)
	p("")
	p("## Through Vault")
	p("")
	p("One dev server on loopback, five engines mounted side by side, each driven over HTTP for %v per turn in %d alternating rounds (A B C D E A B C D E ...). Ratios are the medians of the round-by-round ratios of the reference plugin's throughput to the other engine's. CPU per request is the CPU time the Vault process and the engine's plugin process used during the engine's turns, divided by its requests (from /proc; the client's own is left out): on a machine whose cores the client, Vault and the plugins share, it shows where a request's cost lies more steadily than throughput does. At concurrency 1 it also counts the Go runtime's spinning between requests, so compare it within a load, not across loads.", *roundTime, *rounds)
	p("")
	p("- **reference**: this plugin.")
	p("- **floor**: `bench/floor`, an external plugin that makes exactly one storage call per request and nothing else: the fastest an external plugin can be here.")
	p("- **kv-plugin**: HashiCorp's KV engine (version 1) built as an external plugin, the peer users would pick instead.")
	p("- **kv-builtin**: Vault's built-in KV version 1, in process: the ceiling.")
	p("- **uncached**: this plugin built from a copy of its source whose `Factory` passes Vault's SystemView through, without `cachedSystemView`: what the cache saves.")
	p("")
	p("![throughput by concurrency](bench/throughput.svg)")
	p("")
	p("| op | conc. | engine | req/s | p50 | p99 | CPU per request: Vault, plugin | reference ÷ engine |")
	p("|---|---|---|---|---|---|---|---|")
	for _, l := range r.loads {
		for _, e := range engines {
			res := l.results[e.name]
			ratio, pluginCPU := "—", "—"
			if e != engines[0] {
				ratio = fmt.Sprintf("%.2f×", median(l.ratios[e.name]))
			}
			if e.plugin != "" {
				pluginCPU = res.cpuPerRequest(res.pluginCPU).Round(time.Microsecond).String()
			}
			p("| %s | %d | %s | %.0f | %v | %v | %v, %s | %s |", l.op, l.concurrency, e.name, res.rps(),
				res.percentile(0.50).Round(time.Microsecond), res.percentile(0.99).Round(time.Microsecond),
				res.cpuPerRequest(res.vaultCPU).Round(time.Microsecond), pluginCPU, ratio)
		}
	}
	p("")
	p("### Targets")
	p("")
	p("| target | measured | met |")
	p("|---|---|---|")
	for _, t := range r.targets() {
		p("| %s | %s | %s |", t.name, t.measured, yesNo(t.met))
	}
	p("")
	p("### What stands in the way")
	p("")
	cpu := func(op, name string) string {
		res := r.load(op, 8).results[name]
		return fmt.Sprintf("%v in Vault and %v in the plugin", res.cpuPerRequest(res.vaultCPU).Round(time.Microsecond), res.cpuPerRequest(res.pluginCPU).Round(time.Microsecond))
	}
	ratios := func(op, name string) string {
		var out []string
		for _, l := range r.loads {
			if l.op == op {
				out = append(out, fmt.Sprintf("%.2f×", median(l.ratios[name])))
			}
		}
		return strings.Join(out, ", ")
	}
	p("- **Updates against the floor.** Vault calls any external plugin twice for a write: the existence check, then the write; the floor gets both calls too. The plugin answers the check from its metadata cache and makes one storage call, the write itself, as the floor does. What is left is what the API promises: the floor answers 204 and stores the bare value, while the plugin answers 200 with the new version and its times, which the SDK encodes as JSON inside gRPC and Vault decodes and encodes again for HTTP. At concurrency 8 an update cost %s, against %s for the floor. The plugin's own work (validation, the name's lock, encoding the entry) is a few per cent of its share: the in-process `Write` time below.", cpu("write", "reference"), cpu("write", "floor"))
	p("- **Creates.** A new name costs three storage calls, against the floor's one: the existence check misses the cache and reads storage (it may not fill the cache outside the name's lock), and the write reads storage again under the lock, because a create must never overwrite a secret that another request created meanwhile. Against the floor: %s by concurrency; against HashiCorp's KV plugin: %s.", ratios("create", "floor"), ratios("create", "kv-plugin"))
	p("- **Reads against the floor.** One call from Vault and one storage call back, as for the floor; the answer also carries the version and its times. At concurrency 8 a read cost %s, against %s for the floor. The ratio moves with the machine from run to run (%s here, by concurrency): the client, Vault and the plugins share %d cores, and a round is %v.", cpu("read", "reference"), cpu("read", "floor"), ratios("read", "floor"), runtime.NumCPU(), *roundTime)
	p("- **Small reads in process against KV version 1.** KV version 1 declares no fields and returns the stored body as it is. The plugin declares `name`, `data` and `cas` so that help, the OpenAPI document and its checks exist; the SDK's framework converts every declared field with reflection (mapstructure) on every request, and a read decodes the entry to answer its version and times. Updates in process are level with KV version 1, since the cache spares them the read of the current version.")
	p("- **Every engine against the built-in KV.** Each request to an external plugin crosses a gRPC connection, and each storage call crosses it back; the built-in engine does neither. The SDK's framework also asks Vault, before a request to a path declared with `Operations`, for the replication state and, before a write, whether the mount is local: each a further round trip, which the plugin answers from memory (`cachedSystemView` in `system_view.go`). The floor declares `Callbacks`, which skip both questions.")
	r.writeSystemView(p)
	r.writeOpenBao(p)
	p("")
	p("## Resources")
	p("")
	p("| measure | value |")
	p("|---|---|")
	p("| plugin RSS, 1 mount | %d KiB |", r.rss1)
	p("| plugin RSS, 50 mounts | %d KiB in %d process(es) (%.2f× one mount) |", r.rss50, r.processes50, float64(r.rss50)/float64(r.rss1))
	p("| enable to first read, starting the plugin process (%d times) | median %.1f ms, max %.1f ms |", len(r.coldEnables), median(r.coldEnables), maxOf(r.coldEnables))
	p("| enable to first read, mounts 2–50 | median %.1f ms, max %.1f ms |", median(r.warmEnables), maxOf(r.warmEnables))
	names := make([]string, 0, len(r.sizes))
	for n := range r.sizes {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p("| binary size, %s (stripped) | %.1f MiB |", n, float64(r.sizes[n])/(1<<20))
	}
	p("")
	p("## Scale")
	p("")
	p("| measure | value |")
	p("|---|---|")
	p("| write %d secrets into one folder, 32 writers | %v (%.0f writes/s) |", *scaleCount, r.scaleWrite.Round(time.Millisecond), float64(*scaleCount)/r.scaleWrite.Seconds())
	p("| list that folder (%d keys) | median %.0f ms |", *scaleCount, median(r.scaleList))
	p("| plugin RSS after the lists | %d KiB |", r.scaleListRSS)
	p("| write a secret of max_secret_bytes (%d bytes of data) | median %.1f ms |", r.bigBytes, median(r.bigWrite))
	p("| read it back | median %.1f ms |", median(r.bigRead))
	p("")
	p("The memory a list of 100 000 keys costs inside the plugin is in the in-process table below (`List/secrets=100000`, B/op).")
	p("")
	p("## In process")
	p("")
	p("Go benchmarks through `HandleRequest` on in-memory storage, the plugin (`bench_test.go`) against HashiCorp's KV engine (`bench/kv_bench_test.go`, its `Factory` with version 1 and 2) on the same shapes: a folder of 1 000 or 100 000 small secrets beside one target secret holding a small or a 64 KiB value. Runs are interleaved (`-count`), compared by benchstat; `reference` is the baseline column. KV version 1 has no check-and-set, so its CASWrite column is empty.")
	p("")
	if *inProcess != "" {
		comparisons, err := os.ReadFile(*inProcess)
		check(err)
		p("```")
		p("%s", strings.TrimSpace(string(comparisons)))
		p("```")
	}
	p("")
	p("## Reproduce")
	p("")
	p("```shell")
	p("make bench")
	p("```")
	p("")
	p("It builds the plugins and (once) Vault, installs OpenBao (once), runs the in-process benchmarks, then the server benchmarks, and rewrites this file and `bench/throughput.svg`. Close other work first: the figures are only as quiet as the machine.")
	check(os.WriteFile(*out, []byte(b.String()), 0o644))
	check(os.WriteFile(*chart, []byte(r.svg()), 0o644))
	fmt.Print(b.String())
}

// writeSystemView sets the reference against the plugin without its
// SystemView cache, with the spread of the rounds, since the gain is small
// beside what the machine's other work moves.
func (r *report) writeSystemView(p func(string, ...any)) {
	p("")
	p("### What the SystemView cache saves")
	p("")
	lowest, highest := math.Inf(1), math.Inf(-1)
	var rows []string
	for _, l := range r.loads {
		rounds := l.ratios["uncached"]
		m := median(rounds)
		lowest, highest = math.Min(lowest, m), math.Max(highest, m)
		rows = append(rows, fmt.Sprintf("| %s | %d | %.2f× | %.2f× – %.2f× |", l.op, l.concurrency, m, slices.Min(rounds), slices.Max(rounds)))
	}
	p("Answering the replication state and whether the mount is local from memory makes the plugin %.2f× to %.2f× as fast as without (reference ÷ uncached, the median of each load's rounds, over every operation and concurrency).", lowest, highest)
	p("")
	p("| op | conc. | reference ÷ uncached | rounds, lowest – highest |")
	p("|---|---|---|---|")
	for _, row := range rows {
		p("%s", row)
	}
}

// writeOpenBao sets the reference's reads and writes against the floor through
// OpenBao beside the same loads through Vault, from this same run.
func (r *report) writeOpenBao(p func(string, ...any)) {
	if len(r.openbao) == 0 {
		return
	}
	p("")
	p("## Through OpenBao")
	p("")
	p("The same plugin binary (one SHA-256) and the floor, through an OpenBao dev server (%s) started once Vault's had stopped, driven as above: %v per turn, %d alternating rounds. Vault's columns repeat its figures from the table above, measured in this same run.", r.openbaoVersion, *roundTime, *rounds)
	p("")
	p("| op | conc. | Vault: reference req/s | floor req/s | reference ÷ floor | OpenBao: reference req/s | floor req/s | reference ÷ floor |")
	p("|---|---|---|---|---|---|---|---|")
	for _, o := range r.openbao {
		v := r.load(o.op, o.concurrency)
		p("| %s | %d | %.0f | %.0f | %.2f× | %.0f | %.0f | %.2f× |", o.op, o.concurrency,
			v.results["reference"].rps(), v.results["floor"].rps(), median(v.ratios["floor"]),
			o.results["reference"].rps(), o.results["floor"].rps(), median(o.ratios["floor"]))
	}
}

type target struct {
	name, measured string
	met            bool
}

// load returns the measurement of op at one concurrency.
func (r *report) load(op string, concurrency int) load {
	for _, l := range r.loads {
		if l.op == op && l.concurrency == concurrency {
			return l
		}
	}
	fatalf("no %s load at concurrency %d", op, concurrency)
	return load{}
}

func (r *report) targets() []target {
	minRatio := func(op, engine string) float64 {
		lowest := math.Inf(1)
		for _, l := range r.loads {
			if l.op == op {
				lowest = math.Min(lowest, median(l.ratios[engine]))
			}
		}
		return lowest
	}
	readFloor, writeFloor := minRatio("read", "floor"), minRatio("write", "floor")
	readKV, writeKV := minRatio("read", "kv-plugin"), minRatio("write", "kv-plugin")
	rssRatio := float64(r.rss50) / float64(r.rss1)
	return []target{
		{"read ≥ 0.95× floor (lowest over concurrency)", fmt.Sprintf("%.2f×", readFloor), readFloor >= 0.95},
		{"write (update) ≥ 0.85× floor (lowest over concurrency)", fmt.Sprintf("%.2f×", writeFloor), writeFloor >= 0.85},
		{"read ≥ 1.5× kv-plugin (lowest over concurrency)", fmt.Sprintf("%.2f×", readKV), readKV >= 1.5},
		{"write (update) ≥ 1.4× kv-plugin (lowest over concurrency)", fmt.Sprintf("%.2f×", writeKV), writeKV >= 1.4},
		{"RSS of 50 mounts ≤ 1.5× one", fmt.Sprintf("%.2f×", rssRatio), rssRatio <= 1.5},
		{"enable to first read ≤ 300 ms", fmt.Sprintf("median %.0f ms starting the process, %.0f ms with it running", median(r.coldEnables), median(r.warmEnables)),
			median(r.coldEnables) <= 300 && median(r.warmEnables) <= 300},
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "**no**"
}

func maxOf(xs []float64) float64 {
	m := 0.0
	for _, x := range xs {
		if x > m {
			m = x
		}
	}
	return m
}

// svg draws throughput by concurrency, one panel per operation, one line per engine.
func (r *report) svg() string {
	const panelW, panelH, pad = 300, 220, 50
	colors := map[string]string{"reference": "#d62728", "floor": "#7f7f7f", "kv-plugin": "#1f77b4", "kv-builtin": "#2ca02c", "uncached": "#ff9896"}
	ops := []string{"read", "write", "create", "list"}
	var b strings.Builder
	width := len(ops)*(panelW+pad) + pad
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">`+"\n", width, panelH+2*pad+30)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	concs := []int{1, 8, 32}
	for i, op := range ops {
		x0, y0 := pad+i*(panelW+pad), pad
		top := 0.0
		for _, l := range r.loads {
			for _, res := range l.results {
				if l.op == op && res.rps() > top {
					top = res.rps()
				}
			}
		}
		top *= 1.1
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="13" font-weight="bold">%s (requests/s)</text>`+"\n", x0, y0-15, op)
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", x0, y0+panelH, x0+panelW, y0+panelH)
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", x0, y0, x0, y0+panelH)
		for k := 0; k <= 4; k++ {
			y := y0 + panelH - k*panelH/4
			fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%.0f</text>`+"\n", x0-4, y+4, top*float64(k)/4)
		}
		xOf := func(j int) int { return x0 + 20 + j*(panelW-40)/(len(concs)-1) }
		for j, c := range concs {
			fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">c=%d</text>`+"\n", xOf(j), y0+panelH+15, c)
		}
		for _, e := range engines {
			var points []string
			for j, c := range concs {
				for _, l := range r.loads {
					if l.op == op && l.concurrency == c {
						y := float64(y0+panelH) - l.results[e.name].rps()/top*panelH
						points = append(points, fmt.Sprintf("%d,%.0f", xOf(j), y))
					}
				}
			}
			fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", strings.Join(points, " "), colors[e.name])
		}
	}
	for k, e := range engines {
		x := pad + k*160
		y := panelH + 2*pad + 10
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n", x, y-10, colors[e.name], x+16, y, e.name)
	}
	b.WriteString("</svg>\n")
	return b.String()
}
