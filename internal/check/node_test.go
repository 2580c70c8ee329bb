package check

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The node's state: landing addresses, the container network, the
// runtimes, the redirect answered. Each case is one probe's answer and
// the lines of the one check it feeds.

// result runs every check over f and returns the one called name.
func result(t *testing.T, f fake, name string) Result {
	t.Helper()
	for _, r := range Run(context.Background(), f) {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("no check %q", name)
	return Result{}
}

// checkResult wants r to pass or not and to say each of want (in its
// detail or fix), none of unwanted.
func checkResult(t *testing.T, r Result, pass bool, want, unwanted []string) {
	t.Helper()
	out := Report{r}.String()
	if r.Pass != pass {
		t.Errorf("pass = %v, want %v:\n%s", r.Pass, pass, out)
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("lacks %q:\n%s", w, out)
		}
	}
	for _, u := range unwanted {
		if strings.Contains(out, u) {
			t.Errorf("has %q:\n%s", u, out)
		}
	}
}

func TestLanding(t *testing.T) {
	v4 := Landing{Family: "ipv4", Addr: "169.254.254.169/32", Present: true}
	v6 := Landing{Family: "ipv6", Addr: "fd69:6d64:7367::254/128", Present: true}
	for _, c := range []struct {
		name  string
		ls    []Landing
		err   error
		pass  bool
		want  []string
		short string
	}{
		{"both present", []Landing{v4, v6}, nil, true,
			[]string{"PASS  landing addresses on lo", "ipv4 169.254.254.169/32: present", "ipv6 fd69:6d64:7367::254/128: present"},
			"landing 169.254.254.169/32, fd69:6d64:7367::254/128 on lo"},
		{"ipv6 missing", []Landing{v4, {Family: "ipv6", Addr: v6.Addr}}, nil, false,
			[]string{"FAIL  landing addresses on lo", "ipv4 169.254.254.169/32: present", "ipv6 fd69:6d64:7367::254/128: MISSING", "fix: the daemon puts it back", "imdsguard rules install"}, ""},
		{"ipv6 off on lo", []Landing{v4, {Family: "ipv6", Addr: v6.Addr, IPv6Off: true}}, nil, true,
			[]string{"ipv6 fd69:6d64:7367::254/128: none, IPv6 is off on lo"}, "landing 169.254.254.169/32 on lo"},
		{"only ipv6, off", []Landing{{Family: "ipv6", Addr: v6.Addr, IPv6Off: true}}, nil, true, nil, "no landing address in use (IPv6 off on lo)"},
		{"no container interfaces", nil, nil, true, []string{"none needed: no container interface is redirected"}, "no landing address needed"},
		{"unreadable", nil, errors.New("operation not permitted"), false, []string{"cannot read lo's addresses: operation not permitted", "fix: run imdsguard check as root"}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := result(t, with(healthy, func(f *fake) { f.landing, f.landingErr = c.ls, c.err }), landingName)
			checkResult(t, r, c.pass, c.want, nil)
			if c.pass && r.Short != c.short {
				t.Errorf("short %q, want %q", r.Short, c.short)
			}
		})
	}
}

func TestCNIKind(t *testing.T) {
	veth := func(name string) Interface { return Interface{Name: name, Kind: "veth", AddressLess: true} }
	port := func(name, master string) Interface { return Interface{Name: name, Kind: "veth", Master: master} }
	bridge := func(name string) Interface {
		return Interface{Name: name, Kind: "bridge", Addrs: []string{"10.1.0.1/24"}}
	}
	for _, c := range []struct {
		name string
		c    Containers
		want string
	}{
		{"docker", Containers{Interfaces: []Interface{bridge("docker0"), port("veth1a2b3c", "docker0"), bridge("br-0123456789ab")}},
			"CNI: looks like Docker bridge (3 interfaces)"},
		{"cni bridge plugin", Containers{Interfaces: []Interface{bridge("cni0"), port("veth5f6e", "cni0"), port("veth7a8b", "cni0")}},
			"CNI: looks like CNI bridge plugin (3 interfaces)"},
		{"aws vpc cni", Containers{Interfaces: []Interface{{Name: "ens5", Kind: "device"}, veth("eni3a9f1c2d4b5")}}, "CNI: looks like AWS VPC CNI (1 interface)"},
		{"calico", Containers{Interfaces: []Interface{veth("cali1"), veth("cali2")}}, "CNI: looks like Calico (2 interfaces)"},
		{"cilium pods", Containers{Cilium: true, Interfaces: []Interface{veth("lxc1a2b"), veth("lxc_health")}}, "CNI: looks like Cilium (2 interfaces)"},
		{"cilium, no pod yet", Containers{Cilium: true}, "CNI: looks like Cilium (cilium_host; no pod interface yet)"},
		{"docker beside calico", Containers{Interfaces: []Interface{veth("cali1"), bridge("docker0")}},
			"CNI: looks like Docker bridge (1 interface) and Calico (1 interface)"},
		// Names alone are not enough: a device called eni0, a bridge br-lan
		// and a plain veth are no known CNI's.
		{"none", Containers{Interfaces: []Interface{{Name: "eth0", Kind: "device"}, {Name: "eni0", Kind: "device"}, bridge("br-lan"), veth("veth-c1")}},
			"CNI: none recognised (known: Docker bridge docker0, br-<id>; CNI bridge plugin cni0, cbr0; AWS VPC CNI eni… veths; Calico cali… veths; Cilium lxc… veths, cilium_host)"},
	} {
		if got := cniLine(c.c); got != c.want {
			t.Errorf("%s: %q\nwant %q", c.name, got, c.want)
		}
	}
}

