package redirect

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
)

// The proof that rules above a jump cannot touch metadata traffic: each
// line alone, against a fake whose chains hold what the jumps reach.
func TestJudgeRules(t *testing.T) {
	f := newFakeIPT("nft")
	for _, c := range []struct{ chain, rule string }{
		{"KUBE-SERVICES", "-d 10.96.0.10/32 -p udp -m udp --dport 53 -j KUBE-SVC-DNS"},
		{"KUBE-SERVICES", "-d 10.96.0.1/32 -p tcp -m tcp --dport 443 -j KUBE-SVC-API"},
		{"KUBE-SERVICES", `-m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS`},
		{"KUBE-NODEPORTS", "-p tcp -m tcp --dport 30080 -j KUBE-EXT-X"},
		{"cali-PREROUTING", "-j cali-fip-dnat"},
		{"cali-PREROUTING", "-m mark --mark 0x40000/0x40000 -j RETURN"},
		{"ACCEPTS", "-m mark --mark 0x10000/0x10000 -j ACCEPT"},
		{"EXTIP", "-d 169.254.169.254/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.0.0.9:80"},
		{"RETURNS", "-j RETURN"},
		{"LOOP", "-j LOOP"},
	} {
		f.newChainForTest("nat", c.chain)
		if c.rule != "" {
			f.addForeign("nat", c.chain, c.rule)
		}
	}
	f.newChainForTest("nat", "cali-fip-dnat")
	harmless := []string{
		"-A PREROUTING -p udp -j RETURN",
		"-A PREROUTING ! -p tcp -j ACCEPT",
		"-A PREROUTING -d 10.0.0.0/8 -j ACCEPT",
		"-A PREROUTING ! -d 169.254.169.254/32 -j ACCEPT",
		"-A PREROUTING -p tcp -m tcp --dport 443 -j DNAT --to-destination 10.0.0.1",
		"-A PREROUTING -p tcp -m multiport --dports 22,443,8000:8080 -j ACCEPT",
		"-A PREROUTING -p tcp -m tcp ! --dport 80 -j ACCEPT",
		`-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES`,
		`-A PREROUTING -m comment --comment "cali:6gwbT8clXdHdC1b1" -j cali-PREROUTING`,
		"-A PREROUTING -j LOG --log-prefix \"seen: \"",
		"-A PREROUTING -j MARK --set-xmark 0x4000/0x4000",
	}
	harmful := []string{
		"-A PREROUTING -p tcp -j RETURN",                              // RETURN from the built-in chain: its policy
		"-A PREROUTING -j ACCEPT",                                     //
		"-A PREROUTING -d 169.254.0.0/16 -p tcp -j ACCEPT",            // contains the address
		"-A PREROUTING -p tcp -m multiport --dports 80,443 -j ACCEPT", //
		"-A PREROUTING -i docker0 -j ACCEPT",                          // interfaces narrow, prove nothing
		"-A PREROUTING -j ACCEPTS",                                    // a chain with an ACCEPT that could match
		"-A PREROUTING -j EXTIP",                                      // kube-proxy with externalIPs: [169.254.169.254]
		"-A PREROUTING -g RETURNS",                                    // a goto's RETURN returns from PREROUTING
		"-A PREROUTING -j LOOP",                                       // cannot prove
		"-A PREROUTING -j MISSING",                                    // no such chain
		"-A PREROUTING -j MARK --set-xmark 0x1d5a/0xffffffff",         // the daemon's mark
		"-A PREROUTING -j CONNMARK --restore-mark",                    //
	}
	for _, l := range harmless {
		if ok, why := newJudge(f, "nat", familyV4, Mark).harmless([]string{l}, true, 0); !ok {
			t.Errorf("%s: judged harmful (%s)", l, why)
		}
	}
	for _, l := range harmful {
		if ok, _ := newJudge(f, "nat", familyV4, Mark).harmless([]string{l}, true, 0); ok {
			t.Errorf("%s: judged harmless", l)
		}
	}
	// A RETURN inside a jumped chain goes back to the caller: harmless.
	if ok, why := newJudge(f, "nat", familyV4, Mark).harmless([]string{"-A PREROUTING -j RETURNS"}, true, 0); !ok {
		t.Errorf("-j RETURNS: judged harmful (%s)", why)
	}
	// IPv6: the metadata address is fd00:ec2::254.
	if ok, _ := newJudge(f, "nat", familyV6, Mark).harmless([]string{"-A PREROUTING -d fd00:ec2::/64 -j ACCEPT"}, true, 0); ok {
		t.Error("fd00:ec2::/64 ACCEPT judged harmless for IPv6")
	}
	if ok, _ := newJudge(f, "nat", familyV6, Mark).harmless([]string{"-A PREROUTING -d fd00:1::/64 -j ACCEPT"}, true, 0); !ok {
		t.Error("fd00:1::/64 ACCEPT judged harmful for IPv6")
	}
}

func TestSplitArgs(t *testing.T) {
	got := splitArgs(`-A X -m comment --comment "a \"quoted\" b" -j Y`)
	want := []string{"-A", "X", "-m", "comment", "--comment", `a "quoted" b`, "-j", "Y"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("splitArgs = %q, want %q", got, want)
	}
}

