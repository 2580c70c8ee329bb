package redirect

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/imdsguard/imdsguard/internal/netnstest"
)

// Privileged: Keep against the real kernel, both backends.

// keepIn runs r.Keep inside ns until the returned stop is called (also at
// cleanup); stop returns Keep's error.
func keepIn(t *testing.T, ns string, r *Rules) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- netnstest.Do(ns, func() error { return r.Keep(ctx) }) }()
	var err error
	stopped := false
	stop = func() error {
		if !stopped {
			cancel()
			err, stopped = <-done, true
		}
		return err
	}
	t.Cleanup(func() { _ = stop() })
	waitFor(t, 5*time.Second, "Keep installs and follows links", func() bool { _, f := r.links.get(); return f })
	return stop
}

// ourSaved is ourLines of both families in ns, without the table marker.
func ourSaved(t *testing.T, ns, backend string) []string {
	lines := ourLines(saveAll(t, ns, backend))
	return slices.DeleteFunc(lines, func(l string) bool { return strings.Contains(l, ChainMadeTable) })
}

func TestRealKeep(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			requireBackend(t, backend)
			ns := netnstest.New(t, "rg-keep")
			foreignRules(t, ns, backend)
			imds := imdsOnLo(t, ns) // no proxy listens in this namespace
			logs := &syncBuffer{}
			r := newRulesIn(t, ns, Options{Config: DefaultConfig(), Port: testPort, Backend: backend, Log: testLog(t, logs)})
			stop := keepIn(t, ns, r)
			installed := ourSaved(t, ns, backend)

			damages := keepDamages(backend)
			for _, d := range damages {
				n := r.Restores()
				for _, c := range d.cmds {
					ipt(t, ns, c[0], c[1:]...)
				}
				took := waitFor(t, 3*time.Second, "restore after "+d.name, func() bool { return r.Restores() > n })
				if got := ourSaved(t, ns, backend); !slices.Equal(got, installed) {
					t.Errorf("after %s and restore:\n%s\nwant:\n%s", d.name, strings.Join(got, "\n"), strings.Join(installed, "\n"))
				}
				if took > 2*time.Second {
					t.Errorf("%s: restored after %s, want within 2s", d.name, took)
				}
				t.Logf("RESTORE %-45s restored after %s", d.name+":", took.Round(time.Millisecond))
			}
			if !strings.Contains(logs.String(), "restored rules deleted from outside") {
				t.Error("restores not logged")
			}
			lo := netnstest.Run(t, "ip", "-n", ns, "addr", "show", "dev", "lo")
			for _, want := range []string{"inet 169.254.254.169/32 scope host lo:imdsguard", "inet6 fd69:6d64:7367::254/128 scope global nodad deprecated"} {
				if !strings.Contains(lo, want) {
					t.Errorf("lo lacks %q:\n%s", want, lo)
				}
			}

			followLinks(t, ns, r, logs)

			// The daemon stops (or dies) with keep_on_exit: the rules stay,
			// callers are refused, "IMDS" hears nothing.
			if err := stop(); err != nil {
				t.Fatalf("Keep: %v", err)
			}
			if got := ourSaved(t, ns, backend); !slices.Equal(got, installed) {
				t.Errorf("rules after Keep ended (keep_on_exit):\n%s", strings.Join(got, "\n"))
			}
			wantRefused(t, ns, imds4)
			wantRefused(t, ns, imds6)
			if n := imds.hits.Load(); n != 0 {
				t.Errorf("IMDS got %d requests", n)
			}
		})
	}
}

// damage is an outside change Keep must undo: commands run in the namespace.
type damage struct {
	name string
	cmds [][]string
}

