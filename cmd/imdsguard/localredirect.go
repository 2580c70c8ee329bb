package main

import (
	"net"
	"strconv"
)

// localRedirectAddrs are the addresses of the local redirect listener
// (listen.local_redirect_port; none when it is 0), where a Cilium Local
// Redirect Policy sends pods' metadata connections
// (docs/containers.md#cilium, packaging/kubernetes/cilium-lrp.yaml). listen
// opens them (or takes them over) and wraps each in
// proxy.AdmitLocalRedirect.
//
// Their address: every address of each family the redirect covers (0.0.0.0
// and [::]). The policy's backend is the imdsguard pod's IP, which for a
// hostNetwork pod is the address Kubernetes gave the node (its InternalIP;
// on a dual-stack node its IPv6 one too): an address the daemon is not
// told, that differs from node to node (one ConfigMap serves them all) and
// may change while it runs. A wildcard socket is reachable from every
// interface, so two things keep it to pods: IMDSGUARD-IN drops what does
// not come in on a container interface (and a family's listener opens only
// where that family's rules are), and proxy.AdmitLocalRedirect admits only
// callers it identifies in a container's network namespace.
func (d *daemon) localRedirectAddrs() []string {
	port := d.cfg.Listen.LocalRedirectPort
	if port == 0 {
		return nil
	}
	var addrs []string
	if d.cfg.Redirect.IPv4 {
		addrs = append(addrs, net.JoinHostPort("0.0.0.0", strconv.Itoa(port)))
	}
	if d.cfg.Redirect.IPv6 {
		addrs = append(addrs, net.JoinHostPort("::", strconv.Itoa(port)))
	}
	return addrs
}
