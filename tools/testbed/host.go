package testbed

import (
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/imdsguard/imdsguard/internal/netnstest"
)

// The metadata service's addresses. They exist only on lo of a Host's imds
// namespace; nothing here ever sends to them from any other namespace than
// the ones a Host made.
const (
	IMDSv4 = "169.254.169.254"
	IMDSv6 = "fd00:ec2::254"
)

// The Host's links and addresses (documentation ranges only).
const (
	UplinkIf   = "uplink0" // host side of the link to the imds namespace
	C1If       = "veth-c1" // host side of c1's veth: an interface with an address, like docker0
	C2If       = "ext0"    // host side of c2's veth: covered by "+", not by a narrower list such as veth+
	InsideIf   = "eth0"    // the far end of every veth (imds, c1, c2)
	HostUpV4   = "192.0.2.1"
	IMDSLinkV4 = "192.0.2.2"
	HostUpV6   = "2001:db8:1::1"
	IMDSLinkV6 = "2001:db8:1::2"
	C1GwV4     = "198.51.100.1"
	C1V4       = "198.51.100.2"
	C1GwV6     = "2001:db8:2::1"
	C1V6       = "2001:db8:2::2"
	C2GwV4     = "203.0.113.1"
	C2V4       = "203.0.113.2"
	C2GwV6     = "2001:db8:3::1"
	C2V6       = "2001:db8:3::2"
	// GuardPort is where a Host's imdsguard listens (listen.port): the
	// daemon's default, free in a namespace of its own.
	GuardPort = 8989
)

// DefaultContainerInterfaces is the daemon's default redirect.container_interfaces:
// every interface but lo.
var DefaultContainerInterfaces = []string{"+"}

// HostOptions shape a Host.
type HostOptions struct {
	// SecondContainer adds c2, a "container" behind ext0: an interface that
	// a narrowed container_interfaces (veth+) does not name, so that its
	// metadata traffic is routed (and refused by IMDSGUARD-FWD) instead of
	// redirected. The default "+" names it.
	SecondContainer bool
	// AllowIMDSv1 runs AEMM without -I: an instance still set to
	// http-tokens optional.
	AllowIMDSv1 bool
	// FakeIMDS serves both metadata addresses with fakeimds instead of
	// AEMM: a fast upstream for load (AEMM crashes under concurrent token
	// PUTs). Fake4 and Fake6 are then set, AEMM4 and AEMM6 nil.
	FakeIMDS bool
}

// Host is the three-namespace model of an instance (TESTBED.md):
//
//	imds  lo: 169.254.169.254, fd00:ec2::254; AEMM (tokens required) on :80 of each;
//	      eth0 192.0.2.2/24 2001:db8:1::2/64; routes to the container networks via the host
//	host  uplink0 192.0.2.1/24 2001:db8:1::1/64, routes to both IMDS addresses via imds;
//	      forwarding on; veth-c1 198.51.100.1/24 2001:db8:2::1/64 (and ext0 for c2);
//	      imdsguard and its rules run here (StartGuard)
//	c1    eth0 198.51.100.2/24 2001:db8:2::2/64, default routes via the host
//	c2    (optional) eth0 203.0.113.2/24 2001:db8:3::2/64 behind the host's ext0
//
// Everything is removed when the test ends, also when it fails: the
// processes first, then the namespaces (with the daemon's rules in them).
type Host struct {
	e      *Env
	IMDSNS string // the namespaces' names
	HostNS string
	C1NS   string
	C2NS   string    // "" without HostOptions.SecondContainer
	AEMM4  *AEMM     // AEMM on 169.254.169.254:80
	AEMM6  *AEMM     // AEMM on [fd00:ec2::254]:80
	Fake4  *FakeIMDS // with HostOptions.FakeIMDS: fakeimds on 169.254.169.254:80
	Fake6  *FakeIMDS // and on [fd00:ec2::254]:80

	keyFile   string // tokens.key_file: the same across restarts
	socketDir string // admin.socket's directory (short path)
	pods      int    // pods added (AddPod, pods.go)
}

