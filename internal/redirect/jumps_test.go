package redirect

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
)

// Unit tests of the jumps' position (against the fake kernel): each jump is
// the first rule of its hook, and stays first when others insert theirs at
// the top (kube-proxy, Calico, dockerd: kube2iam #21).

func TestInstallMovesJumpFirst(t *testing.T) {
	for _, mode := range []string{"nft", "legacy"} {
		t.Run(mode, func(t *testing.T) {
			h := newFakeHost(t, mode, DefaultConfig())
			h.foreign()
			must(t, h.r.Install(context.Background()))
			h.v4.insertForeign("nat", "PREROUTING", "-j KUBE-SERVICES-STANDIN")
			h.v4.insertForeign("filter", "FORWARD", "-j DOCKER-USER-STANDIN")
			st, err := h.r.Status(context.Background())
			must(t, err)
			var bad []string
			for _, it := range st.Missing() {
				bad = append(bad, it.state()+" "+it.Family+" "+it.Where())
				if it.Position != 2 || it.Of != 2+map[string]int{"PREROUTING": 0, "FORWARD": 1}[it.Chain] {
					t.Errorf("%s: position %d of %d", it.Where(), it.Position, it.Of)
				}
			}
			if want := []string{"NOTFIRST ipv4 nat/PREROUTING", "NOTFIRST ipv4 filter/FORWARD"}; !slices.Equal(bad, want) {
				t.Errorf("status sees %v, want %v:\n%s", bad, want, st)
			}
			if s := st.String(); !strings.Contains(s, "NOTFIRST ipv4 nat/PREROUTING") || !strings.Contains(s, "(position 2 of 2)") {
				t.Errorf("String():\n%s", s)
			}
			h.resetCalls()
			must(t, h.r.Install(context.Background()))
			if w := h.writes(); !slices.Equal(w, []string{"Apply nat/", "Apply filter/"}) {
				t.Errorf("install wrote %v; want one transaction per table", w)
			}
			for _, c := range plan(familyV4, h.r.params) {
				listing, err := h.v4.List(c.Table, c.Hook)
				if pos := jumpIndex(ruleLines(listing), c) + 1; err != nil || pos != 1 {
					t.Errorf("%s/%s: jump at %d (%v)", c.Table, c.Hook, pos, err)
				}
			}
			if !strings.Contains(h.v4.save(), "-A PREROUTING -j KUBE-SERVICES-STANDIN") {
				t.Error("the foreign rule is gone")
			}
		})
	}
}

// Keep notices a jump that is there but no longer first and moves it back.
func TestKeepKeepsJumpFirst(t *testing.T) {
	h := newFakeHost(t, "legacy", DefaultConfig())
	h.foreign()
	stop := runKeep(t, h.r)
	waitFor(t, 2*time.Second, "initial install", func() bool { st, _ := h.r.Status(context.Background()); return st.OK() })
	h.v6.insertForeign("nat", "OUTPUT", "-j cali-OUTPUT-STANDIN")
	took := waitFor(t, 2*time.Second, "jump moved back", func() bool { return h.r.Restores() == 1 })
	t.Logf("moved back after %s", took)
	must(t, stop())
	out := h.v6.save()
	first := strings.Index(out, "-A OUTPUT -m comment --comment \"imdsguard: jump to IMDSGUARD-OUT\"")
	if other := strings.Index(out, "-A OUTPUT -j cali-OUTPUT-STANDIN"); first < 0 || other < first {
		t.Errorf("jump not first again:\n%s", out)
	}
	if !strings.Contains(h.log.String(), "nat/OUTPUT jump moved to position 1 (was 2, below -A OUTPUT -j cali-OUTPUT-STANDIN") {
		t.Errorf("move not logged:\n%s", h.log)
	}
}
