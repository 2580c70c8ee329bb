package redirect

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// renderPlan prints a plan as iptables commands, one per line.
func renderPlan(f family, p params) string {
	var b strings.Builder
	for _, c := range plan(f, p) {
		fmt.Fprintf(&b, "-t %s -N %s\n", c.Table, c.Name)
		for _, r := range c.Rules {
			fmt.Fprintf(&b, "-t %s -A %s %s\n", c.Table, c.Name, r)
		}
		fmt.Fprintf(&b, "-t %s -I %s 1 %s\n", c.Table, c.Hook, c.Jump)
	}
	return b.String()
}

var goldenParams = DefaultConfig().params(8989, Mark)

const goldenV4 = `-t nat -N IMDSGUARD-OUT
-t nat -A IMDSGUARD-OUT -d 169.254.169.254/32 -p tcp --dport 80 -m mark --mark 0x1d5a -m comment --comment "imdsguard: daemon upstream traffic skips the redirect" -j RETURN
-t nat -A IMDSGUARD-OUT -d 169.254.169.254/32 -p tcp --dport 80 -m comment --comment "imdsguard: redirect local metadata traffic to the proxy" -j REDIRECT --to-ports 8989
-t nat -I OUTPUT 1 -m comment --comment "imdsguard: jump to IMDSGUARD-OUT" -j IMDSGUARD-OUT
-t nat -N IMDSGUARD-PRE
-t nat -A IMDSGUARD-PRE ! -i lo -d 169.254.169.254/32 -p tcp --dport 80 -m comment --comment "imdsguard: redirect metadata traffic from every interface but lo" -j DNAT --to-destination 169.254.254.169:8989
-t nat -I PREROUTING 1 -m comment --comment "imdsguard: jump to IMDSGUARD-PRE" -j IMDSGUARD-PRE
-t filter -N IMDSGUARD-IN
-t filter -A IMDSGUARD-IN -i lo -p tcp --dport 8989 -m comment --comment "imdsguard: local callers reach the proxy port" -j RETURN
-t filter -A IMDSGUARD-IN -p tcp --dport 8989 -m conntrack --ctstate DNAT --ctorigdst 169.254.169.254 -m comment --comment "imdsguard: redirected metadata traffic reaches the proxy port" -j RETURN
-t filter -A IMDSGUARD-IN -p tcp --dport 8989 -m comment --comment "imdsguard: nothing else reaches the proxy port" -j DROP
-t filter -I INPUT 1 -m comment --comment "imdsguard: jump to IMDSGUARD-IN" -j IMDSGUARD-IN
-t filter -N IMDSGUARD-FWD
-t filter -A IMDSGUARD-FWD -d 169.254.169.254/32 -p tcp --dport 80 -m comment --comment "imdsguard: routed metadata traffic is refused" -j REJECT --reject-with tcp-reset
-t filter -A IMDSGUARD-FWD -p tcp -m conntrack --ctstate DNAT --ctorigdst 169.254.169.254 --ctorigdstport 80 -m comment --comment "imdsguard: redirected metadata traffic is never routed" -j REJECT --reject-with tcp-reset
-t filter -I FORWARD 1 -m comment --comment "imdsguard: jump to IMDSGUARD-FWD" -j IMDSGUARD-FWD
-t filter -N IMDSGUARD-FENCE
-t filter -A IMDSGUARD-FENCE -d 169.254.169.254/32 -p tcp --dport 80 -m mark --mark 0x1d5a -m comment --comment "imdsguard: daemon upstream traffic passes" -j RETURN
-t filter -A IMDSGUARD-FENCE -d 169.254.169.254/32 -p tcp --dport 80 -m comment --comment "imdsguard: metadata traffic that escaped the redirect is refused" -j REJECT --reject-with tcp-reset
-t filter -I OUTPUT 1 -m comment --comment "imdsguard: jump to IMDSGUARD-FENCE" -j IMDSGUARD-FENCE
`