// keepDamages lists the outside changes TestRealKeep inflicts, in order.
func keepDamages(backend string) []damage {
	v4, v6 := "iptables-"+backend, "ip6tables-"+backend
	jump := func(c chain) []string {
		return append([]string{"-t", c.Table, "-D", c.Hook}, jumpRule(c).Spec()...)
	}
	damages := []damage{
		{"iptables -t nat -F", [][]string{{v4, "-t", "nat", "-F"}}},
		{"iptables -t nat -F IMDSGUARD-OUT", [][]string{{v4, "-t", "nat", "-F", ChainOut}}},
		{"iptables -t nat -D OUTPUT <jump>", [][]string{append([]string{v4}, jump(chains[0])...)}},
		{"ip6tables -t filter -F", [][]string{{v6, "-t", "filter", "-F"}}},
		{"ip6tables: IMDSGUARD-PRE deleted", [][]string{
			append([]string{v6}, jump(chains[1])...),
			{v6, "-t", "nat", "-F", ChainPre}, {v6, "-t", "nat", "-X", ChainPre},
		}},
	}
	damages = append(damages,
		damage{"iptables -t nat -I PREROUTING 1 (a rule before the jump)", [][]string{{v4, "-t", "nat", "-I", "PREROUTING", "1", "-p", "tcp", "-j", "RETURN"}}},
		damage{"ip6tables -I FORWARD 1 (a rule before the jump)", [][]string{{v6, "-I", "FORWARD", "1", "-p", "tcp", "-j", "ACCEPT"}}},
		damage{"ip addr del the IPv4 landing address", [][]string{{"ip", "addr", "del", "169.254.254.169/32", "dev", "lo"}}},
		damage{"ip -6 addr del the IPv6 landing address", [][]string{{"ip", "-6", "addr", "del", "fd69:6d64:7367::254/128", "dev", "lo"}}},
	)
	if _, err := findTool("nft"); err == nil && backend == "nft" {
		damages = append(damages, damage{"nft delete table ip nat (a firewall reload)", [][]string{{"nft", "delete", "table", "ip", "nat"}}})
	}
	return damages
}

// followLinks: a veth and a bridge made and deleted while Keep runs show up
// in Interfaces (every link but lo: the default "+"), are logged, and a
// route through the veth names it in InterfaceFor.
func followLinks(t *testing.T, ns string, r *Rules, logs *syncBuffer) {
	addr := netip.MustParseAddr("198.51.100.77")
	start := time.Now()
	netnstest.IP(t, ns, "link", "add", "veth-new", "type", "veth", "peer", "name", "vpeer-new")
	netnstest.IP(t, ns, "link", "set", "veth-new", "up")
	netnstest.IP(t, ns, "link", "set", "vpeer-new", "up")
	netnstest.IP(t, ns, "route", "add", addr.String()+"/32", "dev", "veth-new")
	netnstest.IP(t, ns, "link", "add", "br-test", "type", "bridge")
	has := func(name, kind string) bool {
		return slices.ContainsFunc(r.Interfaces(), func(l Link) bool { return l.Name == name && l.Kind == kind })
	}
	waitFor(t, 2*time.Second, "links followed", func() bool {
		return has("veth-new", "veth") && has("vpeer-new", "veth") && has("br-test", "bridge")
	})
	interfaceFor := func() (name string) {
		in(t, ns, func() error { name = r.InterfaceFor(addr); return nil })
		return name
	}
	if got := interfaceFor(); got != "veth-new" {
		t.Errorf("InterfaceFor(%s) = %q, want veth-new", addr, got)
	}
	t.Logf("LINKS veth-new, vpeer-new and br-test followed after %s: %v", time.Since(start).Round(time.Millisecond), r.Interfaces())
	if slices.ContainsFunc(r.Interfaces(), func(l Link) bool { return l.Name == "lo" }) {
		t.Error("lo is listed as a container interface")
	}
	start = time.Now()
	netnstest.IP(t, ns, "link", "del", "veth-new")
	netnstest.IP(t, ns, "link", "del", "br-test")
	waitFor(t, 2*time.Second, "links gone", func() bool { return len(r.Interfaces()) == 0 && interfaceFor() == "" })
	t.Logf("LINKS gone after %s", time.Since(start).Round(time.Millisecond))
	log := logs.String()
	for _, want := range []string{
		`msg="container interface appeared" component=redirect backend=` + r.Backend() + ` interface=veth-new`,
		`msg="container interface appeared" component=redirect backend=` + r.Backend() + ` interface=br-test`,
		`msg="container interface vanished" component=redirect backend=` + r.Backend() + ` interface=veth-new`,
		`msg="container interface vanished" component=redirect backend=` + r.Backend() + ` interface=br-test`,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %s", want)
		}
	}
}

// keep_on_exit false: Keep removes the rules when it ends, leaving
// iptables-save as it was.
func TestRealKeepRemovesOnExit(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			requireBackend(t, backend)
			ns := netnstest.New(t, "rg-keepx")
			foreignRules(t, ns, backend)
			before := saveAll(t, ns, backend)
			cfg := DefaultConfig()
			cfg.KeepOnExit = false
			r := newRulesIn(t, ns, Options{Config: cfg, Port: testPort, Backend: backend, Log: testLog(t, &syncBuffer{})})
			stop := keepIn(t, ns, r)
			if len(ourSaved(t, ns, backend)) == 0 {
				t.Fatal("Keep installed nothing")
			}
			if err := stop(); err != nil {
				t.Fatalf("Keep: %v", err)
			}
			if after := saveAll(t, ns, backend); after != before {
				t.Errorf("after Keep with keep_on_exit=false:\n%s\nwant:\n%s", after, before)
			}
		})
	}
}

