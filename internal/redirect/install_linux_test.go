package redirect

import (
	"context"
	"strings"
	"testing"

	"github.com/imdsguard/imdsguard/internal/netnstest"
)

// Privileged: install, idempotence, status and remove against the real
// kernel, both backends, each in its own namespace.

// foreignRules gives ns someone else's rules in nat and filter of both
// families (the common real case: docker or a firewall was there first).
func foreignRules(t *testing.T, ns, backend string) {
	for _, tool := range []string{"iptables-" + backend, "ip6tables-" + backend} {
		ipt(t, ns, tool, "-t", "nat", "-A", "POSTROUTING", "-o", "lo", "-j", "RETURN")
		ipt(t, ns, tool, "-t", "nat", "-A", "OUTPUT", "-p", "udp", "-j", "RETURN")
		ipt(t, ns, tool, "-t", "filter", "-A", "FORWARD", "-p", "udp", "-j", "ACCEPT")
		ipt(t, ns, tool, "-t", "filter", "-A", "INPUT", "-p", "udp", "--dport", "53", "-j", "ACCEPT")
	}
}

func TestRealInstallRemove(t *testing.T) {
	for _, backend := range backends {
		for _, pre := range []bool{true, false} {
			name := backend + map[bool]string{true: "/tables-exist", false: "/fresh-namespace"}[pre]
			t.Run(name, func(t *testing.T) {
				requireBackend(t, backend)
				ns := netnstest.New(t, "rg-inst")
				if pre {
					foreignRules(t, ns, backend)
				}
				before := saveAll(t, ns, backend)
				loBefore := netnstest.Run(t, "ip", "-n", ns, "addr", "show", "dev", "lo")
				nftBefore := nftRuleset(t, ns)
				otherBefore := saveAll(t, ns, otherBackend(backend))
				logs := &syncBuffer{}
				r := newRulesIn(t, ns, Options{Config: DefaultConfig(), Port: 8989, Backend: backend, Log: testLog(t, logs)})
				ctx := context.Background()

				in(t, ns, func() error { return r.Install(ctx) })
				once := saveAll(t, ns, backend)
				t.Logf("after install:\n%s", once)
				installs := strings.Count(logs.String(), "installed rules")
				in(t, ns, func() error { return r.Install(ctx) })
				if twice := saveAll(t, ns, backend); twice != once {
					t.Errorf("second install changed the rules:\n%s", twice)
				}
				if n := strings.Count(logs.String(), "installed rules"); n != installs {
					t.Errorf("second install rewrote rules (it found them not current)")
				}
				var st Status
				in(t, ns, func() (err error) { st, err = r.Status(ctx); return err })
				if !st.OK() {
					t.Errorf("status after install:\n%s", st)
				}
				t.Logf("status:\n%s", st)

				lo := netnstest.Run(t, "ip", "-n", ns, "addr", "show", "dev", "lo")
				if !strings.Contains(lo, "169.254.254.169/32 scope host lo:imdsguard") || !strings.Contains(lo, "fd69:6d64:7367::254/128 scope global nodad deprecated") {
					t.Errorf("lo after install:\n%s", lo)
				}
				in(t, ns, func() error { return r.Remove(ctx) })
				after := saveAll(t, ns, backend)
				checkRemoved(t, backend, pre, before, after)
				if lo := netnstest.Run(t, "ip", "-n", ns, "addr", "show", "dev", "lo"); lo != loBefore {
					t.Errorf("lo after remove:\n%s\nbefore install:\n%s", lo, loBefore)
				}
				if nftAfter := nftRuleset(t, ns); nftAfter != nftBefore {
					t.Logf("note: `nft list ruleset` differs (iptables-save does not):\nbefore:\n%s\nafter:\n%s", nftBefore, nftAfter)
				}
				// The other backend's tables stay untouched (its save may now
				// warn that tables of this backend exist: that is not a change).
				if o := saveAll(t, ns, otherBackend(backend)); noWarnings(o) != noWarnings(otherBefore) {
					t.Errorf("the %s backend was touched (backends mixed):\n%s", otherBackend(backend), o)
				}
				in(t, ns, func() error { return r.Remove(ctx) }) // absent: success
				in(t, ns, func() (err error) { st, err = r.Status(ctx); return err })
				if len(st.Missing()) != len(st.Items) {
					t.Errorf("status after remove:\n%s", st)
				}
				if again := saveAll(t, ns, backend); again != after {
					t.Errorf("second remove or status changed the rules:\n%s", again)
				}
			})
		}
	}
}

