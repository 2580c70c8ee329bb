package testbed

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// RaiseNOFILE raises this process's soft limit of open files to at least n,
// and the hard limit too when it is lower (root may), so that the test can
// hold n sockets; children started afterwards inherit it. It returns the
// limit now.
func RaiseNOFILE(t TB, n uint64) syscall.Rlimit {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatalf("getrlimit RLIMIT_NOFILE: %v", err)
	}
	if lim.Cur >= n {
		return lim
	}
	lim.Cur = n
	lim.Max = max(lim.Max, n)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatalf("raise RLIMIT_NOFILE to %d: %v", n, err)
	}
	return lim
}

// ProcNOFILE is the soft and hard limit of open files of process pid, from
// /proc/PID/limits ("unlimited" is the largest uint64).
func ProcNOFILE(pid int) (soft, hard uint64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("limits of %d: %w", pid, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "Max open files")
		if !ok {
			continue
		}
		fs := strings.Fields(rest)
		if len(fs) < 2 {
			break
		}
		return limitValue(fs[0]), limitValue(fs[1]), nil
	}
	return 0, 0, fmt.Errorf("limits of %d: no \"Max open files\" line", pid)
}

func limitValue(s string) uint64 {
	if s == "unlimited" {
		return ^uint64(0)
	}
	n, _ := strconv.ParseUint(s, 10, 64)
	return n
}
