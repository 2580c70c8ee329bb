package testbed

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/imdsguard/imdsguard/internal/testenv"
)

// CNIPluginDir is where Debian's containernetworking-plugins installs the
// plugins (bridge, host-local, ...).
const CNIPluginDir = "/usr/lib/cni"

// The test CNI network: the bridge cni0 in the host namespace (its name
// matches the daemon's default "cni+") with the gateway addresses, pods in
// 198.18.0.0/24 (benchmarking range) and 2001:db8:4::/64.
const (
	CNIBridge   = "cni0"
	CNISubnetV4 = "198.18.0.0/24"
	CNISubnetV6 = "2001:db8:4::/64"
	CNIGwV4     = "198.18.0.1"
	CNIGwV6     = "2001:db8:4::1"
)

// cniConfig is the network configuration: the reference bridge plugin with
// host-local IPAM whose state lives in the test's directory; no masquerade
// (the host routes; imdsguard's redirect must see the pod's own address).
const cniConfig = `{
  "cniVersion": "0.4.0",
  "name": "imdsguard-test",
  "type": "bridge",
  "bridge": %q,
  "isGateway": true,
  "ipMasq": false,
  "ipam": {
    "type": "host-local",
    "ranges": [[{"subnet": %q, "gateway": %q}], [{"subnet": %q, "gateway": %q}]],
    "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}],
    "dataDir": %q
  }
}`

// CNIAttachment is a container network namespace wired up by the bridge
// plugin.
type CNIAttachment struct {
	ContainerID string
	NetNS       string // path, /run/netns/NAME
	IPv4, IPv6  netip.Addr
	HostVeth    string // the host side of the pod's veth
}

// CNIAdd runs the bridge plugin (CNI_COMMAND=ADD, as a runtime would) in
// the network namespace hostNS for the container id whose network
// namespace is the named namespace podNS, and registers the DEL for the end
// of the test (before the namespaces go). It returns the addresses the
// plugin gave.
func (e *Env) CNIAdd(hostNS, podNS, id string) CNIAttachment {
	e.T.Helper()
	if _, err := os.Stat(CNIPluginDir + "/bridge"); err != nil {
		testenv.Skipf(e.T, "no %s/bridge: scripts/install-test-deps.sh installs containernetworking-plugins", CNIPluginDir)
	}
	conf := fmt.Sprintf(cniConfig, CNIBridge, CNISubnetV4, CNIGwV4, CNISubnetV6, CNIGwV6, e.Path("cni-ipam"))
	a := CNIAttachment{ContainerID: id, NetNS: "/run/netns/" + podNS}
	out, err := cniExec(hostNS, "ADD", a, conf)
	if err != nil {
		e.T.Fatalf("CNI ADD %s: %v", id, err)
	}
	e.T.Cleanup(func() {
		if _, err := cniExec(hostNS, "DEL", a, conf); err != nil {
			e.T.Errorf("CNI DEL %s: %v", id, err)
		}
	})
	if err := a.parseResult(out); err != nil {
		e.T.Fatalf("CNI ADD %s: %v: %s", id, err, out)
	}
	waitNotTentative(e.T, podNS)
	return a
}

// cniResult is the part of a CNI 0.4.0 result read here.
type cniResult struct {
	Interfaces []struct {
		Name    string `json:"name"`
		Sandbox string `json:"sandbox"`
	} `json:"interfaces"`
	IPs []struct {
		Address string `json:"address"`
	} `json:"ips"`
}

func (a *CNIAttachment) parseResult(out []byte) error {
	var r cniResult
	if err := json.Unmarshal(out, &r); err != nil {
		return fmt.Errorf("parse result: %w", err)
	}
	for _, ip := range r.IPs {
		p, err := netip.ParsePrefix(ip.Address)
		if err != nil {
			return fmt.Errorf("parse result: %w", err)
		}
		if p.Addr().Is4() {
			a.IPv4 = p.Addr()
		} else {
			a.IPv6 = p.Addr()
		}
	}
	for _, i := range r.Interfaces {
		if i.Sandbox == "" && i.Name != CNIBridge {
			a.HostVeth = i.Name
		}
	}
	if !a.IPv4.IsValid() || !a.IPv6.IsValid() {
		return fmt.Errorf("want an IPv4 and an IPv6 address")
	}
	return nil
}

// cniExec runs the bridge plugin in hostNS with the CNI environment.
func cniExec(hostNS, command string, a CNIAttachment, conf string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/usr/bin/nsenter", "--net=/run/netns/"+hostNS, CNIPluginDir+"/bridge")
	cmd.Env = []string{
		"CNI_COMMAND=" + command, "CNI_CONTAINERID=" + a.ContainerID, "CNI_NETNS=" + a.NetNS,
		"CNI_IFNAME=eth0", "CNI_PATH=" + CNIPluginDir, "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
	}
	cmd.Stdin = strings.NewReader(conf)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr, cmd.WaitDelay = &stdout, &stderr, time.Second
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("bridge plugin %s: %w: %s%s", command, err, stdout.String(), stderr.String())
	}
	return stdout.Bytes(), nil
}

// RouteBack adds routes in h's imds namespace to the CNI pod networks via
// the host: without imdsguard, a pod's metadata traffic would reach IMDS and
// be answered (so a failed redirect shows as a direct hit, not a timeout).
func (h *Host) RouteBack(t TB, v4, v6 string) {
	t.Helper()
	h.Shell(h.IMDSNS, fmt.Sprintf("ip route add %s via %s && ip -6 route add %s via %s", v4, HostUpV4, v6, HostUpV6))
}
