// Command report writes LEASES.md from the figures the lease proofs appended
// to a file (LEASE_REPORT): each proof's measured durations beside the
// bounds it asserts, on each server.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strings"
	"time"
)

type row struct {
	Test    string `json:"test"`
	Server  string `json:"server"`
	Figure  string `json:"figure"`
	GotMS   int64  `json:"got_ms"`
	BoundMS int64  `json:"bound_ms"`
}

func main() {
	in := flag.String("in", "", "the figures, one JSON object per line")
	out := flag.String("out", "LEASES.md", "the report to write")
	flag.Parse()
	if err := write(*in, *out); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
}

func write(in, out string) error {
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	defer f.Close()
	var rows []row
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		var r row
		if err := json.Unmarshal(scanner.Bytes(), &r); err != nil {
			return fmt.Errorf("%s: %w", in, err)
		}
		rows = append(rows, r)
	}
	if err := scanner.Err(); err != nil {
		return err
	}
	if len(rows) == 0 {
		return fmt.Errorf("%s holds no figures: did the proofs run with LEASE_REPORT set?", in)
	}
	sort.SliceStable(rows, func(i, j int) bool {
		if rows[i].Test != rows[j].Test {
			return rows[i].Test < rows[j].Test
		}
		return rows[i].Server > rows[j].Server
	})
	var b strings.Builder
	fmt.Fprintf(&b, "# The lease proofs' figures\n\nWritten by `make -C dynamic lease-report` from one run of the lease proofs on each server; rerun it to reproduce them on your machine.\n\n")
	fmt.Fprintf(&b, "Machine: %d cores, %s %s/%s, %s.\n\n", runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH, time.Now().UTC().Format("2006-01-02"))
	fmt.Fprintf(&b, "Each figure is the longest a proof measured, beside the bound it asserts. \"to refusal\" is from when the lease was dead for sure (its revoke acknowledged, or the latest its expiry could come) to the first login Redis refused, and may be negative: refused before the latest its expiry could come. The prober tries every credential every 250 ms, so the bound of a \"to refusal\" figure is the proof's bound plus that. What the proof asserts is that no login works past its bound: a first refusal later than the bound breaks nothing when Redis did not answer meanwhile (an outage), since a login Redis did not answer proves nothing either way.\n\n")
	fmt.Fprintf(&b, "| proof | server | figure | measured | bound |\n|---|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %v | %v |\n", r.Test, r.Server, r.Figure,
			time.Duration(r.GotMS)*time.Millisecond, time.Duration(r.BoundMS)*time.Millisecond)
	}
	return os.WriteFile(out, []byte(b.String()), 0o644)
}
