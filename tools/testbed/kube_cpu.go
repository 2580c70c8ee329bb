package testbed

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of the times in /proc/PID/stat (USER_HZ, 100 on every
// Linux ABI).
const userHZ = 100

// ProcCPU is the CPU time process pid has used: its user and system time
// and those of the children it has waited for (utime+stime+cutime+cstime:
// imdsguard's iptables-save runs count).
func ProcCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("cpu of %d: %w", pid, err)
	}
	ticks, err := statTicks(string(b))
	if err != nil {
		return 0, fmt.Errorf("cpu of %d: %w", pid, err)
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// statTicks is utime+stime+cutime+cstime of a /proc/PID/stat line.
func statTicks(stat string) (int64, error) { return StatTicks(stat, 4) }

// StatTicks sums the first n (1 to 4) of utime, stime, cutime and cstime
// of a /proc/PID/stat line, in USER_HZ ticks (n 2: the process's own time,
// 4: with the children it has waited for). The command name, in
// parentheses, may hold spaces and parentheses itself: the fields are
// counted from the last ')'.
func StatTicks(stat string, n int) (int64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse stat: no ')'")
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state); utime..cstime are fields 14..17.
	if len(f) < 15 || n < 1 || n > 4 {
		return 0, fmt.Errorf("parse stat: %d fields after the name (want %d of the times)", len(f), n)
	}
	var sum int64
	for _, s := range f[11 : 11+n] {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse stat: field %q: %w", s, err)
		}
		sum += v
	}
	return sum, nil
}
