package testbed

import (
	"os/exec"
	"regexp"
	"strings"
)

var counters = regexp.MustCompile(`\[\d+:\d+\]`)

// HostRules is this machine's own rule set, both families as far as their
// -save tools are installed, without comments and counters: a test that
// must leave the host's rules alone compares it before and after.
func HostRules(t TB) string {
	t.Helper()
	var all strings.Builder
	for _, tool := range []string{"iptables-save", "ip6tables-save"} {
		if _, err := exec.LookPath(tool); err != nil {
			continue
		}
		for _, l := range strings.Split(MustRun(t, tool), "\n") {
			if !strings.HasPrefix(l, "#") {
				all.WriteString(counters.ReplaceAllString(l, "") + "\n")
			}
		}
	}
	return all.String()
}