// A competitor that keeps its jump first (Felix's ChainInsertMode
// insert). Harmless chains: Keep moves its jump back once, and when the
// competitor's jump comes back above it, leaves it second and logs the
// arrangement once. A chain that could touch
// metadata traffic: Keep moves its jump back once per competitor refresh
// and warns once for the whole episode.
func TestKeepBesideCompetitor(t *testing.T) {
	for _, tc := range []struct {
		name    string
		rule    string // in the competitor's chain
		harmful bool
	}{
		{"harmless", "-p udp -j ACCEPT", false},
		{"could match", "-m mark --mark 0x10000/0x10000 -j ACCEPT", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newFakeHost(t, "nft", DefaultConfig())
			h.v4.newChainForTest("nat", "cali-PREROUTING")
			h.v4.addForeign("nat", "cali-PREROUTING", tc.rule)
			stop := runKeep(t, h.r)
			waitFor(t, 2*time.Second, "initial install", func() bool { st, _ := h.r.Status(context.Background()); return st.OK() })
			const refreshes = 5
			for range refreshes {
				if !h.v4.topIs("nat", "PREROUTING", "-j cali-PREROUTING") {
					h.v4.deleteRuleContaining("nat", "PREROUTING", "-j cali-PREROUTING")
					h.v4.insertForeign("nat", "PREROUTING", "-j cali-PREROUTING")
				}
				time.Sleep(3 * h.r.every)
			}
			must(t, stop())
			n := h.r.Restores()
			warns := strings.Count(h.log.String(), "restored rules deleted from outside")
			accepted := strings.Count(h.log.String(), "leaving the jump below rules that cannot touch metadata traffic")
			t.Logf("restores %d, warnings %d, accepted logged %d", n, warns, accepted)
			if !tc.harmful && (n != 1 || accepted != 1) {
				t.Errorf("harmless competitor: %d restores (want 1: the first time), accepted logged %d times (want 1):\n%s", n, accepted, h.log)
			}
			if tc.harmful && (n != refreshes || warns != 1) {
				t.Errorf("competitor that could match: %d restores (want %d, one per refresh), %d warnings (want 1):\n%s", n, refreshes, warns, h.log)
			}
		})
	}
}

// Health: InPlace after an install, the fence's refusing rule's counter.
func TestHealth(t *testing.T) {
	h := newFakeHost(t, "nft", DefaultConfig())
	must(t, h.r.Install(context.Background()))
	h.v4.packets["filter/"+ChainFence] = 3
	got := h.r.Health()
	if len(got) != 2 || !got[0].InPlace || !got[0].FenceKnown || got[0].FenceRejects != 3 || got[1].Family != "ipv6" {
		t.Errorf("Health = %+v", got)
	}
}

// chainsInSave: the chains asked for, declared ones only, with their
// rules; an empty chain is there with no lines.
func TestChainsInSave(t *testing.T) {
	save := "# x\n*nat\n:PREROUTING ACCEPT [0:0]\n:IMDSGUARD-PRE - [0:0]\n:EMPTY - [0:0]\n" +
		"-A PREROUTING -j KUBE-SERVICES\n-A IMDSGUARD-PRE ! -i lo -j DNAT --to-destination 1.2.3.4:8989\n-A OTHER -j ACCEPT\nCOMMIT\n"
	got := chainsInSave(save, "nat", []string{"PREROUTING", "IMDSGUARD-PRE", "EMPTY", "MISSING"})
	if len(got) != 3 || len(got["EMPTY"]) != 0 || got["PREROUTING"][0] != "-A PREROUTING -j KUBE-SERVICES" ||
		got["IMDSGUARD-PRE"][0] != "-A IMDSGUARD-PRE ! -i lo -j DNAT --to-destination 1.2.3.4:8989" {
		t.Errorf("chainsInSave = %q", got)
	}
	if _, ok := got["MISSING"]; ok {
		t.Error("an undeclared chain was returned")
	}
}

// A change elsewhere in the rule set (kube-proxy writing its services)
// moves the stamp; the digest of imdsguard's chains and hooks shows that
// none of them changed, so no chain is listed.
func TestKeepUnrelatedChangeListsNothing(t *testing.T) {
	h := newFakeHost(t, "nft", DefaultConfig())
	must(t, h.r.Install(context.Background()))
	h.r.check() // the first look after the install
	h.v4.newChainForTest("nat", "KUBE-SVC-X")
	h.v4.addForeign("nat", "KUBE-SVC-X", "-j DNAT --to-destination 10.0.0.1")
	h.resetCalls()
	h.r.check()
	for _, c := range h.v4.callsSnapshot() {
		if !strings.HasPrefix(c, "Stamp") && !strings.HasPrefix(c, "Digest") {
			t.Errorf("check did %q after a change in another chain; want only Stamp and Digest", c)
		}
	}
	if !slices.ContainsFunc(h.v4.callsSnapshot(), func(c string) bool { return strings.HasPrefix(c, "Digest") }) {
		t.Errorf("the stamp moved but no digest was taken: %v", h.v4.callsSnapshot())
	}
	// A change in a hook is read.
	h.v4.addForeign("nat", "PREROUTING", "-p udp -j ACCEPT")
	h.resetCalls()
	h.r.check()
	if !slices.ContainsFunc(h.v4.callsSnapshot(), func(c string) bool { return strings.HasPrefix(c, "List") }) {
		t.Errorf("a rule appended to PREROUTING was not read: %v", h.v4.callsSnapshot())
	}
}
