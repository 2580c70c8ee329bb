package check

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fake answers every probe as told.
type fake struct {
	rulesOK       bool
	rulesErr      error
	proxyStatus   int
	proxyErr      error
	directStatus  int
	directErr     error
	redirectCode  int
	redirectError error
	containers    Containers
	containersErr error
	landing       []Landing
	landingErr    error
	runtimes      []Runtime
	served        []Answer
	options       MetadataOptions
	// asked counts the probes a run used (nil: not counted).
	asked map[string]int
}

func (f fake) ask(name string) {
	if f.asked != nil {
		f.asked[name]++
	}
}

func (f fake) Containers(context.Context) (Containers, error) {
	f.ask("containers")
	return f.containers, f.containersErr
}
func (f fake) Landing(context.Context) ([]Landing, error) {
	f.ask("landing")
	return f.landing, f.landingErr
}
func (f fake) Runtimes(context.Context) []Runtime { f.ask("runtimes"); return f.runtimes }
func (f fake) Served(context.Context) []Answer    { f.ask("served"); return f.served }

func (f fake) Rules(context.Context) (bool, string, error) {
	f.ask("rules")
	return f.rulesOK, "detail", f.rulesErr
}
func (f fake) Proxy(context.Context) (int, error) { f.ask("proxy"); return f.proxyStatus, f.proxyErr }
func (f fake) Direct(context.Context, string) (int, string, error) {
	f.ask("direct")
	return f.directStatus, "i-0direct", f.directErr
}
func (f fake) MetadataOptions(context.Context) MetadataOptions {
	f.ask("options")
	return f.options
}
func (f fake) Redirected(context.Context, string) (int, string, error) {
	f.ask("redirected")
	return f.redirectCode, "i-0abc\n", f.redirectError
}

var healthy = fake{rulesOK: true, proxyStatus: 200, directStatus: 401, redirectCode: 200, containers: Containers{
	Patterns: []string{"+"}, Landing: []string{"169.254.254.169:8989", "[fd69:6d64:7367::254]:8989"}, Counted: true, Connections: 3,
	Interfaces: []Interface{
		{Name: "eth0", Kind: "device", Addrs: []string{"10.0.0.5/24"}},
		{Name: "docker0", Kind: "bridge", Addrs: []string{"172.17.0.1/16"}},
		{Name: "eni3a9f1c2d", Kind: "veth", AddressLess: true},
	},
},
	landing: []Landing{{Family: "ipv4", Addr: "169.254.254.169/32", Present: true}, {Family: "ipv6", Addr: "fd69:6d64:7367::254/128", Present: true}},
	runtimes: []Runtime{
		{Name: "docker", Key: "docker", Socket: "/run/docker.sock", Absent: true},
		{Name: "containerd", Key: "containerd", Socket: "/run/containerd/containerd.sock", Answer: "containerd 1.6.20"},
	},
	served: []Answer{
		{Family: "IPv4", Addr: "169.254.169.254:80", Status: 200, Took: 1234 * time.Microsecond},
		{Family: "IPv6", Addr: "[fd00:ec2::254]:80", Status: 200, Took: 456 * time.Microsecond},
	},
	options: MetadataOptions{
		Token: DirectAnswer{Sent: true, Status: 200, Body: "tok", Took: time.Millisecond},
		IPv6:  DirectAnswer{Sent: true, Status: 200, Body: "tok", Took: time.Millisecond},
		Tags:  DirectAnswer{Sent: true, Status: 404},

		IPv6Redirected: true,
		Hop:            HopProbe{Sent: true, Drops: 2, Waited: 200 * time.Millisecond},
	},
}

