package redirect

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Unit tests of Install, Remove, Status and Keep against the fake kernel
// (fakeIPT in fake_test.go, both families, plus fake links). They need no
// privileges and run on any OS; install_linux_test.go and
// keep_linux_test.go prove them again against the real kernel.

// syncBuffer is a log sink safe for Keep's goroutine and the test's.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Reset()
}

// fakeLinks stands in for netlink.
type fakeLinks struct {
	mu    sync.Mutex
	links []Link
	ch    chan struct{}
}

func newFakeLinks(links ...Link) *fakeLinks {
	return &fakeLinks{links: links, ch: make(chan struct{}, 1)}
}

func (f *fakeLinks) open(watch bool) (linkWatch, error) { return &fakeWatch{f: f, watch: watch}, nil }

// set replaces the links and signals a change.
func (f *fakeLinks) set(links ...Link) {
	f.mu.Lock()
	f.links = links
	f.mu.Unlock()
	select {
	case f.ch <- struct{}{}:
	default:
	}
}

type fakeWatch struct {
	f     *fakeLinks
	watch bool
}

func (w *fakeWatch) Links() ([]Link, error) {
	w.f.mu.Lock()
	defer w.f.mu.Unlock()
	return slices.Clone(w.f.links), nil
}

func (w *fakeWatch) Changed() <-chan struct{} {
	if !w.watch {
		return nil
	}
	return w.f.ch
}

func (w *fakeWatch) Close() {}

// fakeHost is Rules over fake kernels for both families.
type fakeHost struct {
	r      *Rules
	v4     *fakeIPT
	v6     *fakeIPT
	links  *fakeLinks
	lo     *fakeLo
	routes map[netip.Addr]string // ip route get ADDR → the interface
	log    *syncBuffer

	mu      sync.Mutex
	flushes []string // families whose direct metadata flows were dropped, in order
}

func newFakeHost(t *testing.T, mode string, cfg Config) *fakeHost {
	t.Helper()
	h := &fakeHost{v4: newFakeIPT(mode), v6: newFakeIPT(mode), links: newFakeLinks(), lo: &fakeLo{addrs: slices.Clone(loopback)},
		routes: map[netip.Addr]string{}, log: &syncBuffer{}}
	h.r = h.rules(cfg, 8989)
	return h
}

// rules makes another Rules over the same kernels (a second process).
func (h *fakeHost) rules(cfg Config, port int) *Rules {
	return h.rulesWith(Options{Config: cfg, Port: port})
}

// rulesWith makes another Rules over the same kernels with o (its Log set
// here).
func (h *fakeHost) rulesWith(o Options) *Rules {
	fams := []familyRunner{{fam: familyV4, ipt: h.v4}, {fam: familyV6, ipt: h.v6}}
	o.Log = slog.New(slog.NewTextHandler(h.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	k := kernel{openLinks: h.links.open, lo: h.lo, openRouter: h.openRouter, flushConntrack: h.flushConntrack}
	r := newRules(o, h.v4.mode, fams, k)
	r.every = 20 * time.Millisecond
	return r
}

func (h *fakeHost) openRouter() (router, error) { return fakeRouter{h}, nil }

// fakeRouter answers route lookups from h.routes (address → interface
// name) and h.links (name ↔ index).
type fakeRouter struct{ h *fakeHost }

func (f fakeRouter) RouteTo(a netip.Addr) (int, error) {
	f.h.mu.Lock()
	name, ok := f.h.routes[a]
	f.h.mu.Unlock()
	if !ok {
		return 0, errors.New("network is unreachable")
	}
	w, _ := f.h.links.open(false)
	links, _ := w.Links()
	for _, l := range links {
		if l.Name == name {
			return l.Index, nil
		}
	}
	return 0, nil // a local address
}

func (f fakeRouter) LinkName(index int) (string, error) {
	w, _ := f.h.links.open(false)
	links, _ := w.Links()
	for _, l := range links {
		if l.Index == index {
			return l.Name, nil
		}
	}
	return "", errors.New("no such device")
}

func (fakeRouter) Close() {}

func (h *fakeHost) flushConntrack(f family) (uint, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.flushes = append(h.flushes, f.Name)
	return 0, nil
}

func (h *fakeHost) flushed() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.flushes)
}

