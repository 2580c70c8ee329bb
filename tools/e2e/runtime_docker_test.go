package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/imdsguard/imdsguard/tools/testbed"
)

// dockerBench is a Host with imdsguard (started first, as at boot) and then
// a dockerd in its host namespace, the client image imported, and a counter
// of metadata traffic routed past imdsguard.
type dockerBench struct {
	e    *testbed.Env
	h    *testbed.Host
	g    *testbed.Guard
	d    *testbed.Dockerd
	past func() int
}

func newDockerBench(t *testing.T) *dockerBench {
	t.Helper()
	e := testbed.New(t)
	e.RequireBins("aemm", "imdsguard", "imdsclient-static")
	h := e.NewHost(testbed.HostOptions{})
	g := h.StartGuard(testbed.HostGuardConfig{})
	start := time.Now()
	d := e.StartDockerd(h.HostNS)
	up := time.Since(start)
	d.Import(e.ClientImage(), clientImage)
	t.Logf("dockerd %s answering after %v; client image imported after %v", d.String(), up.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	return &dockerBench{e: e, h: h, g: g, d: d, past: forwardCounter(t, h)}
}

// runApp starts a long-running container from the client image with opts
// and returns its id, logging how long `docker run -d` took and the cgroup
// the machine gives its process (what imdsguard reads).
func (b *dockerBench) runApp(t *testing.T, opts ...string) string {
	t.Helper()
	start := time.Now()
	id := b.d.RunDetached(append(opts, clientImage, "sleep", "3600")...)
	pid := b.d.MustDocker("inspect", "-f", "{{.State.Pid}}", id)
	cg, err := os.ReadFile("/proc/" + pid + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("container %.12s (pid %s) started in %v; /proc/%s/cgroup:\n%s", id, pid, time.Since(start).Round(time.Millisecond), pid, cg)
	return id
}

// TestRuntimeDocker: containers of a real dockerd (Debian docker.io, in
// the test host namespace, imdsguard's rules installed before it started)
// are served through imdsguard. On the default bridge: the legacy SDK's
// IMDSv1 GET is upgraded, the v2 SDK's token session works, iam/ is denied
// (class container, source 172.31.250.2 on docker0, and the container id
// read from the cgroup in every event). With --network=host: the container
// is a host process (class host, the uid the kernel attests, the container
// id still named): uid 4242 is denied iam/, root is host root. Nothing
// reaches IMDS but imdsguard.
func TestRuntimeDocker(t *testing.T) {
	b := newDockerBench(t)
	t.Run("bridge", func(t *testing.T) {
		id := b.runApp(t, "--name", "app")
		ip := b.d.MustDocker("inspect", "-f", "{{.NetworkSettings.IPAddress}}", id)
		exec := func(argv ...string) testbed.Cmd { return b.d.Exec(id, argv...) }
		runRuntimeCases(t, b.e, b.g, containerCaller(id, ip, "docker0"), v1v2Denied(exec, ""))
	})
	t.Run("host-network-uid-4242", func(t *testing.T) {
		id := b.runApp(t, "--network", "host", "--user", "4242:4242")
		exec := func(argv ...string) testbed.Cmd { return b.d.Exec(id, argv...) }
		runRuntimeCases(t, b.e, b.g, hostContainer(id, 4242), v1v2Denied(exec, ""))
	})
	t.Run("host-network-root", func(t *testing.T) {
		id := b.runApp(t, "--network", "host")
		exec := func(argv ...string) testbed.Cmd { return b.d.Exec(id, argv...) }
		runRuntimeCases(t, b.e, b.g, hostContainer(id, 0), []rtCase{
			{name: "sdk-v1", cmd: exec("/bin/imdsclient", "-sdk", "v1", "-get", "instance-id"),
				want: testbed.AEMMInstanceID, ok: true, version: "v1", decision: "allow", status: 200},
			{name: "iam-as-host-root", cmd: exec("/bin/wget", "-q", "-O-", testbed.IMDSURL(4)+"/latest/meta-data/iam/security-credentials/"),
				want: testbed.AEMMRole, ok: true, version: "v1", decision: "allow", status: 200},
		})
	})
	onlyGuardReachedIMDS(t, b.h, b.past)
}

// hostContainer wants a --network=host container's process: class host,
// uid attested, no interface, and the container id from its cgroup.
func hostContainer(id string, uid int) callerCheck {
	return func(ev rtEvent) string {
		switch {
		case ev.Class != "host":
			return "class " + ev.Class + ", want host"
		case !ev.UIDKnown || ev.UID != uid:
			return fmt.Sprintf("uid %d (known %v), want %d attested", ev.UID, ev.UIDKnown, uid)
		case ev.Container != id:
			return "container " + ev.Container + ", want " + id
		case ev.Interface != "":
			return "interface " + ev.Interface + ", want none"
		}
		return ""
	}
}

// TestRuntimeDockerRestart: dockerd restarted while imdsguard runs. dockerd
// rewrites FORWARD (policy DROP, its DOCKER-USER and isolation jumps
// inserted at the top) and re-creates its chains each time it starts.
// imdsguard's jumps must still be the first rules of nat PREROUTING, filter
// FORWARD and filter INPUT (iptables-save in the host namespace), and a
// container started after the restart is still served with nothing
// reaching IMDS directly. The positions are logged after dockerd's first
// start and after the restart.
func TestRuntimeDockerRestart(t *testing.T) {
	b := newDockerBench(t)
	b.checkJumpsFirst(t, "dockerd started after imdsguard")
	away := b.d.Restart()
	restoresBefore := eventCount(b.g, "restored rules deleted from outside")
	b.checkJumpsFirst(t, "after the dockerd restart")
	t.Logf("dockerd restarted (pid %d, away %v); imdsguard logged %d restores", b.d.Pid(), away.Round(time.Millisecond),
		eventCount(b.g, "restored rules deleted from outside")-restoresBefore)

	id := b.runApp(t)
	ip := b.d.MustDocker("inspect", "-f", "{{.NetworkSettings.IPAddress}}", id)
	exec := func(argv ...string) testbed.Cmd { return b.d.Exec(id, argv...) }
	runRuntimeCases(t, b.e, b.g, containerCaller(id, ip, "docker0"), v1v2Denied(exec, ""))
	onlyGuardReachedIMDS(t, b.h, b.past)
	if ok, r := rulesStatusOK(b.e, b.h, b.g); !ok {
		t.Errorf("imdsguard rules status after the restart: %v", r)
	}
}

// checkJumpsFirst waits for imdsguard's jumps deciding container traffic
// (nat PREROUTING, filter FORWARD, filter INPUT) to be the first rules of
// their hooks in the host namespace (IPv4, where dockerd writes) and logs
// where every jump sits. dockerd inserts its own jumps at the top when it
// starts; imdsguard reads its rules every 750 ms and moves its jumps back,
// so the positions are read until they are right or jumpsFirstWithin has
// passed (a correctness bound, far above the check interval, not a
// performance figure). How long it took is logged.
func (b *dockerBench) checkJumpsFirst(t *testing.T, when string) {
	t.Helper()
	const jumpsFirstWithin = 10 * time.Second
	start := time.Now()
	var jumps []testbed.Jump
	var wrong []testbed.Jump
	for {
		jumps = testbed.GuardJumps(b.h.Shell(b.h.HostNS, "iptables-save"))
		wrong = wrong[:0]
		for _, j := range jumps {
			first := j.Hook == "nat/PREROUTING" || j.Hook == "filter/FORWARD" || j.Hook == "filter/INPUT"
			if first && j.Pos != 1 {
				wrong = append(wrong, j)
			}
		}
		if len(wrong) == 0 || time.Since(start) > jumpsFirstWithin {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	var lines []string
	for _, j := range jumps {
		lines = append(lines, "  "+j.String())
		for _, r := range j.Before {
			lines = append(lines, "      ahead: "+r)
		}
	}
	for _, j := range wrong {
		t.Errorf("%s: %v after %v, want rule 1 (imdsguard must decide first); ahead of it: %q", when, j, jumpsFirstWithin, j.Before)
	}
	t.Logf("%s, imdsguard's jumps (first after %v):\n%s", when, time.Since(start).Round(time.Millisecond), strings.Join(lines, "\n"))
}