// NewHost builds the namespaces, starts AEMM (or fakeimds) on both IMDS addresses and
// waits until the host and every container can reach both directly (no
// rules yet): the baseline, and proof that IPv6 addresses left the
// tentative state.
func (e *Env) NewHost(o HostOptions) *Host {
	e.T.Helper()
	netnstest.RequireRoot(e.T)
	if o.FakeIMDS {
		e.RequireBins("fakeimds")
	} else {
		e.RequireBins("aemm")
	}
	h := &Host{
		e:         e,
		IMDSNS:    netnstest.New(e.T, "imds"),
		HostNS:    netnstest.New(e.T, "host"),
		C1NS:      netnstest.New(e.T, "c1"),
		keyFile:   e.Path("host-token.key"),
		socketDir: e.shortDir(),
	}
	t := e.T
	netnstest.IP(t, h.IMDSNS, "addr", "add", IMDSv4+"/32", "dev", "lo")
	netnstest.IP(t, h.IMDSNS, "-6", "addr", "add", IMDSv6+"/128", "dev", "lo", "nodad")
	h.link(h.IMDSNS, UplinkIf, HostUpV4, HostUpV6, IMDSLinkV4, IMDSLinkV6)
	netnstest.IP(t, h.HostNS, "route", "add", IMDSv4+"/32", "via", IMDSLinkV4)
	netnstest.IP(t, h.HostNS, "-6", "route", "add", IMDSv6+"/128", "via", IMDSLinkV6)
	h.container(h.C1NS, C1If, C1GwV4, C1GwV6, C1V4, C1V6)
	if o.SecondContainer {
		h.C2NS = netnstest.New(t, "c2")
		h.container(h.C2NS, C2If, C2GwV4, C2GwV6, C2V4, C2V6)
	}
	netnstest.Run(t, "ip", "netns", "exec", h.HostNS, "sysctl", "-q", "-w",
		"net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")
	h.startIMDS(o)
	for _, ns := range h.Namespaces() {
		waitNotTentative(t, ns)
	}
	for _, ns := range h.Callers() {
		for _, addr := range []string{IMDSAddr(4), IMDSAddr(6)} {
			waitDial(t, ns, addr)
		}
	}
	return h
}

// startIMDS starts the metadata service on both addresses of the imds
// namespace: AEMM, or fakeimds with o.FakeIMDS.
func (h *Host) startIMDS(o HostOptions) {
	if o.FakeIMDS {
		h.Fake4 = h.e.StartFakeIMDSIn(h.IMDSNS, IMDSAddr(4))
		h.Fake6 = h.e.StartFakeIMDSIn(h.IMDSNS, IMDSAddr(6))
		return
	}
	h.AEMM4 = h.e.StartAEMM(AEMMOptions{Host: IMDSv4, Port: 80, NS: h.IMDSNS, AllowIMDSv1: o.AllowIMDSv1})
	h.AEMM6 = h.e.StartAEMM(AEMMOptions{Host: IMDSv6, Port: 80, NS: h.IMDSNS, AllowIMDSv1: o.AllowIMDSv1})
}

// link joins the host namespace (uplink0, or a container's host-side
// interface) to ns (eth0) and adds the addresses.
func (h *Host) link(ns, hostIf, hostV4, hostV6, nsV4, nsV6 string) {
	netnstest.Veth(h.e.T, h.HostNS, hostIf, hostV4+"/24", ns, InsideIf, nsV4+"/24")
	netnstest.IP(h.e.T, h.HostNS, "-6", "addr", "add", hostV6+"/64", "dev", hostIf, "nodad")
	netnstest.IP(h.e.T, ns, "-6", "addr", "add", nsV6+"/64", "dev", InsideIf, "nodad")
}

// container makes ns a container behind hostIf: default routes via the
// host, and routes back from the imds namespace (so that, without rules,
// its metadata traffic is simply routed to IMDS).
func (h *Host) container(ns, hostIf, gwV4, gwV6, v4, v6 string) {
	t := h.e.T
	h.link(ns, hostIf, gwV4, gwV6, v4, v6)
	netnstest.IP(t, ns, "route", "add", "default", "via", gwV4)
	netnstest.IP(t, ns, "-6", "route", "add", "default", "via", gwV6)
	netnstest.IP(t, h.IMDSNS, "route", "add", prefix24(v4), "via", HostUpV4)
	netnstest.IP(t, h.IMDSNS, "-6", "route", "add", v6+"/64", "via", HostUpV6)
}

