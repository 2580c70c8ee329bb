package main

import (
	"fmt"
	"strings"
)

// rulesPerService is what kube-proxy's iptables mode writes per service
// here: one match in KUBE-SERVICES and nine endpoint rules in the
// service's own chain.
const (
	rulesPerService   = 10
	endpointsPerSvc   = rulesPerService - 1
	kubeServicesChain = "KUBE-SERVICES"
)

// kubeRules is iptables-restore input (for --noflush) of the nat table
// shaped like kube-proxy's iptables mode with about extra rules: a
// KUBE-SERVICES chain hooked from PREROUTING and OUTPUT, and per service a
// `-d CLUSTERIP/32 -p tcp --dport N -j KUBE-SVC-x` rule in it and a
// KUBE-SVC-x chain of nine DNATs to the endpoints, the first eight behind
// `-m statistic --mode random --probability 1/k` as kube-proxy spreads them.
// With extra 0 only the empty KUBE-SERVICES chain and its two hooks are
// written (so that the legacy backend holds some rules). Every address is
// in 10.96.0.0/12 (cluster IPs) or 10.128.0.0/9 (endpoints): nothing the
// test host routes.
func kubeRules(extra int) string {
	services := extra / rulesPerService
	var b strings.Builder
	b.WriteString("*nat\n:" + kubeServicesChain + " - [0:0]\n")
	for i := range services {
		fmt.Fprintf(&b, ":%s - [0:0]\n", svcChain(i))
	}
	b.WriteString("-A PREROUTING -m comment --comment \"kubernetes service portals\" -j " + kubeServicesChain + "\n")
	b.WriteString("-A OUTPUT -m comment --comment \"kubernetes service portals\" -j " + kubeServicesChain + "\n")
	for i := range services {
		writeService(&b, i)
	}
	b.WriteString("COMMIT\n")
	return b.String()
}

// writeService writes service i's KUBE-SERVICES rule and its chain.
func writeService(b *strings.Builder, i int) {
	name := fmt.Sprintf("default/svc-%d:http", i)
	fmt.Fprintf(b, "-A %s -d %s/32 -p tcp -m comment --comment \"%s cluster IP\" -m tcp --dport %d -j %s\n",
		kubeServicesChain, clusterIP(i), name, 80+i%1000, svcChain(i))
	for j := range endpointsPerSvc {
		fmt.Fprintf(b, "-A %s -m comment --comment \"%s -> %s:8080\"", svcChain(i), name, endpointIP(i, j))
		if left := endpointsPerSvc - j; left > 1 {
			fmt.Fprintf(b, " -m statistic --mode random --probability %.11f", 1/float64(left))
		}
		fmt.Fprintf(b, " -p tcp -m tcp -j DNAT --to-destination %s:8080\n", endpointIP(i, j))
	}
}

// svcChain is service i's chain name (kube-proxy's are KUBE-SVC- and 16
// characters of a hash).
func svcChain(i int) string { return fmt.Sprintf("KUBE-SVC-%016X", i) }

// clusterIP is service i's address in 10.96.0.0/12 (up to a million).
func clusterIP(i int) string {
	n := i + 1
	return fmt.Sprintf("10.%d.%d.%d", 96+n>>16, n>>8&0xff, n&0xff)
}

// endpointIP is endpoint j of service i, in 10.128.0.0/9.
func endpointIP(i, j int) string {
	n := i*endpointsPerSvc + j + 1
	return fmt.Sprintf("10.%d.%d.%d", 128+n>>16, n>>8&0xff, n&0xff)
}
