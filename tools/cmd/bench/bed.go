package main

import (
	"os"
	"os/exec"
	"path/filepath"

	"github.com/imdsguard/imdsguard/internal/netnstest"
	"github.com/imdsguard/imdsguard/tools/fakeimds"
	"github.com/imdsguard/imdsguard/tools/testbed"
)

// bed is everything measured, inside one network namespace of its own:
// fakeimds and every target on that namespace's lo, wrk there too, so no
// socket of the benchmark touches the machine's own loopback.
type bed struct {
	e       *testbed.Env
	ns      string
	wrk     string // wrk's path
	lua     string // wrkLua's path
	fake    *testbed.FakeIMDS
	targets []*target
	path    string // what every request asks
	// putsBefore is fakeimds's token PUT count once the direct token was
	// made: every later PUT is an imdsguard's.
	putsBefore int64
	guards     int64 // imdsguard daemons started
}

// newBed makes the namespace, starts fakeimds and every target of the
// plan, gets their tokens and checks that each answers o.Path as fakeimds
// does.
func newBed(t testbed.TB, o options, tools toolPaths) *bed {
	t.Helper()
	e := testbed.New(t)
	e.RequireBins("fakeimds")
	b := &bed{e: e, ns: netnstest.New(t, "igbench"), wrk: tools.Wrk, path: o.Path, targets: planTargets(o.GuardB != "")}
	b.lua = e.WriteFile("report.lua", wrkLua)
	b.fake = e.StartFakeIMDSIn(b.ns, testbed.HostPort("127.0.0.1", fakePort))
	for _, tg := range b.targets {
		tg.ClientNS, tg.Upstream = b.ns, b.fake
	}
	direct := b.targets[0]
	direct.Proc = b.fake.Proc
	direct.Header = "X-aws-ec2-metadata-token: " + putToken(t, b.ns, direct.Addr(), "fakeimds")
	b.putsBefore = readCounts(t, "fakeimds", b.fake, 0, 0).Puts
	for _, tg := range b.targets[1:] {
		b.start(tg, o, tools)
	}
	preflight(t, b.targets, o.Path)
	return b
}

// start starts the server of tg.
func (b *bed) start(tg *target, o options, tools toolPaths) {
	switch tg.Kind {
	case kindNginx, kindNginxCache:
		dir := filepath.Join(b.e.Dir, "nginx-"+tg.ID)
		tg.Proc = startNginx(b.e.T, tools.Nginx, b.ns, dir, tg, b.fake.Addr)
		tg.Header = b.targets[0].Header // nginx forwards the fakeimds token
	case kindGuard, kindGuardCache:
		bin := o.GuardA
		if tg.Build == "B" {
			bin = o.GuardB
		}
		tg.Proc = startGuard(b.e, bin, b.ns, tg, b.fake.URL)
		b.guards++
	}
}

// preflight checks that every target answers path with 200 and the body
// the first one, fakeimds itself, gives (fakeimds requires its own tokens,
// so a 200 for an imdsguard token can only come through imdsguard).
func preflight(t testbed.TB, targets []*target, path string) {
	t.Helper()
	var want string
	for i, tg := range targets {
		r, err := testbed.RawRequestIn(tg.ClientNS, tg.Addr(), "GET", path, []string{tg.Header})
		if err != nil {
			t.Fatalf("pre-flight of %s: %v", tg.Label(), err)
		}
		if r.Status != 200 {
			t.Fatalf("pre-flight of %s: GET %s answered %s: %q", tg.Label(), path, r.StatusLine, tail(string(r.Body), 300))
		}
		if i == 0 {
			want = string(r.Body)
		} else if string(r.Body) != want {
			t.Fatalf("pre-flight of %s: body %q, %s answers %q", tg.Label(), tail(string(r.Body), 300), targets[0].Label(), want)
		}
	}
	if path == "/latest/meta-data/instance-id" && want != fakeimds.InstanceID {
		t.Fatalf("pre-flight: fakeimds answers %q for the instance id, want %q", want, fakeimds.InstanceID)
	}
}

// toolPaths are the programs the bench runs, found before anything starts.
type toolPaths struct {
	Wrk, Nginx string
}

// findTools looks wrk and nginx up by their Debian paths first (a copy
// elsewhere on PATH may shadow them), then on PATH.
func findTools(t testbed.TB) toolPaths {
	t.Helper()
	find := func(name, debian string) string {
		if _, err := os.Stat(debian); err == nil {
			return debian
		}
		p, err := exec.LookPath(name)
		if err != nil {
			t.Fatalf("%s not found: scripts/install-test-deps.sh installs it (apt-get install wrk nginx-light)", name)
		}
		return p
	}
	return toolPaths{Wrk: find("wrk", "/usr/bin/wrk"), Nginx: find("nginx", "/usr/sbin/nginx")}
}

// upstream reads fakeimds's counts for the checks, once the runs are over.
func (b *bed) upstream(t testbed.TB) upstreamCounts {
	t.Helper()
	return readCounts(t, "fakeimds", b.fake, b.putsBefore, b.guards)
}

// readCounts reads fake's counts; putsBefore are the PUTs that were not
// an imdsguard's, guards the daemons in front of it.
func readCounts(t testbed.TB, name string, fake *testbed.FakeIMDS, putsBefore, guards int64) upstreamCounts {
	t.Helper()
	s, err := fake.Stats()
	if err != nil {
		t.Fatalf("counts of %s: %v", name, err)
	}
	return upstreamCounts{Name: name, Puts: s.TokenPuts - putsBefore, Guards: guards, Unauthorized: s.Unauthorized}
}
