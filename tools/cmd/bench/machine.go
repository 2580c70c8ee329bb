package main

import (
	"bufio"
	"debug/buildinfo"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/imdsguard/imdsguard/tools/testbed"
)

// machine is what the report says about where it ran.
type machine struct {
	Date                  string
	CPU                   string
	Cores                 int
	Kernel                string
	Go                    string // the toolchain bench was built with
	Nginx, Wrk            string
	LoadBefore, LoadAfter string // /proc/loadavg's first three fields
}

// readMachine reads the facts that do not depend on the run.
func readMachine(tools toolPaths) machine {
	return machine{
		Date:       time.Now().UTC().Format("2006-01-02 15:04 UTC"),
		CPU:        cpuModel(),
		Cores:      runtime.NumCPU(),
		Kernel:     firstLine(readText("/proc/sys/kernel/osrelease")),
		Go:         runtime.Version(),
		Nginx:      strings.TrimPrefix(toolVersion(tools.Nginx, "-v"), "nginx version: "),
		Wrk:        strings.Split(toolVersion(tools.Wrk, "--version"), " Copyright")[0],
		LoadBefore: loadAverage(),
	}
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// loadAverage is the load over 1, 5 and 15 minutes: how busy the machine
// was around the run (the runs themselves add to it).
func loadAverage() string {
	f := strings.Fields(readText("/proc/loadavg"))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// toolVersion is the first line a program prints for its version flag
// (nginx and wrk print it on stderr, and wrk exits 1).
func toolVersion(path, flag string) string {
	out := firstLine(testbed.RunCombined(10*time.Second, nil, path, flag).Out)
	if out == "" {
		return "unknown"
	}
	return out
}

// binary is one imdsguard build measured.
type binary struct {
	Build    string // A or B
	Path     string
	Version  string // what `imdsguard version` says (git describe at build)
	Revision string // vcs.revision from the build info, "+dirty" when modified; "" if not stamped
	Go       string // the Go it was built with
}

func readBinary(build, path string) binary {
	b := binary{Build: build, Path: path, Go: "unknown"}
	b.Version = strings.TrimPrefix(toolVersion(path, "version"), "imdsguard ")
	info, err := buildinfo.ReadFile(path)
	if err != nil {
		return b
	}
	b.Go = info.GoVersion
	var dirty bool
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty && b.Revision != "" {
		b.Revision += "+dirty"
	}
	return b
}

func readText(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("unknown (%v)", err)
	}
	return string(b)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return strings.TrimSpace(line)
}