// checkRemoved compares iptables-save before install and after remove:
// byte-identical, except for legacy tables in a fresh namespace, which
// install instantiated and nothing can delete (they stay empty, policy
// ACCEPT, until the namespace goes).
func checkRemoved(t *testing.T, backend string, pre bool, before, after string) {
	t.Helper()
	if backend == "legacy" && !pre {
		if strings.Contains(after, "IMDSGUARD") || strings.Contains(after, "\n-A ") {
			t.Errorf("rules left after remove:\n%s", after)
		}
		t.Logf("legacy, fresh namespace: before install\n%s\nafter remove (empty tables remain)\n%s", before, after)
		return
	}
	if after != before {
		t.Errorf("iptables-save after remove differs from before install:\nbefore:\n%s\nafter:\n%s", before, after)
		return
	}
	t.Logf("iptables-save/ip6tables-save after remove byte-identical to before install (%d bytes)", len(after))
}

// nftRuleset is `nft list ruleset` in ns, "" when nft is not installed.
func nftRuleset(t *testing.T, ns string) string {
	if _, err := findTool("nft"); err != nil {
		return ""
	}
	return ipt(t, ns, "nft", "list", "ruleset")
}

func noWarnings(save string) string {
	var out []string
	for _, l := range strings.Split(save, "\n") {
		if !strings.HasPrefix(l, "# Warning:") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestRealDetectBackend(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, ns string)
		want  string
	}{
		{"fresh namespace", func(*testing.T, string) {}, "nft"},
		{"legacy rules present", func(t *testing.T, ns string) { foreignRules(t, ns, "legacy") }, "legacy"},
		{"nft rules present", func(t *testing.T, ns string) { foreignRules(t, ns, "nft") }, "nft"},
		{"imdsguard in legacy, more nft rules", func(t *testing.T, ns string) {
			foreignRules(t, ns, "nft")
			ipt(t, ns, "iptables-legacy", "-t", "nat", "-N", ChainOut)
		}, "legacy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			requireBackend(t, "nft")
			requireBackend(t, "legacy")
			ns := netnstest.New(t, "rg-det")
			tc.setup(t, ns)
			r := newRulesIn(t, ns, Options{Config: DefaultConfig(), Port: 8989, Log: testLog(t, &syncBuffer{})})
			if r.Backend() != tc.want {
				t.Errorf("detected %s, want %s", r.Backend(), tc.want)
			}
		})
	}
}

func TestNewRejects(t *testing.T) {
	for _, o := range []Options{
		{Config: DefaultConfig(), Port: 0},
		{Config: DefaultConfig(), Port: 70000},
		{Config: Config{ContainerInterfaces: []string{"eth0/1"}}, Port: 8989},
		{Config: DefaultConfig(), Port: 8989, Backend: "iptables"},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		} else {
			t.Logf("New(port %d, backend %q): %v", o.Port, o.Backend, err)
		}
	}
}

// A host with IPv6 off on lo (net.ipv6.conf.lo.disable_ipv6=1: the kernel
// refuses an IPv6 address there) still installs: only the IPv6 landing
// address is left out, and status says so.
func TestRealInstallIPv6OffOnLo(t *testing.T) {
	requireBackend(t, "nft")
	ns := netnstest.New(t, "rg-nov6")
	sysctl(t, ns, "net.ipv6.conf.lo.disable_ipv6", "1")
	r := newRulesIn(t, ns, Options{Config: DefaultConfig(), Port: 8989, Backend: "nft", Log: testLog(t, &syncBuffer{})})
	in(t, ns, func() error { return r.Install(context.Background()) })
	var st Status
	in(t, ns, func() (err error) { st, err = r.Status(context.Background()); return err })
	if !st.OK() || !strings.Contains(st.String(), "IPv6 is off on lo") {
		t.Errorf("status:\n%s", st)
	}
	in(t, ns, func() error { return r.Remove(context.Background()) })
}
