package check

import (
	"fmt"
	"strings"
)

// A container network is recognised by the host-side interfaces its CNI
// (or runtime) makes; cniKinds are the ones imdsguard names, in the order
// a report lists them. An interface that is a bridge's port belongs to
// its bridge's network.
var cniKinds = []struct {
	name  string // what the report calls it
	shape string // what it looks like, for the report
	match func(name, kind string) bool
}{
	{"Docker bridge", "docker0, br-<id>", func(n, k string) bool {
		return k == "bridge" && (n == "docker0" || isDockerNetwork(n))
	}},
	{"CNI bridge plugin", "cni0, cbr0", func(n, k string) bool {
		return k == "bridge" && (strings.HasPrefix(n, "cni") || n == "cbr0")
	}},
	{"AWS VPC CNI", "eni… veths", func(n, k string) bool { return k == "veth" && strings.HasPrefix(n, "eni") }},
	{"Calico", "cali… veths", func(n, k string) bool { return k == "veth" && strings.HasPrefix(n, "cali") }},
	{"Cilium", "lxc… veths, cilium_host", func(n, k string) bool { return k == "veth" && strings.HasPrefix(n, "lxc") }},
}

// isDockerNetwork: Docker names a user-defined bridge network's bridge
// br- and the first 12 hex digits of the network id.
func isDockerNetwork(name string) bool {
	id, ok := strings.CutPrefix(name, "br-")
	if !ok || len(id) != 12 {
		return false
	}
	return strings.Trim(id, "0123456789abcdef") == ""
}

// cniSeen is a container network recognised, with how many interfaces
// show it.
type cniSeen struct {
	name       string
	interfaces int
}

// recognise names the container networks the interfaces (and the Cilium
// probe) show, in cniKinds' order.
func recognise(c Containers) []cniSeen {
	count := map[string]int{}
	for _, in := range c.Interfaces {
		name, kind := in.Name, in.Kind
		if in.Master != "" {
			name, kind = in.Master, "bridge"
		}
		for _, k := range cniKinds {
			if k.match(name, kind) {
				count[k.name]++
				break
			}
		}
	}
	if c.Cilium && count["Cilium"] == 0 {
		count["Cilium"] = 0 // cilium_host alone: Cilium is the CNI, no pod yet
	}
	var seen []cniSeen
	for _, k := range cniKinds {
		if n, ok := count[k.name]; ok {
			seen = append(seen, cniSeen{k.name, n})
		}
	}
	return seen
}

// cniNames is "Calico" or "Docker bridge and AWS VPC CNI".
func cniNames(seen []cniSeen) string {
	names := make([]string, len(seen))
	for i, s := range seen {
		names[i] = s.name
	}
	return strings.Join(names, " and ")
}

// cniLine says which container network(s) the interfaces look like.
func cniLine(c Containers) string {
	seen := recognise(c)
	if len(seen) == 0 {
		var shapes []string
		for _, k := range cniKinds {
			shapes = append(shapes, k.name+" "+k.shape)
		}
		return "CNI: none recognised (known: " + strings.Join(shapes, "; ") + ")"
	}
	parts := make([]string, len(seen))
	for i, s := range seen {
		switch s.interfaces {
		case 0:
			parts[i] = s.name + " (cilium_host; no pod interface yet)"
		case 1:
			parts[i] = s.name + " (1 interface)"
		default:
			parts[i] = fmt.Sprintf("%s (%d interfaces)", s.name, s.interfaces)
		}
	}
	return "CNI: looks like " + strings.Join(parts, " and ")
}