func TestRuntimes(t *testing.T) {
	docker := Runtime{Name: "docker", Key: "docker", Socket: "/run/docker.sock", Absent: true}
	ctrd := Runtime{Name: "containerd", Key: "containerd", Socket: "/run/containerd/containerd.sock", Answer: "containerd 1.6.20"}
	crio := Runtime{Name: "cri-o", Key: "crio", Socket: "/run/crio/crio.sock", Absent: true}
	down := ctrd
	down.Answer, down.Err = "", &fs.PathError{Op: "dial", Path: ctrd.Socket, Err: syscall.ECONNREFUSED}
	denied := ctrd
	denied.Answer, denied.Err = "", fmt.Errorf("dial unix %s: %w", ctrd.Socket, syscall.EACCES)
	calico := Containers{Patterns: []string{"+"}, Interfaces: []Interface{{Name: "cali1", Kind: "veth", AddressLess: true}}}
	plain := Containers{Patterns: []string{"+"}, Interfaces: []Interface{{Name: "ens5", Kind: "device"}, {Name: "veth-c1", Kind: "veth"}}}
	for _, c := range []struct {
		name       string
		rts        []Runtime
		containers Containers
		pass       bool
		want       []string
	}{
		{"containerd answers", []Runtime{docker, ctrd, crio}, calico, true, []string{
			"PASS  container runtimes answer",
			"docker at /run/docker.sock: not on this node (no socket; in a pod: or not mounted from the node)",
			"containerd at /run/containerd/containerd.sock: answers: containerd 1.6.20",
			"cri-o at /run/crio/crio.sock: not on this node"}},
		{"a runtime down", []Runtime{docker, down}, calico, false, []string{
			"FAIL  container runtimes answer", "containerd at /run/containerd/containerd.sock: does NOT answer: dial /run/containerd/containerd.sock: connection refused",
			`fix: start containerd (systemctl start containerd), or set runtimes.containerd: "" if this node does not use it`,
			"no runtime answers, yet the interfaces show Calico", "mount its directory from the node, e.g. /run/containerd"}},
		{"a runtime down beside one that answers", []Runtime{ctrd, {Name: "cri-o", Key: "crio", Socket: crio.Socket, Err: errors.New("context deadline exceeded")}}, calico, false, []string{
			"cri-o at /run/crio/crio.sock: does NOT answer: context deadline exceeded", "systemctl start crio", `runtimes.crio: ""`}},
		{"not root", []Runtime{denied}, plain, false, []string{"permission denied", "fix: run imdsguard check as root (/run/containerd/containerd.sock is root's)"}},
		{"none on a node with pods", []Runtime{docker, crio}, calico, false, []string{
			"FAIL  container runtimes answer", "no runtime answers, yet the interfaces show Calico: container callers get no name, image, labels or pod",
			"fix: point runtimes: at this node's runtime socket"}},
		{"none on a host without containers", []Runtime{docker, crio}, plain, true, []string{"PASS  container runtimes answer", "docker at /run/docker.sock: not on this node"}},
		{"none configured", nil, plain, true, []string{`none configured (runtimes: all "")`}},
		{"none configured, pods", nil, calico, false, []string{`none configured (runtimes: all "")`, "no runtime answers, yet the interfaces show Calico"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := with(healthy, func(f *fake) { f.runtimes, f.containers = c.rts, c.containers })
			checkResult(t, result(t, f, runtimesName), c.pass, c.want, nil)
		})
	}
	// The container path unreadable: whether pods exist is unknown, so a
	// missing runtime is not called a failure (the containers check is).
	f := with(healthy, func(f *fake) { f.runtimes, f.containersErr = []Runtime{docker}, errors.New("permission denied") })
	checkResult(t, result(t, f, runtimesName), true, nil, []string{"no runtime answers"})
}

