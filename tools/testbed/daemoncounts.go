package testbed

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// DaemonCounts are where a leak of the daemon shows: its goroutines (the Go
// runtime's count, go_goroutines of its metrics endpoint), its open file
// descriptors (/proc/PID/fd) and its OS threads (/proc/PID/task; the Go
// runtime never ends a thread it made, so threads are reported, not held
// to a baseline). StackBytes is the memory of its goroutines' stacks
// (go_memstats_stack_inuse_bytes).
type DaemonCounts struct {
	Goroutines, FDs, Threads int
	StackBytes               int64
}

func (c DaemonCounts) String() string {
	return fmt.Sprintf("%d goroutines (%.1f MB of stacks), %d fds, %d threads", c.Goroutines, float64(c.StackBytes)/(1<<20), c.FDs, c.Threads)
}

// ReadDaemonCounts reads the counts of the daemon with pid, whose metrics
// endpoint is metricsURL (http://host:port/metrics), asked with client.
func ReadDaemonCounts(client *http.Client, metricsURL string, pid int) (DaemonCounts, error) {
	var c DaemonCounts
	v, err := metricValues(client, metricsURL, "go_goroutines", "go_memstats_stack_inuse_bytes")
	if err != nil {
		return c, err
	}
	c.Goroutines, c.StackBytes = int(v[0]), int64(v[1])
	if c.FDs, err = dirEntries(fmt.Sprintf("/proc/%d/fd", pid)); err != nil {
		return c, err
	}
	c.Threads, err = dirEntries(fmt.Sprintf("/proc/%d/task", pid))
	return c, err
}

func dirEntries(dir string) (int, error) {
	es, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("count %s: %w", dir, err)
	}
	return len(es), nil
}

// metricValues are the values of unlabelled metrics, in the order named,
// in the Prometheus text format at url.
func metricValues(client *http.Client, url string, names ...string) ([]float64, error) {
	resp, err := client.Get(url)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metrics: %s", resp.Status)
	}
	vs, found := make([]float64, len(names)), make([]bool, len(names))
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		for i, name := range names {
			if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
				if vs[i], err = strconv.ParseFloat(strings.TrimSpace(v), 64); err != nil {
					return nil, fmt.Errorf("metrics: %s: %w", name, err)
				}
				found[i] = true
			}
		}
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	for i, ok := range found {
		if !ok {
			return nil, fmt.Errorf("metrics: no %s at %s (%v)", names[i], url, sc.Err())
		}
	}
	return vs, nil
}

// Growth says how far counts exceed base in goroutines and fds.
func Growth(base, now DaemonCounts) (goroutines, fds int) {
	return now.Goroutines - base.Goroutines, now.FDs - base.FDs
}

// WaitNoGrowth polls read every 250 ms until the goroutines and fds are at
// most slackG and slackFD above base, for at most within (idle keep-alive
// connections, the daemon's upstream ones among them, close on their own
// timers). It returns the last counts and whether they came within slack.
func WaitNoGrowth(read func() (DaemonCounts, error), base DaemonCounts, slackG, slackFD int, within time.Duration) (DaemonCounts, bool, error) {
	deadline := time.Now().Add(within)
	for {
		now, err := read()
		if err != nil {
			return now, false, err
		}
		g, f := Growth(base, now)
		if g <= slackG && f <= slackFD {
			return now, true, nil
		}
		if time.Now().After(deadline) {
			return now, false, nil
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// PSSKB is the proportional set size of process pid in kB
// (/proc/PID/smaps_rollup).
func PSSKB(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, fmt.Errorf("pss of %d: %w", pid, err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Pss:"); ok {
			return strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		}
	}
	return 0, fmt.Errorf("pss of %d: no Pss line", pid)
}
