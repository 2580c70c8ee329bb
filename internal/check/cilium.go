package check

import (
	"bufio"
	"os"
	"strings"
)

// CiliumNodeConfig is where the Cilium agent writes the datapath
// configuration it compiles its programs with (the host's /var/run/cilium
// is the agent's run directory, mounted from the host).
const CiliumNodeConfig = "/var/run/cilium/state/globals/node_config.h"

// ciliumHostRouting reads Cilium's datapath configuration: "bpf" when it
// defines ENABLE_HOST_ROUTING (eBPF host routing: pod traffic is
// redirected between devices by BPF programs and never passes netfilter),
// "legacy" when the file is there without it (pod traffic goes through the
// kernel's stack and imdsguard's rules), "" when it cannot be read.
//
// The limits of this signal: it is Cilium's internal file, not an
// interface; a Cilium that configures its programs another way would read
// as "legacy". The containers check therefore also says when Cilium is the
// CNI and no container traffic was seen.
func ciliumHostRouting(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		if fs := strings.Fields(sc.Text()); len(fs) >= 2 && fs[0] == "#define" && fs[1] == "ENABLE_HOST_ROUTING" {
			return "bpf"
		}
	}
	if sc.Err() != nil {
		return ""
	}
	return "legacy"
}
