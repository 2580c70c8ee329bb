package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// wrkLua is the script given to wrk with -s: when a run is done it prints
// one machine-readable line (latencies in µs, from wrk's histogram, which
// has a bucket per µs). It defines no request or response function, so wrk
// keeps its fast path and the script costs nothing per request.
const wrkLua = `-- Written by tools/cmd/bench: one line when the run is done.
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCHRESULT\t%d\t%d\t%.1f\t%.1f\t%d\t%d\t%d\t%d\t%d\n",
    summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout))
end
`

// wrkTimeout is wrk's --timeout: a request slower than this is an error.
const wrkTimeout = 10 * time.Second

// wrkResult is what one wrk run reports.
type wrkResult struct {
	Requests int64         // responses received
	Elapsed  time.Duration // as wrk measured it
	P50, P99 time.Duration
	Errors   wrkErrors
}

// wrkErrors are wrk's error counts. Status counts answers with a status
// of 400 or more; the others are socket errors.
type wrkErrors struct {
	Connect, Read, Write, Status, Timeout int64
}

// Total is every failed request.
func (e wrkErrors) Total() int64 { return e.Connect + e.Read + e.Write + e.Status + e.Timeout }

func (e wrkErrors) String() string {
	return fmt.Sprintf("connect %d, read %d, write %d, status %d, timeout %d", e.Connect, e.Read, e.Write, e.Status, e.Timeout)
}

// wrkArgs are wrk's arguments for conc connections over d: one thread for
// one connection, two otherwise (the machines have two cores).
func wrkArgs(conc int, d time.Duration, script, header, url string) []string {
	threads := 2
	if conc == 1 {
		threads = 1
	}
	args := []string{
		"-t" + strconv.Itoa(threads), "-c" + strconv.Itoa(conc),
		"-d" + strconv.Itoa(int(d/time.Second)) + "s",
		"--timeout", strconv.Itoa(int(wrkTimeout/time.Second)) + "s", "-s", script,
	}
	if header != "" {
		args = append(args, "-H", header)
	}
	return append(args, url)
}

// parseWrk finds the line wrkLua printed in wrk's output.
func parseWrk(out string) (wrkResult, error) {
	var r wrkResult
	for _, line := range strings.Split(out, "\n") {
		rest, ok := strings.CutPrefix(line, "BENCHRESULT\t")
		if !ok {
			continue
		}
		f := strings.Split(strings.TrimRight(rest, "\r"), "\t")
		if len(f) != 9 {
			return r, fmt.Errorf("parse wrk result %q: %d fields, want 9", line, len(f))
		}
		var n [9]float64
		for i, s := range f {
			v, err := strconv.ParseFloat(s, 64)
			if err != nil || !(v >= 0) || math.IsInf(v, 0) { // NaN too
				return r, fmt.Errorf("parse wrk result %q: field %d %q is not a count", line, i+1, s)
			}
			n[i] = v
		}
		r.Requests, r.Elapsed = int64(n[0]), time.Duration(n[1])*time.Microsecond
		r.P50, r.P99 = micros(n[2]), micros(n[3])
		r.Errors = wrkErrors{int64(n[4]), int64(n[5]), int64(n[6]), int64(n[7]), int64(n[8])}
		return r, nil
	}
	return r, fmt.Errorf("parse wrk output: no BENCHRESULT line in %q", tail(out, 500))
}

func micros(us float64) time.Duration { return time.Duration(us * float64(time.Microsecond)) }

// tail is the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
