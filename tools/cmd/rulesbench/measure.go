package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/imdsguard/imdsguard/tools/testbed"
)

// userHZ is the unit of the times in /proc/PID/stat (USER_HZ, 100 on every
// Linux ABI).
const userHZ = 100

// cmdTimeout bounds every command the bench runs.
const cmdTimeout = 2 * time.Minute

// nsCmd runs argv inside the network namespace ns (nsenter --net: unlike
// `ip netns exec` it remounts nothing, so the wall time is the command's)
// with stdin, and returns how long it took and its combined output.
func nsCmd(ns, stdin string, argv ...string) (time.Duration, string, error) {
	args := append([]string{"--net=/run/netns/" + ns, "--"}, argv...)
	cmd := exec.Command("nsenter", args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = time.Second
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, "", fmt.Errorf("start %s in %s: %w", argv[0], ns, err)
	}
	timer := time.AfterFunc(cmdTimeout, func() { _ = cmd.Process.Kill() })
	err := cmd.Wait()
	took := time.Since(start)
	timer.Stop()
	if err != nil {
		return took, out.String(), fmt.Errorf("%s in %s: %w: %s", strings.Join(argv, " "), ns, err, tail(out.String(), 300))
	}
	return took, out.String(), nil
}

// timing is the median wall time of a few runs of a command, and how the
// last failing run failed ("" when none did).
type timing struct {
	Median time.Duration
	Failed string
}

func (tm timing) String() string {
	if tm.Failed != "" {
		return ms(tm.Median) + " (failed)"
	}
	return ms(tm.Median)
}

// timeRuns runs argv n times in ns and returns the median wall time; a
// failed run is timed too and its output kept.
func timeRuns(n int, ns string, argv ...string) timing {
	var ds []time.Duration
	var tm timing
	for range n {
		d, out, err := nsCmd(ns, "", argv...)
		if err != nil {
			tm.Failed = fmt.Sprintf("%v: %s", errors.Unwrap(err), strings.Join(strings.Fields(tail(out, 400)), " "))
		}
		ds = append(ds, d)
	}
	slices.Sort(ds)
	tm.Median = ds[len(ds)/2]
	return tm
}

// cpuTicks is the CPU time of pid in USER_HZ ticks: utime+stime+cutime+
// cstime of /proc/PID/stat (its own and that of the children it has
// reaped: the daemon's iptables-save and iptables runs), plus utime+stime
// of the children still running, so that a save that runs for seconds is
// counted while it runs, not in one lump when it is reaped. The parent is
// read first: a child reaped in between is missed by this reading only (it
// is in cutime from the next), never counted twice.
func cpuTicks(pid int) (int64, error) {
	own, err := statTicks(pid, 4)
	if err != nil {
		return 0, fmt.Errorf("cpu of %d: %w", pid, err)
	}
	files, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for _, s := range strings.Fields(string(b)) {
			if child, err := strconv.Atoi(s); err == nil {
				n, _ := statTicks(child, 2) // gone: reaped meanwhile
				own += n
			}
		}
	}
	return own, nil
}

// statTicks sums the first n of utime, stime, cutime, cstime of
// /proc/PID/stat (testbed.StatTicks).
func statTicks(pid, n int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return testbed.StatTicks(string(b), n)
}

// cpuStat is the daemon's CPU use over a window: the mean per second, and
// the least and most of the one-second slices it was read in.
type cpuStat struct {
	Mean, Min, Max time.Duration
	Window         time.Duration
}

// sampleCPU reads pid's CPU time every second for window and returns the
// CPU time per second of wall time.
func sampleCPU(pid int, window time.Duration) (cpuStat, error) {
	prev, err := cpuTicks(pid)
	if err != nil {
		return cpuStat{}, err
	}
	first, start, last := prev, time.Now(), time.Now()
	st := cpuStat{Min: time.Hour}
	for time.Since(start) < window {
		time.Sleep(time.Second)
		now, err := cpuTicks(pid)
		if err != nil {
			return st, err
		}
		per := perSecond(now-prev, time.Since(last))
		st.Min, st.Max = min(st.Min, per), max(st.Max, per)
		prev, last = now, time.Now()
	}
	st.Window = time.Since(start)
	st.Mean = perSecond(prev-first, st.Window)
	return st, nil
}

// perSecond is ticks of CPU time over wall, scaled to one second.
func perSecond(ticks int64, wall time.Duration) time.Duration {
	cpu := time.Duration(ticks) * time.Second / userHZ
	return time.Duration(float64(cpu) * float64(time.Second) / float64(wall))
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