const goldenV6 = `-t nat -N IMDSGUARD-OUT
-t nat -A IMDSGUARD-OUT -d fd00:ec2::254/128 -p tcp --dport 80 -m mark --mark 0x1d5a -m comment --comment "imdsguard: daemon upstream traffic skips the redirect" -j RETURN
-t nat -A IMDSGUARD-OUT -d fd00:ec2::254/128 -p tcp --dport 80 -m comment --comment "imdsguard: redirect local metadata traffic to the proxy" -j REDIRECT --to-ports 8989
-t nat -I OUTPUT 1 -m comment --comment "imdsguard: jump to IMDSGUARD-OUT" -j IMDSGUARD-OUT
-t nat -N IMDSGUARD-PRE
-t nat -A IMDSGUARD-PRE ! -i lo -d fd00:ec2::254/128 -p tcp --dport 80 -m comment --comment "imdsguard: redirect metadata traffic from every interface but lo" -j DNAT --to-destination [fd69:6d64:7367::254]:8989
-t nat -I PREROUTING 1 -m comment --comment "imdsguard: jump to IMDSGUARD-PRE" -j IMDSGUARD-PRE
-t filter -N IMDSGUARD-IN
-t filter -A IMDSGUARD-IN -i lo -p tcp --dport 8989 -m comment --comment "imdsguard: local callers reach the proxy port" -j RETURN
-t filter -A IMDSGUARD-IN -p tcp --dport 8989 -m conntrack --ctstate DNAT --ctorigdst fd00:ec2::254 -m comment --comment "imdsguard: redirected metadata traffic reaches the proxy port" -j RETURN
-t filter -A IMDSGUARD-IN -p tcp --dport 8989 -m comment --comment "imdsguard: nothing else reaches the proxy port" -j DROP
-t filter -I INPUT 1 -m comment --comment "imdsguard: jump to IMDSGUARD-IN" -j IMDSGUARD-IN
-t filter -N IMDSGUARD-FWD
-t filter -A IMDSGUARD-FWD -d fd00:ec2::254/128 -p tcp --dport 80 -m comment --comment "imdsguard: routed metadata traffic is refused" -j REJECT --reject-with tcp-reset
-t filter -A IMDSGUARD-FWD -p tcp -m conntrack --ctstate DNAT --ctorigdst fd00:ec2::254 --ctorigdstport 80 -m comment --comment "imdsguard: redirected metadata traffic is never routed" -j REJECT --reject-with tcp-reset
-t filter -I FORWARD 1 -m comment --comment "imdsguard: jump to IMDSGUARD-FWD" -j IMDSGUARD-FWD
-t filter -N IMDSGUARD-FENCE
-t filter -A IMDSGUARD-FENCE -d fd00:ec2::254/128 -p tcp --dport 80 -m mark --mark 0x1d5a -m comment --comment "imdsguard: daemon upstream traffic passes" -j RETURN
-t filter -A IMDSGUARD-FENCE -d fd00:ec2::254/128 -p tcp --dport 80 -m comment --comment "imdsguard: metadata traffic that escaped the redirect is refused" -j REJECT --reject-with tcp-reset
-t filter -I OUTPUT 1 -m comment --comment "imdsguard: jump to IMDSGUARD-FENCE" -j IMDSGUARD-FENCE
`

