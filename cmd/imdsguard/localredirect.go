package main

import (
	"fmt"
	"net"
	"strconv"

	"github.com/imdsguard/imdsguard/proxy"
)

// listenLocalRedirect opens the local redirect listener
// (listen.local_redirect_port; none when it is 0), where a Cilium Local
// Redirect Policy sends pods' metadata connections
// (docs/containers.md#cilium, packaging/kubernetes/cilium-lrp.yaml).
//
// Its address: every address of each family the redirect covers (0.0.0.0
// and [::]). The policy's backend is the imdsguard pod's IP, which for a
// hostNetwork pod is the address Kubernetes gave the node (its InternalIP;
// on a dual-stack node its IPv6 one too): an address the daemon is not
// told, that differs from node to node (one ConfigMap serves them all) and
// may change while it runs. A wildcard socket is reachable from every
// interface, so two things keep it to pods: IMDSGUARD-IN drops what does
// not come in on a container interface (and a family's listener opens only
// where that family's rules are), and proxy.AdmitLocalRedirect admits only
// callers it identifies in a container's network namespace.
func (d *daemon) listenLocalRedirect() ([]net.Listener, error) {
	port := d.cfg.Listen.LocalRedirectPort
	if port == 0 {
		return nil, nil
	}
	var addrs []string
	if d.cfg.Redirect.IPv4 {
		addrs = append(addrs, net.JoinHostPort("0.0.0.0", strconv.Itoa(port)))
	}
	if d.cfg.Redirect.IPv6 {
		addrs = append(addrs, net.JoinHostPort("::", strconv.Itoa(port)))
	}
	lns, err := proxy.Listen(addrs, d.log)
	if err != nil {
		return nil, fmt.Errorf("listen.local_redirect_port: %w", err)
	}
	for i := range lns {
		lns[i] = proxy.AdmitLocalRedirect(lns[i], d.who.IdentifyLocalRedirect, d.log)
	}
	return lns, nil
}