func TestRun(t *testing.T) {
	for _, c := range []struct {
		name  string
		f     fake
		ok    bool
		fails []string // substrings of the FAIL lines and fixes
	}{
		{"all in effect", healthy, true, nil},
		{"tokens optional", with(healthy, func(f *fake) { f.directStatus = 200 }), false,
			[]string{"FAIL  IMDS itself rejects", "fix: aws ec2 modify-instance-metadata-options --instance-id i-0abc --http-tokens required --http-put-response-hop-limit 1 --http-endpoint enabled", "aws lightsail update-instance-metadata-options"}},
		{"rules missing", with(healthy, func(f *fake) { f.rulesOK = false }), false, []string{"FAIL  redirect rules", "imdsguard rules install"}},
		{"rules unreadable", with(healthy, func(f *fake) { f.rulesErr = errors.New("permission denied") }), false, []string{"cannot read the rules: permission denied", "as root"}},
		{"daemon down", with(healthy, func(f *fake) {
			f.proxyErr, f.redirectError = errors.New("connection refused"), errors.New("connection refused")
		}), false, []string{"FAIL  imdsguard answers", "systemctl start imdsguard", "FAIL  an IMDSv1 request through the redirect"}},
		{"direct unreachable", with(healthy, func(f *fake) { f.directErr = errors.New("operation not permitted") }), false, []string{"cannot reach IMDS directly", "as root"}},
		{"container path missing", with(healthy, func(f *fake) {
			f.containers.Missing = []string{"ipv4 lo address 169.254.254.169/32"}
		}), false, []string{"FAIL  container metadata traffic", "1 pieces missing or out of place: ipv4 lo address", "imdsguard rules status"}},
		{"cilium ebpf host routing", with(healthy, func(f *fake) { f.containers.Cilium, f.containers.HostRouting = true, "bpf" }),
			false, []string{"FAIL  container metadata traffic", "eBPF host routing", "bpf.hostLegacyRouting=true", "eni3a9f1c2d (veth, address-less)"}},
		{"cilium legacy routing", with(healthy, func(f *fake) { f.containers.Cilium, f.containers.HostRouting = true, "legacy" }), true, nil},
		{"no container interfaces redirected", with(healthy, func(f *fake) { f.containers = Containers{} }), true, nil},
		{"containers unreadable", with(healthy, func(f *fake) { f.containersErr = errors.New("permission denied") }), false, []string{"FAIL  container metadata traffic"}},
		{"instance id from the direct answer", with(healthy, func(f *fake) { f.directStatus, f.redirectCode = 200, 403 }), false, []string{"--instance-id i-0direct"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := Run(context.Background(), c.f)
			out := r.String()
			if r.OK() != c.ok || len(r) != 12 {
				t.Fatalf("OK() = %v with %d checks, want %v:\n%s", r.OK(), len(r), c.ok, out)
			}
			for _, want := range c.fails {
				if !strings.Contains(out, want) {
					t.Errorf("report lacks %q:\n%s", want, out)
				}
			}
			if c.ok && strings.Contains(out, "FAIL") {
				t.Errorf("healthy report has a FAIL:\n%s", out)
			}
		})
	}
}

func with(f fake, change func(*fake)) fake {
	change(&f)
	return f
}

func TestContainersDetail(t *testing.T) {
	out := Run(context.Background(), healthy).String()
	for _, want := range []string{
		"PASS  container metadata traffic is redirected (PREROUTING)\n" +
			"      DNAT to 169.254.254.169:8989 and [fd69:6d64:7367::254]:8989 from every interface but lo\n" +
			"      3 container connections redirected since the rules went in\n" +
			"      container interfaces: eth0 (device, 10.0.0.5/24), docker0 (bridge, 172.17.0.1/16), eni3a9f1c2d (veth, address-less)\n" +
			"      CNI: looks like Docker bridge (1 interface) and AWS VPC CNI (1 interface)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks\n%s\ngot:\n%s", want, out)
		}
	}
	c := healthy.containers
	c.Cilium, c.Connections = true, 0
	lines := strings.Join(containerLines(c), "\n")
	if !strings.Contains(lines, "no container metadata traffic seen") || !strings.Contains(lines, "host routing mode is unknown; no container traffic seen") {
		t.Errorf("cilium, mode unknown, no traffic:\n%s", lines)
	}
	var many []Interface
	for i := range 12 {
		many = append(many, Interface{Name: fmt.Sprintf("lxc%02d", i), Kind: "veth", AddressLess: true})
	}
	many = append(many, Interface{Name: "cilium_host", Kind: "veth", Addrs: []string{"10.0.0.1/32"}}, Interface{Name: "br-x", Kind: "bridge"})
	if got := interfacesLine(many); !strings.HasSuffix(got, "lxc07 (veth, address-less) and 6 more (5 veth, 1 bridge)") {
		t.Errorf("interfacesLine: %s", got)
	}
	port := Interface{Name: "veth9", Kind: "veth", AddressLess: true, Master: "docker0"}
	if got := port.String(); got != "veth9 (veth, port of docker0: its traffic is seen on docker0)" {
		t.Errorf("bridge port: %s", got)
	}
}

func TestCiliumHostRouting(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, c := range []struct{ path, want string }{
		{write("bpf.h", "/* Node-IPv4: 10.0.0.5 */\n#define ENABLE_NODEPORT 1\n#define ENABLE_HOST_ROUTING 1\n"), "bpf"},
		{write("legacy.h", "#define ENABLE_NODEPORT 1\n/* ENABLE_HOST_ROUTING off */\n"), "legacy"},
		{filepath.Join(dir, "absent.h"), ""},
	} {
		if got := ciliumHostRouting(c.path); got != c.want {
			t.Errorf("%s: %q, want %q", filepath.Base(c.path), got, c.want)
		}
	}
}