func TestServed(t *testing.T) {
	v4 := Answer{Family: "IPv4", Addr: "169.254.169.254:80", Status: 200, Took: 1234 * time.Microsecond}
	v6 := Answer{Family: "IPv6", Addr: "[fd00:ec2::254]:80", Status: 200, Took: 456 * time.Microsecond}
	refused := func(a Answer) Answer {
		a.Status, a.Err, a.Refused = 0, errors.New("dial tcp "+a.Addr+": connect: connection refused"), true
		return a
	}
	noRoute := func(a Answer) Answer {
		a.Status, a.Err, a.NoRoute = 0, errors.New("connect: network is unreachable"), true
		return a
	}
	for _, c := range []struct {
		name string
		as   []Answer
		pass bool
		want []string
	}{
		{"both answered", []Answer{v4, v6}, true, []string{
			"PASS  imdsguard answers metadata requests through the redirect",
			"IPv4: OPTIONS to 169.254.169.254:80 answered 200 in 1.2ms", "IPv6: OPTIONS to [fd00:ec2::254]:80 answered 200 in 456µs"}},
		{"daemon down", []Answer{refused(v4), refused(v6)}, false, []string{
			"FAIL  imdsguard answers metadata requests through the redirect",
			"IPv4: OPTIONS to 169.254.169.254:80: connection refused: the rules send it to imdsguard's port and nothing listens there",
			"fix: systemctl start imdsguard"}},
		{"no IPv6 route", []Answer{v4, noRoute(v6)}, true, []string{"IPv6: OPTIONS to [fd00:ec2::254]:80: no route on this node (connect: network is unreachable): nothing here reaches IMDS over IPv6"}},
		{"no IPv4 route", []Answer{noRoute(v4)}, false, []string{"IPv4: OPTIONS to 169.254.169.254:80: connect: network is unreachable"}},
		{"timeout", []Answer{{Family: "IPv4", Addr: v4.Addr, Err: context.DeadlineExceeded}}, false, []string{"IPv4: OPTIONS to 169.254.169.254:80: context deadline exceeded"}},
		{"not 200", []Answer{{Family: "IPv4", Addr: v4.Addr, Status: 405}}, false, []string{"answered 405, want 200"}},
		{"nothing redirected", nil, false, []string{"no family is redirected", "fix: set redirect.ipv4"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := result(t, with(healthy, func(f *fake) { f.served = c.as }), servedName)
			checkResult(t, r, c.pass, c.want, nil)
		})
	}
}

// Ready asks only the rules, lo and the redirect: never IMDS, the proxy
// port, a runtime or the container path; it says one line when it passes,
// and an instance still at http-tokens optional is ready.
func TestReady(t *testing.T) {
	f := with(healthy, func(f *fake) { f.asked, f.directStatus = map[string]int{}, 200 })
	r := Ready(context.Background(), f)
	if !r.OK() || len(r) != 3 {
		t.Fatalf("ready: OK %v, %d checks:\n%s", r.OK(), len(r), r)
	}
	if want := map[string]int{"rules": 1, "landing": 1, "served": 1}; fmt.Sprint(f.asked) != fmt.Sprint(want) {
		t.Errorf("ready asked %v, want %v", f.asked, want)
	}
	const line = "rules: detail; landing 169.254.254.169/32, fd69:6d64:7367::254/128 on lo; token OPTIONS through the redirect answered (IPv4 in 1.2ms, IPv6 in 456µs)"
	if got := r.Line(); got != line {
		t.Errorf("line\n%s\nwant\n%s", got, line)
	}
	for _, c := range []struct {
		name  string
		f     fake
		fails []string
	}{
		{"daemon stopped, rules kept", with(healthy, func(f *fake) {
			f.served = []Answer{{Family: "IPv4", Addr: "169.254.169.254:80", Err: errors.New("connection refused"), Refused: true}}
		}), []string{"FAIL  imdsguard answers metadata requests through the redirect"}},
		// The OPTIONS would reach IMDS itself: it is not sent.
		{"rules removed", with(healthy, func(f *fake) {
			f.rulesOK, f.landing = false, []Landing{{Family: "ipv4", Addr: "169.254.254.169/32"}}
			f.asked = map[string]int{}
		}),
			[]string{"FAIL  redirect rules installed", "FAIL  landing addresses on lo", "FAIL  imdsguard answers metadata requests through the redirect",
				"not sent: the redirect rules are not complete, so it could reach IMDS itself rather than imdsguard", "fix: see the rules check"}},
	} {
		r := Ready(context.Background(), c.f)
		if c.f.asked != nil && c.f.asked["served"] != 0 {
			t.Errorf("%s: the OPTIONS was sent", c.name)
		}
		out := r.String()
		if r.OK() {
			t.Errorf("%s: ready:\n%s", c.name, out)
		}
		for _, w := range c.fails {
			if !strings.Contains(out, w) {
				t.Errorf("%s: lacks %q:\n%s", c.name, w, out)
			}
		}
	}
}