func TestPlanGolden(t *testing.T) {
	for _, tc := range []struct {
		fam  family
		want string
	}{{familyV4, goldenV4}, {familyV6, goldenV6}} {
		t.Run(tc.fam.Name, func(t *testing.T) {
			if got := renderPlan(tc.fam, goldenParams); got != tc.want {
				t.Errorf("plan differs from golden:\n got:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

func TestPlanNoInterfaces(t *testing.T) {
	p := goldenParams
	p.Interfaces = nil
	for _, c := range plan(familyV4, p) {
		if c.Name == ChainPre && len(c.Rules) != 0 {
			t.Errorf("IMDSGUARD-PRE without interfaces has rules: %v", c.Rules)
		}
	}
}

// Every rule is tagged, and comments are unique within a chain (Install and
// Status find a rule's place by its comment).
func TestRulesTaggedAndUnique(t *testing.T) {
	for _, f := range []family{familyV4, familyV6} {
		for _, c := range plan(f, goldenParams) {
			var seen []string
			for _, r := range append(slices.Clone(c.Rules), c.Jump) {
				spec := r.Spec()
				i := slices.Index(spec, "--comment")
				if i < 0 || !strings.HasPrefix(spec[i+1], commentPrefix) {
					t.Errorf("%s %s: rule without imdsguard comment: %v", f.Name, c.Name, spec)
				}
				if slices.Contains(seen, r.Comment) {
					t.Errorf("%s %s: comment %q twice", f.Name, c.Name, r.Comment)
				}
				seen = append(seen, r.Comment)
			}
		}
	}
}

// No rule of a chain PREROUTING reaches may use -m owner (the kernel
// refuses it there); the mark does the owner's job.
func TestNoOwnerMatch(t *testing.T) {
	for _, f := range []family{familyV4, familyV6} {
		for _, c := range plan(f, goldenParams) {
			for _, r := range c.Rules {
				if slices.Contains(r.Spec(), "owner") {
					t.Errorf("%s %s uses -m owner: %s", f.Name, c.Name, r)
				}
			}
		}
	}
}

func TestTables(t *testing.T) {
	if got := tables(); !slices.Equal(got, []string{"nat", "filter"}) {
		t.Errorf("tables() = %v", got)
	}
}

func TestChooseBackend(t *testing.T) {
	for _, tc := range []struct {
		name                   string
		nft, nftOurs, leg, leo int
		want                   string
	}{
		{"empty host", 0, 0, 0, 0, "nft"},
		{"docker on legacy", 3, 0, 40, 0, "legacy"},
		{"docker on nft", 40, 0, 0, 0, "nft"},
		{"ours in legacy wins over more nft rules", 50, 0, 10, 4, "legacy"},
		{"ours in nft wins", 0, 4, 30, 0, "nft"},
		{"no legacy tools", 0, 0, -1, 0, "nft"},
		{"no nft tools", -1, 0, 0, 0, "legacy"},
		{"tie", 5, 0, 5, 0, "nft"},
	} {
		if got := chooseBackend(tc.nft, tc.nftOurs, tc.leg, tc.leo); got != tc.want {
			t.Errorf("%s: chooseBackend = %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestCountRules(t *testing.T) {
	save := "# Generated\n*nat\n:OUTPUT ACCEPT [0:0]\n:IMDSGUARD-OUT - [0:0]\n-A OUTPUT -j IMDSGUARD-OUT\n-A IMDSGUARD-OUT -j RETURN\nCOMMIT\n"
	if r, o := countRules(save); r != 2 || o != 1 {
		t.Errorf("countRules = %d, %d; want 2, 1", r, o)
	}
}

// With a local redirect port, IMDSGUARD-IN lets each named container
// interface reach it and drops everything else; the rest of the plan is
// the same.
func TestPlanLocalRedirect(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ContainerInterfaces = []string{"lxc+", "cilium_host"}
	p := cfg.params(8989, Mark).withLocalRedirect(8990)
	want := []string{
		`-i lxc+ -p tcp --dport 8990 -m comment --comment "imdsguard: pods behind lxc+ reach the local redirect port" -j RETURN`,
		`-i cilium_host -p tcp --dport 8990 -m comment --comment "imdsguard: pods behind cilium_host reach the local redirect port" -j RETURN`,
		`-p tcp --dport 8990 -m comment --comment "imdsguard: nothing else reaches the local redirect port" -j DROP`,
	}
	for _, f := range []family{familyV4, familyV6} {
		without := plan(f, cfg.params(8989, Mark))
		for i, c := range plan(f, p) {
			got := c.Rules
			if c.Name == ChainIn {
				var tail []string
				for _, r := range got[len(got)-len(want):] {
					tail = append(tail, r.String())
				}
				if !slices.Equal(tail, want) {
					t.Errorf("%s IMDSGUARD-IN ends with\n%s\nwant\n%s", f.Name, strings.Join(tail, "\n"), strings.Join(want, "\n"))
				}
				got = got[:len(got)-len(want)]
			}
			if fmt.Sprint(got) != fmt.Sprint(without[i].Rules) {
				t.Errorf("%s %s changed by the local redirect port:\n%v\nwant\n%v", f.Name, c.Name, got, without[i].Rules)
			}
		}
		for _, c := range plan(f, p) {
			var seen []string
			for _, r := range c.Rules {
				if slices.Contains(seen, r.Comment) {
					t.Errorf("%s %s: comment %q twice", f.Name, c.Name, r.Comment)
				}
				seen = append(seen, r.Comment)
			}
		}
	}
}

// New refuses a local redirect port its filter could not close to the
// network, or one that is the proxy port.
func TestNewRejectsLocalRedirect(t *testing.T) {
	named := DefaultConfig()
	named.ContainerInterfaces = []string{"lxc+"}
	for _, o := range []Options{
		{Config: DefaultConfig(), Port: 8989, LocalRedirectPort: 8990}, // "+"
		{Config: named, Port: 8989, LocalRedirectPort: 8989},
		{Config: named, Port: 8989, LocalRedirectPort: 70000},
	} {
		if err := checkLocalRedirect(o); err == nil {
			t.Errorf("local redirect port %d with %v accepted", o.LocalRedirectPort, o.Config.ContainerInterfaces)
		} else {
			t.Logf("%v", err)
		}
	}
	if err := checkLocalRedirect(Options{Config: named, Port: 8989, LocalRedirectPort: 8990}); err != nil {
		t.Errorf("named interfaces refused: %v", err)
	}
}