// prefix24 is the /24 network of a dotted IPv4 address.
func prefix24(v4 string) string {
	return v4[:strings.LastIndexByte(v4, '.')] + ".0/24"
}

// Namespaces returns every namespace of the Host.
func (h *Host) Namespaces() []string {
	return append([]string{h.IMDSNS}, h.Callers()...)
}

// Callers returns the namespaces whose processes are metadata clients: the
// host, c1 and, if present, c2.
func (h *Host) Callers() []string {
	out := []string{h.HostNS, h.C1NS}
	if h.C2NS != "" {
		out = append(out, h.C2NS)
	}
	return out
}

// IMDSAddr is the metadata service's host:port for IP version 4 or 6.
func IMDSAddr(version int) string {
	if version == 6 {
		return "[" + IMDSv6 + "]:80"
	}
	return IMDSv4 + ":80"
}

// IMDSURL is the metadata service's base URL (no trailing slash) for IP
// version 4 or 6.
func IMDSURL(version int) string {
	return "http://" + IMDSAddr(version)[:len(IMDSAddr(version))-len(":80")]
}

// waitNotTentative polls until ns has no tentative IPv6 address: even with
// nodad, connect() can fail for a moment after the address was added.
func waitNotTentative(t TB, ns string) {
	t.Helper()
	var out []byte
	WaitFor(t, "IPv6 addresses of "+ns+" leave the tentative state", func() bool {
		var err error
		out, err = exec.Command("ip", "-n", ns, "-6", "addr", "show", "tentative").CombinedOutput()
		return err == nil && strings.TrimSpace(string(out)) == ""
	})
}

