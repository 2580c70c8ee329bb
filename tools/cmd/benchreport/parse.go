package main

// The runs file: one wrk run a line (see the package doc).

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Targets in the order they are run and shown.
type target struct{ id, label, what string }

// targetIndex is the position of id in ts, -1 if absent.
func targetIndex(ts []target, id string) int {
	return slices.IndexFunc(ts, func(t target) bool { return t.id == id })
}

var targets = []target{
	{"direct", "(a) fakeimds direct", "v2, fakeimds token"},
	{"bareproxy", "(b) bareproxy", "v2, fakeimds token forwarded"},
	{"imdsguard-v1", "(c) imdsguard v1", "no token: upgraded upstream"},
	{"imdsguard-v2", "(d) imdsguard v2", "imdsguard token"},
}

type run struct {
	round, conc int
	target      string
	requests    int64
	durationUS  float64
	p50, p99    float64 // µs
	errs        [5]int64
	proxyTicks  int64
	fakeTicks   int64
}

func (r run) rps() float64 { return float64(r.requests) / (r.durationUS / 1e6) }

func (r run) errors() int64 {
	var n int64
	for _, e := range r.errs {
		n += e
	}
	return n
}

// errNames name the socket and status errors of a run (run.errs), in the
// order of their columns.
var errNames = [5]string{"connect", "read", "write", "status", "timeout"}

func readRuns(name string, ts []target) ([]run, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseRunsFor(f, name, ts)
}

// parseRuns parses the loopback runs.
func parseRuns(r io.Reader, name string) ([]run, error) {
	return parseRunsFor(r, name, targets)
}

// parseRunsFor parses runs whose targets are among ts.
func parseRunsFor(r io.Reader, name string, ts []target) ([]run, error) {
	var runs []run
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		f := strings.Split(text, "\t")
		if len(f) != 14 {
			return nil, fmt.Errorf("%s:%d: %d fields, want 14", name, line, len(f))
		}
		var rn run
		var errs []error
		atoi := func(s string) int {
			n, err := strconv.Atoi(s)
			errs = append(errs, err)
			return n
		}
		atof := func(s string) float64 {
			x, err := strconv.ParseFloat(s, 64)
			errs = append(errs, err)
			return x
		}
		rn.round, rn.conc, rn.target = atoi(f[0]), atoi(f[1]), f[2]
		rn.requests = int64(atoi(f[3]))
		rn.durationUS, rn.p50, rn.p99 = atof(f[4]), atof(f[5]), atof(f[6])
		for i := range rn.errs {
			rn.errs[i] = int64(atoi(f[7+i]))
		}
		rn.proxyTicks, rn.fakeTicks = int64(atoi(f[12])), int64(atoi(f[13]))
		if err := errors.Join(errs...); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		if rn.durationUS <= 0 {
			return nil, fmt.Errorf("%s:%d: duration %v", name, line, rn.durationUS)
		}
		if targetIndex(ts, rn.target) < 0 {
			return nil, fmt.Errorf("%s:%d: unknown target %q", name, line, rn.target)
		}
		runs = append(runs, rn)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(runs) == 0 {
		return nil, fmt.Errorf("%s: no runs", name)
	}
	return runs, nil
}
