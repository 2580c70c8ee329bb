package check

import (
	"fmt"
	"strings"
)

// Containers is what the redirect says about the path of container
// metadata traffic (nat PREROUTING), as the containers check needs it.
type Containers struct {
	Patterns []string // redirect.container_interfaces; empty: none redirected
	Landing  []string // where container connections land, e.g. 169.254.254.169:8989
	Missing  []string // pieces of the path not in place
	// Connections redirected from containers since the rules went in (the
	// packet counters of the PREROUTING rules); Counted false: unknown.
	Connections uint64
	Counted     bool
	Interfaces  []Interface // the container interfaces present now
	// Cilium is true when Cilium is the CNI (a cilium_host link exists);
	// HostRouting then says how it routes pod traffic: "bpf" (eBPF host
	// routing: past netfilter), "legacy" (through the kernel's stack and
	// netfilter), "" unknown (its datapath configuration was not readable).
	Cilium      bool
	HostRouting string
}

// Interface is one container interface.
type Interface struct {
	Name, Kind  string
	Addrs       []string
	AddressLess bool   // no address but IPv6 link-local ones
	Master      string // the bridge it is a port of, "" for none
}

func (i Interface) String() string {
	desc := []string{i.Kind}
	switch {
	case i.Master != "":
		desc = append(desc, "port of "+i.Master+": its traffic is seen on "+i.Master)
	case i.AddressLess:
		desc = append(desc, "address-less")
	default:
		desc = append(desc, i.Addrs...)
	}
	return i.Name + " (" + strings.Join(desc, ", ") + ")"
}

// maxListed bounds the interfaces a check line names (a node has a veth
// per pod); the rest are counted.
const maxListed = 8

const containersName = "container metadata traffic is redirected (PREROUTING)"

// containers: the path of container metadata traffic is in place, and
// nothing routes pod traffic past it (Cilium's eBPF host routing). c and
// err are what the Containers probe said.
func containers(c Containers, err error) Result {
	r := Result{Name: containersName}
	switch {
	case err != nil:
		r.Detail = "cannot read the rules: " + err.Error()
		r.Fix = "run imdsguard check as root"
	case len(c.Patterns) == 0:
		r.Pass = true
		r.Detail = "redirect.container_interfaces is empty: metadata traffic from containers is refused (IMDSGUARD-FWD), not served"
	case len(c.Missing) > 0:
		r.Detail = fmt.Sprintf("%d pieces missing or out of place: %s", len(c.Missing), strings.Join(c.Missing, "; ")) +
			"\n" + interfacesLine(c.Interfaces) + "\n" + cniLine(c)
		r.Fix = "systemctl restart imdsguard (or: imdsguard rules install); see imdsguard rules status"
	case c.Cilium && c.HostRouting == "bpf":
		r.Detail = "Cilium routes pod traffic with eBPF host routing: it never passes netfilter, so imdsguard never sees it" +
			"\n" + interfacesLine(c.Interfaces) + "\n" + cniLine(c)
		r.Fix = "set Cilium's bpf.hostLegacyRouting=true so pod traffic passes the kernel's stack, or keep pods without metadata: the instance at http-tokens required, hop limit 1 (docs/containers.md: Cilium)"
	default:
		r.Pass = true
		r.Detail = strings.Join(containerLines(c), "\n")
	}
	return r
}

// containerLines describe a path in place: where containers land, what the
// counters saw, which interfaces it covers, and what is not known.
func containerLines(c Containers) []string {
	lines := []string{fmt.Sprintf("DNAT to %s from %s", strings.Join(c.Landing, " and "), patterns(c.Patterns))}
	switch {
	case !c.Counted:
		lines = append(lines, "no packet counters readable: whether containers used it is unknown")
	case c.Connections == 0:
		lines = append(lines, "no container metadata traffic seen since the rules went in")
	default:
		lines = append(lines, fmt.Sprintf("%d container connections redirected since the rules went in", c.Connections))
	}
	lines = append(lines, interfacesLine(c.Interfaces), cniLine(c))
	if c.Cilium && c.HostRouting == "" {
		note := "note: Cilium is the CNI and its host routing mode is unknown"
		if c.Counted && c.Connections == 0 {
			note += "; no container traffic seen: if it uses eBPF host routing, pods bypass imdsguard (cilium status | grep 'Host Routing')"
		}
		lines = append(lines, note)
	}
	return lines
}

func patterns(ps []string) string {
	if len(ps) == 1 && ps[0] == "+" {
		return "every interface but lo"
	}
	return strings.Join(ps, ", ")
}

// interfacesLine names the container interfaces, at most maxListed, with
// the rest counted by kind.
func interfacesLine(ifs []Interface) string {
	if len(ifs) == 0 {
		return "container interfaces: none present"
	}
	var names []string
	more := map[string]int{}
	for i, f := range ifs {
		if i < maxListed {
			names = append(names, f.String())
			continue
		}
		more[f.Kind]++
	}
	s := "container interfaces: " + strings.Join(names, ", ")
	if n := len(ifs) - len(names); n > 0 {
		var kinds []string
		for _, k := range []string{"veth", "bridge", "device"} {
			if more[k] > 0 {
				kinds = append(kinds, fmt.Sprintf("%d %s", more[k], k))
				delete(more, k)
			}
		}
		for k, m := range more {
			kinds = append(kinds, fmt.Sprintf("%d %s", m, k))
		}
		s += fmt.Sprintf(" and %d more (%s)", n, strings.Join(kinds, ", "))
	}
	return s
}