func (h *fakeHost) save() string { return h.v4.save() + "----\n" + h.v6.save() }

// ours is every imdsguard line of both families (foreign rules left out).
func (h *fakeHost) ours() []string {
	return append(prefixAll("v4 ", ourLines(h.v4.save())), prefixAll("v6 ", ourLines(h.v6.save()))...)
}

func prefixAll(p string, ls []string) []string {
	for i := range ls {
		ls[i] = p + ls[i]
	}
	return ls
}

func (h *fakeHost) writes() []string { return append(h.v4.writes(), h.v6.writes()...) }

func (h *fakeHost) resetCalls() { h.v4.resetCalls(); h.v6.resetCalls() }

// foreign puts someone else's rules in both tables of both families, so
// the tables exist before imdsguard comes (the common real case).
func (h *fakeHost) foreign() {
	for _, f := range []*fakeIPT{h.v4, h.v6} {
		f.addForeign("nat", "POSTROUTING", "-o eth0 -j MASQUERADE")
		f.addForeign("nat", "OUTPUT", "-d 10.0.0.0/8 -j RETURN")
		f.addForeign("filter", "FORWARD", "-i docker0 -j ACCEPT")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// The whole v4 rule set after an install on a fresh nf_tables host.
const goldenFreshNftV4 = `# Generated by fake
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:IMDSGUARD-MADE-TABLE - [0:0]
:IMDSGUARD-IN - [0:0]
:IMDSGUARD-FWD - [0:0]
:IMDSGUARD-FENCE - [0:0]
-A INPUT -m comment --comment "imdsguard: jump to IMDSGUARD-IN" -j IMDSGUARD-IN
-A FORWARD -m comment --comment "imdsguard: jump to IMDSGUARD-FWD" -j IMDSGUARD-FWD
-A OUTPUT -m comment --comment "imdsguard: jump to IMDSGUARD-FENCE" -j IMDSGUARD-FENCE
-A IMDSGUARD-IN -i lo -p tcp --dport 8989 -m comment --comment "imdsguard: local callers reach the proxy port" -j RETURN
-A IMDSGUARD-IN -p tcp --dport 8989 -m conntrack --ctstate DNAT --ctorigdst 169.254.169.254 -m comment --comment "imdsguard: redirected metadata traffic reaches the proxy port" -j RETURN
-A IMDSGUARD-IN -p tcp --dport 8989 -m comment --comment "imdsguard: nothing else reaches the proxy port" -j DROP
-A IMDSGUARD-FWD -d 169.254.169.254/32 -p tcp --dport 80 -m comment --comment "imdsguard: routed metadata traffic is refused" -j REJECT --reject-with tcp-reset
-A IMDSGUARD-FWD -p tcp -m conntrack --ctstate DNAT --ctorigdst 169.254.169.254 --ctorigdstport 80 -m comment --comment "imdsguard: redirected metadata traffic is never routed" -j REJECT --reject-with tcp-reset
-A IMDSGUARD-FENCE -d 169.254.169.254/32 -p tcp --dport 80 -m mark --mark 0x1d5a -m comment --comment "imdsguard: daemon upstream traffic passes" -j RETURN
-A IMDSGUARD-FENCE -d 169.254.169.254/32 -p tcp --dport 80 -m comment --comment "imdsguard: metadata traffic that escaped the redirect is refused" -j REJECT --reject-with tcp-reset
COMMIT
# Completed
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:IMDSGUARD-MADE-TABLE - [0:0]
:IMDSGUARD-OUT - [0:0]
:IMDSGUARD-PRE - [0:0]
-A PREROUTING -m comment --comment "imdsguard: jump to IMDSGUARD-PRE" -j IMDSGUARD-PRE
-A OUTPUT -m comment --comment "imdsguard: jump to IMDSGUARD-OUT" -j IMDSGUARD-OUT
-A IMDSGUARD-OUT -d 169.254.169.254/32 -p tcp --dport 80 -m mark --mark 0x1d5a -m comment --comment "imdsguard: daemon upstream traffic skips the redirect" -j RETURN
-A IMDSGUARD-OUT -d 169.254.169.254/32 -p tcp --dport 80 -m comment --comment "imdsguard: redirect local metadata traffic to the proxy" -j REDIRECT --to-ports 8989
-A IMDSGUARD-PRE ! -i lo -d 169.254.169.254/32 -p tcp --dport 80 -m comment --comment "imdsguard: redirect metadata traffic from every interface but lo" -j DNAT --to-destination 169.254.254.169:8989
COMMIT
# Completed
`

func TestInstallGolden(t *testing.T) {
	h := newFakeHost(t, "nft", DefaultConfig())
	must(t, h.r.Install(context.Background()))
	if got := h.v4.save(); got != goldenFreshNftV4 {
		t.Errorf("rule set after install:\n%s\nwant:\n%s", got, goldenFreshNftV4)
	}
}

func TestInstallTwiceIsOnce(t *testing.T) {
	for _, mode := range []string{"nft", "legacy"} {
		for _, pre := range []bool{false, true} {
			t.Run(mode+map[bool]string{false: "/fresh", true: "/tables-exist"}[pre], func(t *testing.T) {
				h := newFakeHost(t, mode, DefaultConfig())
				if pre {
					h.foreign()
				}
				must(t, h.r.Install(context.Background()))
				once := h.save()
				h.resetCalls()
				must(t, h.r.Install(context.Background()))
				if twice := h.save(); twice != once {
					t.Errorf("second install changed the rules:\n%s\nvs\n%s", twice, once)
				}
				if w := h.writes(); len(w) > 0 {
					t.Errorf("second install wrote %v", w)
				}
				// A second process (new Rules, same kernel) agrees.
				must(t, h.rules(DefaultConfig(), 8989).Install(context.Background()))
				if again := h.save(); again != once {
					t.Errorf("install from a second Rules changed the rules")
				}
			})
		}
	}
}

// legacyEmptyTables is what a legacy kernel keeps after install+remove on a
// namespace that had no tables: they cannot be deleted, only emptied.
const legacyEmptyTables = `# Generated by fake
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
COMMIT
# Completed
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
COMMIT
# Completed
`

func TestRemoveLeavesNoTrace(t *testing.T) {
	for _, tc := range []struct {
		mode string
		pre  bool
		want func(before string) string // expected save after remove
	}{
		{"nft", false, func(b string) string { return b }},
		{"nft", true, func(b string) string { return b }},
		{"legacy", true, func(b string) string { return b }},
		{"legacy", false, func(string) string { return legacyEmptyTables + "----\n" + legacyEmptyTables }},
	} {
		t.Run(tc.mode+map[bool]string{false: "/fresh", true: "/tables-exist"}[tc.pre], func(t *testing.T) {
			h := newFakeHost(t, tc.mode, DefaultConfig())
			if tc.pre {
				h.foreign()
			}
			before := h.save()
			must(t, h.r.Install(context.Background()))
			if h.save() == before {
				t.Fatal("install changed nothing")
			}
			must(t, h.r.Remove(context.Background()))
			if got, want := h.save(), tc.want(before); got != want {
				t.Errorf("after remove:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestRemoveAbsentIsSuccess(t *testing.T) {
	for _, mode := range []string{"nft", "legacy"} {
		t.Run(mode, func(t *testing.T) {
			h := newFakeHost(t, mode, DefaultConfig())
			must(t, h.r.Remove(context.Background()))
			if w := h.writes(); len(w) > 0 {
				t.Errorf("remove of nothing wrote %v", w)
			}
			if s := h.save(); strings.Contains(s, "*") {
				t.Errorf("remove of nothing created tables:\n%s", s)
			}
			h.foreign()
			before := h.save()
			must(t, h.r.Remove(context.Background()))
			must(t, h.r.Remove(context.Background()))
			if h.save() != before {
				t.Errorf("remove of nothing changed foreign rules")
			}
		})
	}
}

// Remove is independent of the configuration: a Rules with another port,
// other interfaces and IPv6 off still removes everything an install made.
func TestRemoveAfterConfigChange(t *testing.T) {
	h := newFakeHost(t, "nft", DefaultConfig())
	h.foreign()
	before := h.save()
	must(t, h.r.Install(context.Background()))
	cfg := DefaultConfig()
	cfg.IPv6 = false
	cfg.ContainerInterfaces = []string{"eni+"}
	must(t, h.rules(cfg, 1234).Remove(context.Background()))
	if got := h.save(); got != before {
		t.Errorf("after remove with another config:\n%s\nwant:\n%s", got, before)
	}
}

// A table Install made but somebody else has used since stays; only the
// marker goes.
func TestRemoveKeepsUsedMadeTable(t *testing.T) {
	h := newFakeHost(t, "nft", DefaultConfig())
	must(t, h.r.Install(context.Background()))
	h.v4.addForeign("nat", "POSTROUTING", "-o eth0 -j MASQUERADE")
	must(t, h.r.Remove(context.Background()))
	s := h.v4.save()
	if !strings.Contains(s, "*nat") || !strings.Contains(s, "MASQUERADE") {
		t.Errorf("used table was dropped:\n%s", s)
	}
	if strings.Contains(s, "IMDSGUARD") || strings.Contains(s, "*filter") {
		t.Errorf("left over after remove:\n%s", s)
	}
}

func TestRemoveDuplicateJumps(t *testing.T) {
	h := newFakeHost(t, "legacy", DefaultConfig())
	h.foreign()
	before := h.save()
	must(t, h.r.Install(context.Background()))
	// Someone (an old script) added the same jump again.
	c := plan(familyV4, params{})[0]
	must(t, h.v4.Append(c.Table, c.Hook, c.Jump.Spec()...))
	must(t, h.r.Remove(context.Background()))
	if got := h.save(); got != before {
		t.Errorf("duplicate jump survived remove:\n%s", got)
	}
}

func TestInstallRepairsChain(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(f *fakeIPT)
	}{
		{"reordered", func(f *fakeIPT) {
			f.deleteRuleContaining("nat", ChainOut, "--mark")
			f.addForeign("nat", ChainOut, render(outRules(familyV4, goldenParams)[0].Spec()))
		}},
		{"foreign rule in our chain", func(f *fakeIPT) { f.addForeign("filter", ChainIn, "-p udp -j ACCEPT") }},
		{"rule edited", func(f *fakeIPT) {
			f.deleteRuleContaining("filter", ChainIn, "DROP")
			f.addForeign("filter", ChainIn, `-p tcp --dport 8989 -m comment --comment "imdsguard: nothing else reaches the proxy port" -j ACCEPT`)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newFakeHost(t, "nft", DefaultConfig())
			must(t, h.r.Install(context.Background()))
			want := h.save()
			tc.damage(h.v4)
			st, err := h.r.Status(context.Background())
			must(t, err)
			if st.OK() {
				t.Errorf("status does not see the damage:\n%s", st)
			}
			must(t, h.r.Install(context.Background()))
			if got := h.save(); got != want {
				t.Errorf("install did not repair:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestInstallErrorNamesChain(t *testing.T) {
	h := newFakeHost(t, "nft", DefaultConfig())
	boom := errors.New("boom")
	h.v4.fail["Apply nat/"] = boom
	err := h.r.Install(context.Background())
	if !errors.Is(err, boom) {
		t.Fatalf("error %v does not wrap the cause", err)
	}
	if want := "install ipv4 nat: boom"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
}

func TestStatus(t *testing.T) {
	for _, mode := range []string{"nft", "legacy"} {
		t.Run(mode, func(t *testing.T) {
			h := newFakeHost(t, mode, DefaultConfig())
			st, err := h.r.Status(context.Background())
			must(t, err)
			if st.OK() || len(st.Missing()) != len(st.Items) {
				t.Errorf("nothing installed, yet status says:\n%s", st)
			}
			if s := h.save(); strings.Contains(s, "*") {
				t.Errorf("status created tables:\n%s", s)
			}
			must(t, h.r.Install(context.Background()))
			h.resetCalls()
			st, err = h.r.Status(context.Background())
			must(t, err)
			if !st.OK() {
				t.Errorf("after install:\n%s", st)
			}
			if w := h.writes(); len(w) > 0 {
				t.Errorf("status wrote %v", w)
			}
			// per family: chain, rules, no-foreign, jump for 5 chains holding
			// 2+1+3+2+2 rules, and the landing address.
			if n := len(st.Items); n != 2*(5*3+2+1+3+2+2+1) {
				t.Errorf("status has %d items", n)
			}
			h.v6.flushChain("nat", ChainPre)
			h.v4.deleteRuleContaining("filter", "FORWARD", "IMDSGUARD-FWD")
			st, err = h.r.Status(context.Background())
			must(t, err)
			var missing []string
			for _, it := range st.Missing() {
				missing = append(missing, it.Family+" "+it.Table+"/"+it.Chain+" "+it.What)
			}
			want := []string{
				`ipv6 nat/IMDSGUARD-PRE rule 1: ! -i lo -d fd00:ec2::254/128 -p tcp --dport 80 -m comment --comment "imdsguard: redirect metadata traffic from every interface but lo" -j DNAT --to-destination [fd69:6d64:7367::254]:8989`,
				`ipv6 nat/IMDSGUARD-PRE no foreign rules`,
				`ipv4 filter/FORWARD -m comment --comment "imdsguard: jump to IMDSGUARD-FWD" -j IMDSGUARD-FWD`,
			}
			slices.Sort(missing)
			slices.Sort(want)
			if !slices.Equal(missing, want) {
				t.Errorf("missing:\n%s\nwant:\n%s", strings.Join(missing, "\n"), strings.Join(want, "\n"))
			}
			if s := st.String(); !strings.Contains(s, "3 of 52 pieces missing or out of place") || !strings.Contains(s, "MISSING  ipv4 filter/FORWARD") {
				t.Errorf("String():\n%s", s)
			}
		})
	}
}

// runKeep runs Keep until the returned stop is called; stop returns Keep's error.
func runKeep(t *testing.T, r *Rules) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Keep(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() { cancel(); err = <-done })
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

// waitFor polls cond for up to d and returns how long it took.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

func TestKeepRestores(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mode   string
		damage func(h *fakeHost)
	}{
		{"nat table flushed", "nft", func(h *fakeHost) { h.v4.flush("nat") }},
		{"filter table flushed v6", "legacy", func(h *fakeHost) { h.v6.flush("filter") }},
		{"own chain flushed", "nft", func(h *fakeHost) { h.v4.flushChain("nat", ChainOut) }},
		{"jump deleted", "legacy", func(h *fakeHost) { h.v4.deleteRuleContaining("nat", "PREROUTING", ChainPre) }},
		{"one rule deleted", "nft", func(h *fakeHost) { h.v6.deleteRuleContaining("filter", ChainIn, "DROP") }},
		{"table dropped", "nft", func(h *fakeHost) { must(t, h.v4.DropTable("nat")) }},
		{"rule inserted before a jump", "legacy", func(h *fakeHost) { h.v4.insertForeign("filter", "INPUT", "-j SITE-INPUT") }},
		{"landing address deleted", "nft", func(h *fakeHost) { h.lo.del(DefaultLandingIPv4) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newFakeHost(t, tc.mode, DefaultConfig())
			h.foreign()
			stop := runKeep(t, h.r)
			waitFor(t, 2*time.Second, "initial install", func() bool { st, _ := h.r.Status(context.Background()); return st.OK() })
			want := h.ours()
			tc.damage(h)
			took := waitFor(t, 2*time.Second, "restore", func() bool { return h.r.Restores() == 1 })
			t.Logf("restored after %s", took)
			must(t, stop())
			got := h.ours()
			if tc.name == "table dropped" {
				// Restored into a table Keep had to create: it carries the marker.
				got = slices.DeleteFunc(got, func(l string) bool { return strings.Contains(l, ChainMadeTable) })
			}
			if !slices.Equal(got, want) {
				t.Errorf("after restore:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if !strings.Contains(h.log.String(), "restored rules deleted from outside") {
				t.Errorf("restore not logged:\n%s", h.log)
			}
		})
	}
}

// A jump deleted from outside between Install's writes and its reading of
// the reference must not become the reference: the next check restores it.
func TestKeepRaceAfterInstall(t *testing.T) {
	h := newFakeHost(t, "nft", DefaultConfig())
	h.v4.beforeStamp = func(n int) {
		if n == 1 { // Install: the reference's reading (nothing to verify before the writes)
			h.v4.deleteRuleContaining("nat", "OUTPUT", "-j "+ChainOut)
		}
	}
	must(t, h.r.Install(context.Background()))
	if _, ok := h.r.snap["ipv4"]; ok {
		t.Fatal("an incomplete rule set became Keep's reference")
	}
	h.r.check()
	if h.r.Restores() != 1 || !strings.Contains(h.v4.save(), `-A OUTPUT -m comment --comment "imdsguard: jump to IMDSGUARD-OUT"`) {
		t.Errorf("jump not restored (restores=%d):\n%s", h.r.Restores(), h.v4.save())
	}
	if _, ok := h.r.snap["ipv4"]; !ok {
		t.Error("no reference after the restore")
	}
}

func TestReadingComplete(t *testing.T) {
	h := newFakeHost(t, "legacy", DefaultConfig())
	plans := plan(familyV4, goldenParams)
	complete := func() bool {
		rd, err := read(h.v4, plans)
		must(t, err)
		return rd.complete(plans)
	}
	if complete() {
		t.Error("empty rule set reported complete")
	}
	must(t, h.r.Install(context.Background()))
	if !complete() {
		t.Errorf("installed rule set reported incomplete:\n%s", h.v4.save())
	}
	for _, damage := range []func(){
		func() { h.v4.flushChain("filter", ChainFwd) },
		func() { h.v4.deleteRuleContaining("nat", "PREROUTING", ChainPre) },
		func() { h.v4.addForeign("nat", ChainOut, "-j RETURN") },
	} {
		must(t, h.r.Install(context.Background()))
		damage()
		if complete() {
			t.Errorf("damaged rule set reported complete:\n%s", h.v4.save())
		}
	}
}

// While nothing changes, a check costs one stamp per family: no rule is
// read, nothing written.
func TestKeepCheckIsCheap(t *testing.T) {
	h := newFakeHost(t, "nft", DefaultConfig())
	stop := runKeep(t, h.r)
	waitFor(t, 2*time.Second, "initial install", func() bool { return len(h.v4.writes()) > 0 && len(h.v6.writes()) > 0 })
	time.Sleep(50 * time.Millisecond)
	h.resetCalls()
	time.Sleep(200 * time.Millisecond)
	must(t, stop())
	for _, f := range []*fakeIPT{h.v4, h.v6} {
		calls := f.callsSnapshot()
		if len(calls) == 0 {
			t.Fatal("no checks ran")
		}
		for _, c := range calls {
			if c != "Stamp /" {
				t.Errorf("check did %q; want only one Stamp per tick", c)
			}
		}
	}
	if h.r.Restores() != 0 {
		t.Errorf("restores = %d with nothing deleted", h.r.Restores())
	}
}

func TestKeepExit(t *testing.T) {
	for _, keep := range []bool{true, false} {
		cfg := DefaultConfig()
		cfg.KeepOnExit = keep
		h := newFakeHost(t, "nft", cfg)
		h.foreign()
		before := h.save()
		stop := runKeep(t, h.r)
		waitFor(t, 2*time.Second, "install", func() bool { return strings.Contains(h.v6.save(), ChainFwd) })
		must(t, stop())
		installed := strings.Contains(h.save(), "IMDSGUARD")
		if installed != keep {
			t.Errorf("keep_on_exit=%v: rules present after exit = %v", keep, installed)
		}
		if !keep && h.save() != before {
			t.Errorf("keep_on_exit=false left a trace:\n%s", h.save())
		}
	}
}

func TestKeepFollowsLinks(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ContainerInterfaces = []string{"docker0", "veth+"}
	h := newFakeHost(t, "nft", cfg)
	eth0 := Link{Name: "eth0", Index: 2, Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.5/24")}}
	docker0 := Link{Name: "docker0", Index: 3, Kind: "bridge", Addrs: []netip.Prefix{netip.MustParsePrefix("172.17.0.1/16")}}
	h.links.set(eth0, docker0)
	<-h.links.ch // no signal pending before Keep starts

	// Without Keep, Interfaces asks the kernel directly.
	if got := h.r.Interfaces(); len(got) != 1 || got[0].Name != "docker0" {
		t.Errorf("Interfaces() = %v", got)
	}
	stop := runKeep(t, h.r)
	waitFor(t, 2*time.Second, "follow", func() bool { _, f := h.r.links.get(); return f })

	veth := Link{Name: "veth1a2b", Index: 7, Kind: "veth", Addrs: []netip.Prefix{netip.MustParsePrefix("fe80::1/64")}}
	h.links.set(eth0, docker0, veth)
	waitFor(t, 2*time.Second, "veth appears", func() bool { return len(h.r.Interfaces()) == 2 })
	if got := h.r.Interfaces()[1]; !got.AddressLess() || got.String() != "veth1a2b (index 7, veth, address-less) [fe80::1/64]" {
		t.Errorf("veth: %s", got)
	}
	h.links.set(eth0, docker0)
	waitFor(t, 2*time.Second, "veth vanishes", func() bool { return len(h.r.Interfaces()) == 1 })
	must(t, stop())
	var events []string
	for _, l := range strings.Split(h.log.String(), "\n") {
		if strings.Contains(l, "msg=\"container interface") {
			msg := l[strings.Index(l, "msg="):strings.Index(l, " component=")]
			iface := strings.Fields(l[strings.Index(l, " interface="):])[0]
			events = append(events, msg+" "+iface)
		}
	}
	want := []string{
		`msg="container interface appeared" interface=docker0`,
		`msg="container interface appeared" interface=veth1a2b`,
		`msg="container interface vanished" interface=veth1a2b`,
	}
	if !slices.Equal(events, want) {
		t.Errorf("link events logged:\n%s\nwant:\n%s", strings.Join(events, "\n"), strings.Join(want, "\n"))
	}
}

// InterfaceFor names the interface the host routes a caller's address
// through, when it is a container interface: every container lands on the
// same address, so the route back tells them apart.
func TestInterfaceFor(t *testing.T) {
	routes := map[netip.Addr]string{
		netip.MustParseAddr("172.17.0.2"):      "docker0",  // a bridge's subnet route
		netip.MustParseAddr("10.0.1.5"):        "eni3a9f1", // a VPC CNI pod's /32
		netip.MustParseAddr("2001:db8:4::5"):   "cali0123", // a Calico pod's /128
		netip.MustParseAddr("10.0.0.9"):        "eth0",     // the node's subnet
		netip.MustParseAddr("169.254.254.169"): "lo",
	}
	links := []Link{{Name: "lo", Index: 1}, {Name: "eth0", Index: 2}, {Name: "docker0", Index: 3, Kind: "bridge"},
		{Name: "eni3a9f1", Index: 4, Kind: "veth"}, {Name: "cali0123", Index: 5, Kind: "veth"}}
	for _, tc := range []struct {
		patterns []string
		addr     string
		want     string
	}{
		{[]string{"+"}, "172.17.0.2", "docker0"},
		{[]string{"+"}, "10.0.1.5", "eni3a9f1"},
		{[]string{"+"}, "::ffff:10.0.1.5", "eni3a9f1"},
		{[]string{"+"}, "2001:db8:4::5", "cali0123"},
		{[]string{"+"}, "10.0.0.9", "eth0"},
		{[]string{"+"}, "169.254.254.169", ""}, // never lo
		{[]string{"+"}, "192.0.2.9", ""},       // no route
		{[]string{"docker0", "eni+"}, "10.0.1.5", "eni3a9f1"},
		{[]string{"docker0", "eni+"}, "2001:db8:4::5", ""},
		{[]string{"docker0", "eni+"}, "10.0.0.9", ""},
		{nil, "172.17.0.2", ""},
	} {
		cfg := DefaultConfig()
		cfg.ContainerInterfaces = tc.patterns
		h := newFakeHost(t, "nft", cfg)
		h.routes = routes
		h.links.set(links...)
		if got := h.r.InterfaceFor(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("%v: InterfaceFor(%s) = %q, want %q", tc.patterns, tc.addr, got, tc.want)
		}
	}
}

// "+" is every interface but lo, in the rules and in the interface list.
func TestAllButLo(t *testing.T) {
	h := newFakeHost(t, "nft", DefaultConfig())
	h.links.set(Link{Name: "lo", Index: 1}, Link{Name: "eth0", Index: 2}, Link{Name: "eni3a9f1", Index: 9, Kind: "veth"})
	var names []string
	for _, l := range h.r.Interfaces() {
		names = append(names, l.Name)
	}
	if !slices.Equal(names, []string{"eth0", "eni3a9f1"}) {
		t.Errorf("Interfaces() = %v, want every link but lo", names)
	}
	pre := plan(familyV4, h.r.params)[1]
	if len(pre.Rules) != 1 || !strings.HasPrefix(pre.Rules[0].String(), "! -i lo -d 169.254.169.254/32 ") {
		t.Errorf("IMDSGUARD-PRE for \"+\": %v", pre.Rules)
	}
	cfg := DefaultConfig()
	cfg.ContainerInterfaces = []string{"docker0", "veth+"}
	pre = plan(familyV6, cfg.params(8989, Mark))[1]
	if len(pre.Rules) != 2 || !strings.HasPrefix(pre.Rules[1].String(), "-i veth+ -d fd00:ec2::254/128 ") ||
		!strings.HasSuffix(pre.Rules[1].String(), "-j DNAT --to-destination [fd69:6d64:7367::254]:8989") {
		t.Errorf("IMDSGUARD-PRE for docker0, veth+: %v", pre.Rules)
	}
}

// While Keep follows the links InterfaceFor names an index from its cache;
// a link the cache does not hold yet (a pod's veth created a moment ago)
// is asked for.
func TestInterfaceForCache(t *testing.T) {
	h := newFakeHost(t, "nft", DefaultConfig())
	h.routes = map[netip.Addr]string{netip.MustParseAddr("10.0.1.5"): "eni-new", netip.MustParseAddr("10.0.1.6"): "eni-old"}
	h.links.set(Link{Name: "eni-old", Index: 7}, Link{Name: "eni-new", Index: 8})
	h.r.links.set([]Link{{Name: "eni-old", Index: 7}, {Name: "renamed", Index: 99}}, true)
	if got := h.r.InterfaceFor(netip.MustParseAddr("10.0.1.6")); got != "eni-old" {
		t.Errorf("cached: %q", got)
	}
	if got := h.r.InterfaceFor(netip.MustParseAddr("10.0.1.5")); got != "eni-new" {
		t.Errorf("newer than the cache: %q", got)
	}
}