// Rules put above the jumps that cannot touch metadata traffic (a
// kube-proxy-like chain of services, a udp rule): the jumps are moved back
// above them once; when they come back above (an agent that insists on
// rule 1), they stay: no more restores, the status is OK, and the rules
// are found in place.
func TestRealKeepBelowHarmless(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			requireBackend(t, backend)
			ns := netnstest.New(t, "rg-below")
			v4 := "iptables-" + backend
			logs := &syncBuffer{}
			r := newRulesIn(t, ns, Options{Config: DefaultConfig(), Port: testPort, Backend: backend, Log: testLog(t, logs)})
			stop := keepIn(t, ns, r)
			ipt(t, ns, v4, "-t", "nat", "-N", "KUBE-SERVICES")
			ipt(t, ns, v4, "-t", "nat", "-A", "KUBE-SERVICES", "-d", "10.96.0.1/32", "-p", "tcp", "--dport", "443", "-j", "DNAT", "--to-destination", "10.0.0.1:6443")
			insist := func() {
				for _, c := range [][]string{
					{"-t", "nat", "PREROUTING", "-j", "KUBE-SERVICES"},
					{"-t", "nat", "OUTPUT", "-j", "KUBE-SERVICES"},
					{"-t", "filter", "FORWARD", "-p", "udp", "-j", "ACCEPT"},
				} {
					ipt(t, ns, v4, append([]string{c[0], c[1], "-I", c[2], "1"}, c[3:]...)...)
				}
			}
			insist()
			waitFor(t, 3*time.Second, "the jumps moved back above harmless rules once", func() bool { return r.Restores() > 0 })
			time.Sleep(4 * r.every)
			first := r.Restores()
			insist() // they come back above: now they stay
			time.Sleep(4 * r.every)
			if n := r.Restores(); n != first {
				t.Errorf("%d restores after harmless rules came back above the jumps (want %d, as before):\n%s", n, first, logs)
			}
			st, err := nsStatus(ns, r)
			if err != nil || !st.OK() {
				t.Errorf("status (%v):\n%s", err, st)
			}
			if !strings.Contains(st.String(), "(position 2 of 3)") {
				t.Errorf("status does not show the jump's place:\n%s", st)
			}
			if !strings.Contains(logs.String(), "leaving the jump below rules that cannot touch metadata traffic") {
				t.Errorf("not logged:\n%s", logs)
			}
			if !r.InPlace()["ipv4"] {
				t.Error("InPlace says ipv4 rules are missing")
			}
			must(t, stop())
		})
	}
}

// nsStatus runs r.Status inside ns.
func nsStatus(ns string, r *Rules) (Status, error) {
	var st Status
	err := netnstest.Do(ns, func() error {
		var err error
		st, err = r.Status(context.Background())
		return err
	})
	return st, err
}

// nftDigest against the kernel: a rule added to one of the chains changes
// it; packets counted, or a rule in another chain, do not.
func TestRealNftDigest(t *testing.T) {
	requireBackend(t, "nft")
	ns := netnstest.New(t, "rg-digest")
	ipt(t, ns, "iptables-nft", "-t", "nat", "-A", "PREROUTING", "-p", "udp", "-j", "ACCEPT")
	ipt(t, ns, "iptables-nft", "-t", "nat", "-N", "OTHER")
	digest := func() string {
		var d string
		in(t, ns, func() error {
			var err error
			d, err = nftDigest(familyV4, "nat", []string{"PREROUTING", "OUTPUT", "MISSING"})
			return err
		})
		return d
	}
	d0 := digest()
	ipt(t, ns, "iptables-nft", "-t", "nat", "-A", "OTHER", "-j", "RETURN")
	ipt(t, ns, "iptables-nft", "-t", "nat", "-Z")
	if d := digest(); d != d0 {
		t.Error("a rule in another chain, or zeroed counters, changed the digest")
	}
	ipt(t, ns, "iptables-nft", "-t", "nat", "-I", "OUTPUT", "1", "-p", "tcp", "-j", "RETURN")
	if d := digest(); d == d0 {
		t.Error("a rule inserted into OUTPUT left the digest as it was")
	}
}
