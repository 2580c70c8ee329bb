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

// Targets in the order they are run and shown. A target that caches may
// send fewer requests upstream than it answers; one that is local sends
// none (it answers itself).
type target struct {
	id, label, what string
	caches, local   bool
}

// sendsEach: every request the target answers went upstream once.
func (t target) sendsEach() bool { return !t.caches && !t.local }

// targetIndex is the position of id in ts, -1 if absent.
func targetIndex(ts []target, id string) int {
	return slices.IndexFunc(ts, func(t target) bool { return t.id == id })
}

// The loopback targets; the ids are scripts/bench.sh's.
const (
	tDirect     = "direct"
	tNginx      = "nginx"
	tNginxCache = "nginx-cache"
	tGuard      = "imdsguard-v2"
	tGuardCache = "imdsguard-cache-v2"
	tGuardV1    = "imdsguard-v1"
	tBare       = "bareproxy"
	tFloor      = "gofloor"
	tFloorEpoll = "gofloor-epoll"
	tFloorProxy = "gofloor-proxy"
	// The server floors again, spending BENCH_FLOOR_WORK on each request.
	tFloorWork      = "gofloor-work"
	tFloorEpollWork = "gofloor-epoll-work"
)

var targets = []target{
	{tDirect, "(a) fakeimds direct", "v2, fakeimds token", false, false},
	{tNginx, "(b) nginx", "v2, fakeimds token forwarded", false, false},
	{tNginxCache, "(c) nginx proxy_cache", "v2, fakeimds token forwarded", true, false},
	{tGuard, "(d) imdsguard uncached", "v2, imdsguard token", false, false},
	{tGuardCache, "(e) imdsguard cached", "v2, imdsguard token", true, false},
	{tGuardV1, "(f) imdsguard uncached, v1", "no token: upgraded upstream", false, false},
	{tBare, "(g) bareproxy", "v2, fakeimds token forwarded", false, false},
	{tFloor, "(h) Go floor, goroutines", "constant answer, one goroutine a connection", false, true},
	{tFloorEpoll, "(i) Go floor, epoll loops", "constant answer, one event loop a CPU", false, true},
	{tFloorProxy, "(j) Go floor, proxy", "v2, fakeimds token forwarded; upstream.MaxConns connections", false, false},
	{tFloorWork, "(k) Go floor, goroutines, with work", "as (h), after BENCH_FLOOR_WORK of CPU", false, true},
	{tFloorEpollWork, "(l) Go floor, epoll loops, with work", "as (i), after BENCH_FLOOR_WORK of CPU", false, true},
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
	upstream    int64 // GETs fakeimds received over the run
	pssDuring   int64 // kB, the proxy's largest PSS during the run; 0: not sampled
	pssAfter    int64 // kB, once the run was over
	conns       int64 // connections open at the proxy's port when pssDuring was sampled
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

// errStatus is the index of the non-2xx answers in run.errs.
const errStatus = 3

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

// fields is the number of tab-separated fields of a run (see the package doc).
const fields = 18

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
		if len(f) != fields {
			return nil, fmt.Errorf("%s:%d: %d fields, want %d", name, line, len(f), fields)
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
		rn.upstream, rn.pssDuring = int64(atoi(f[14])), int64(atoi(f[15]))
		rn.pssAfter, rn.conns = int64(atoi(f[16])), int64(atoi(f[17]))
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
