package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/imdsguard/imdsguard/tools/testbed"
)

// userHZ is the unit of the times in /proc/PID/stat (USER_HZ, 100 on every
// Linux ABI; sysconf(_SC_CLK_TCK) says the same without cgo).
const userHZ = 100

// procTree is pid and its live descendants (nginx: the master and its
// workers), from /proc/PID/task/*/children.
func procTree(pid int) []int {
	out := []int{pid}
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // the task just exited
		}
		for _, s := range strings.Fields(string(b)) {
			if child, err := strconv.Atoi(s); err == nil {
				out = append(out, procTree(child)...)
			}
		}
	}
	return out
}

// treeCPU is the CPU time the tree of pid has used: user and system time of
// every live process in it and of the children each has reaped.
func treeCPU(pid int) (time.Duration, error) {
	var ticks int64
	for i, p := range procTree(pid) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			if i == 0 {
				return 0, fmt.Errorf("cpu of %d: %w", pid, err)
			}
			continue // a child that just exited
		}
		t, err := statTicks(string(b))
		if err != nil {
			return 0, fmt.Errorf("cpu of %d: %w", p, err)
		}
		ticks += t
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// statTicks is utime+stime+cutime+cstime of a /proc/PID/stat line
// (testbed.StatTicks).
func statTicks(stat string) (int64, error) { return testbed.StatTicks(stat, 4) }

// treePSS is the proportional set size of the tree of pid in kB: shared
// pages are split among their users, so nginx's master and workers add up
// without counting shared code twice.
func treePSS(pid int) (int64, error) {
	var kb int64
	for i, p := range procTree(pid) {
		n, err := testbed.PSSKB(p)
		if err != nil {
			if i == 0 {
				return 0, err
			}
			continue
		}
		kb += n
	}
	return kb, nil
}

// openConns counts the established TCP connections whose local port is
// port in the network namespace of pid (/proc/PID/net/tcp and tcp6): the
// connections a server listening on port holds.
func openConns(pid, port int) (int, error) {
	n := 0
	for _, f := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, f))
		if err != nil {
			return 0, fmt.Errorf("connections of %d: %w", pid, err)
		}
		n += countEstablished(string(b), port)
	}
	return n, nil
}

// countEstablished counts the connections of a /proc/net/tcp table in
// state ESTABLISHED (01) with local port port. The kernel writes the table
// in pieces while connections come and go, so a busy one can list a
// connection twice: each pair of addresses counts once.
func countEstablished(table string, port int) int {
	want := fmt.Sprintf(":%04X", port)
	seen := map[string]bool{}
	for _, line := range strings.Split(table, "\n") {
		f := strings.Fields(line)
		// sl local_address rem_address st ...
		if len(f) > 3 && strings.HasSuffix(f[1], want) && f[3] == "01" {
			seen[f[1]+" "+f[2]] = true
		}
	}
	return len(seen)
}