// waitDial polls until a TCP connection from ns to addr succeeds.
func waitDial(t TB, ns, addr string) {
	t.Helper()
	var last error
	deadline := time.Now().Add(readyTimeout)
	for {
		if last = dialOnce(ns, addr); last == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s cannot reach %s after %v: %v", ns, addr, readyTimeout, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// HostGuardConfig is imdsguard's configuration on a Host. Zero fields get
// the daemon's defaults or the Host's: listen.port 8989, upstream
// http://169.254.169.254 (through the host's routes: the real path),
// redirect on for both families with the default container_interfaces
// ("+": every interface but lo), key file and admin socket in
// the test's temporary directories (the key survives restarts).
type HostGuardConfig struct {
	UpstreamURL         string
	NoIPv4, NoIPv6      bool     // redirect.ipv4/ipv6 false
	ContainerInterfaces []string // nil: DefaultContainerInterfaces
	HopLimitHost        int      // tokens.hop_limit.host; 0: 1
	HopLimitContainer   int      // tokens.hop_limit.container; 0: 2
	AuditSummary        string   // audit.summary_interval; "": 0s, every request on its own line
	LocalRedirectPort   int      // listen.local_redirect_port; 0: off
	Extra               string   // more top-level YAML (policy:, forwarded_headers: ...)
}

// YAML renders the whole file for port, key file and admin socket.
func (c HostGuardConfig) YAML(port int, keyFile, adminSocket string) string {
	if c.UpstreamURL == "" {
		c.UpstreamURL = "http://" + IMDSv4
	}
	if c.ContainerInterfaces == nil {
		c.ContainerInterfaces = DefaultContainerInterfaces
	}
	if c.HopLimitHost == 0 {
		c.HopLimitHost = 1
	}
	if c.HopLimitContainer == 0 {
		c.HopLimitContainer = 2
	}
	ifs := make([]string, len(c.ContainerInterfaces))
	for i, s := range c.ContainerInterfaces {
		ifs[i] = strconv.Quote(s)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "version: 1\n")
	if c.LocalRedirectPort != 0 {
		fmt.Fprintf(&b, "listen: {port: %d, local_redirect_port: %d}\n", port, c.LocalRedirectPort)
	} else {
		fmt.Fprintf(&b, "listen: {port: %d}\n", port)
	}
	fmt.Fprintf(&b, "upstream: {url: %q}\n", c.UpstreamURL)
	fmt.Fprintf(&b, "redirect: {ipv4: %t, ipv6: %t, container_interfaces: [%s], keep_on_exit: true}\n",
		!c.NoIPv4, !c.NoIPv6, strings.Join(ifs, ", "))
	fmt.Fprintf(&b, "tokens: {key_file: %q, hop_limit: {host: %d, container: %d}}\n",
		keyFile, c.HopLimitHost, c.HopLimitContainer)
	fmt.Fprintf(&b, "admin: {socket: %q}\n", adminSocket)
	fmt.Fprintf(&b, "audit: {summary_interval: %s}\n", orZero(c.AuditSummary))
	if c.Extra != "" {
		b.WriteString(strings.TrimRight(c.Extra, "\n") + "\n")
	}
	b.WriteString(noMachineRuntimes(c.Extra))
	return b.String()
}

// guardConfig is c as the harness's GuardConfig (Raw: the whole file).
func (h *Host) guardConfig(c HostGuardConfig) GuardConfig {
	sock := h.socketDir + "/admin.sock"
	return GuardConfig{
		Port: GuardPort, UpstreamURL: c.UpstreamURL, RedirectIPv4: !c.NoIPv4, RedirectIPv6: !c.NoIPv6,
		KeyFile: h.keyFile, AdminSocket: sock, Raw: c.YAML(GuardPort, h.keyFile, sock),
	}
}

// StartGuard starts `imdsguard run --config FILE` in the host namespace: it
// installs its rules there. It returns once the proxy port accepts
// connections (the daemon installs the rules before it listens). The
// daemon is stopped with SIGTERM when the test ends; its rules stay until
// the namespace goes.
func (h *Host) StartGuard(c HostGuardConfig, args ...string) *Guard {
	h.e.T.Helper()
	return h.StartGuardWith(c, GuardOptions{Args: args})
}

// StartGuardWith is StartGuard with options (another binary: o.Bin); the
// daemon runs in the host namespace whatever o.NS says.
func (h *Host) StartGuardWith(c HostGuardConfig, o GuardOptions) *Guard {
	h.e.T.Helper()
	o.NS = h.HostNS
	return h.e.StartGuard(h.guardConfig(c), o)
}

// ReloadGuard rewrites g's configuration file from c and sends SIGHUP (the
// policy is what a reload changes). The caller checks the effect.
func (h *Host) ReloadGuard(g *Guard, c HostGuardConfig) error {
	return g.Reload(h.guardConfig(c))
}

// Rules is `imdsguard rules VERB --config FILE` in the host namespace, for
// the configuration of g (or the default file for a nil g).
func (h *Host) Rules(g *Guard, verb string) Cmd {
	h.e.T.Helper()
	h.e.RequireBins("imdsguard")
	args := []string{"rules", verb}
	if g != nil {
		args = append(args, "--config", g.ConfigPath)
	}
	return Cmd{Name: "imdsguard rules " + verb, Path: h.e.Bin("imdsguard"), Args: args, NS: h.HostNS, Env: h.e.ClientEnv()}
}

// In returns c set to run in namespace ns.
func In(ns string, c Cmd) Cmd {
	c.NS = ns
	return c
}

// InHost, InC1 and InC2 return c set to run in that namespace, as root.
func (h *Host) InHost(c Cmd) Cmd { return In(h.HostNS, c) }
func (h *Host) InC1(c Cmd) Cmd   { return In(h.C1NS, c) }
func (h *Host) InC2(c Cmd) Cmd   { return In(h.C2NS, c) }

// Shell runs `sh -c script` in ns as root and fails the test on error; it
// returns the combined output. For iptables inspection and the like.
func (h *Host) Shell(ns, script string) string {
	h.e.T.Helper()
	return netnstest.Run(h.e.T, "ip", "netns", "exec", ns, "sh", "-c", script)
}

// DialIn makes one TCP connection attempt from ns to addr within timeout
// and closes it: nil when it was accepted.
func DialIn(ns, addr string, timeout time.Duration) error {
	return netnstest.Do(ns, func() error {
		c, err := net.DialTimeout("tcp", addr, timeout)
		if err != nil {
			return err
		}
		return c.Close()
	})
}
