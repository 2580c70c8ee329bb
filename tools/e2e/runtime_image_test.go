package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/imdsguard/imdsguard/tools/manifest"
	"github.com/imdsguard/imdsguard/tools/testbed"
)

// guardImage is the DaemonSet image's name in the test dockerd.
const guardImage = "imdsguard:test"

// buildImage runs scripts/build-image.sh (the cached Debian base from
// install-test-deps.sh plus a static imdsguard) and imports the image into
// d, logging how long it took.
func buildImage(t *testing.T, e *testbed.Env, d *testbed.Dockerd) {
	t.Helper()
	start := time.Now()
	r := e.Run(testbed.Cmd{
		Name: "build-image.sh", Path: filepath.Join(e.Root, "scripts/build-image.sh"),
		Args:    []string{"--out", e.Path("imdsguard-image.tar"), "--docker-host", "unix://" + d.Sock, "--tag", guardImage},
		Env:     append(os.Environ(), "PATH="+os.Getenv("PATH")+":/usr/local/go/bin"),
		Timeout: 10 * time.Minute,
	})
	if r.Err != nil {
		t.Fatalf("%v", r)
	}
	t.Logf("scripts/build-image.sh: %v\n%s", time.Since(start).Round(time.Millisecond), strings.TrimSpace(r.Stderr))
}

// podRun is the DaemonSet pod's container as `docker run` arguments for d:
// the node's hostPaths stand in as files of the test (empty key, run and
// runtime directories, an xtables lock of its own; the machine's passwd
// and group, read-only), the ConfigMap as files.
func podRun(t *testing.T, e *testbed.Env, m *manifest.Manifest, c corev1.Container, name string) []string {
	t.Helper()
	dirs := map[string]string{}
	for _, d := range []string{"/var/lib/imdsguard", "/run/imdsguard", "/run/containerd", "/run/crio"} {
		dirs[d] = e.Path("node" + d)
		if err := os.MkdirAll(dirs[d], 0o700); err != nil {
			t.Fatal(err)
		}
	}
	run := manifest.PodRun{
		Name: name, Image: guardImage,
		HostPaths: map[string]string{
			"/var/lib/imdsguard": dirs["/var/lib/imdsguard"],
			"/run/imdsguard":     dirs["/run/imdsguard"],
			"/run/containerd":    dirs["/run/containerd"],
			"/run/crio":          dirs["/run/crio"],
			"/run/xtables.lock":  e.WriteFile("node/run/xtables.lock", ""),
			"/etc/passwd":        "/etc/passwd",
			"/etc/group":         "/etc/group",
		},
		ConfigMaps: map[string]string{m.ConfigMap.Name: configMapDir(e, perRequestAudit(t, m.ConfigMap))},
	}
	args, err := manifest.DockerRunArgs(m.DaemonSet.Spec.Template.Spec, c, run)
	if err != nil {
		t.Fatalf("%s as docker run: %v", manifestPath, err)
	}
	return args
}

// configMapDir writes a ConfigMap's data as files into a new directory of
// the Env and returns it.
func configMapDir(e *testbed.Env, cm *corev1.ConfigMap) string {
	e.T.Helper()
	dir := e.Path("configmap-" + cm.Name)
	for name, data := range cm.Data {
		e.WriteFile(filepath.Join("configmap-"+cm.Name, name), data)
	}
	return dir
}

// perRequestAudit is cm with one line added to its imdsguard.yaml:
// `audit: {summary_interval: 0s}`, so that every request the test makes has
// its own audit line at once (the shipped default summarizes routine IMDSv2
// reads once a minute). The rest of the ConfigMap is as shipped.
func perRequestAudit(t *testing.T, cm *corev1.ConfigMap) *corev1.ConfigMap {
	t.Helper()
	out := cm.DeepCopy()
	for name, data := range out.Data {
		if strings.HasSuffix(name, ".yaml") && strings.Contains(data, "version: 1") {
			if strings.Contains(data, "\naudit:") {
				t.Fatalf("ConfigMap %s/%s already has an audit section: set summary_interval there", cm.Name, name)
			}
			out.Data[name] = strings.TrimRight(data, "\n") + "\naudit: {summary_interval: 0s}\n"
			return out
		}
	}
	t.Fatalf("ConfigMap %s has no imdsguard.yaml", cm.Name)
	return nil
}

// probeContainer is c with its command replaced by the readiness probe's.
func probeContainer(c corev1.Container) corev1.Container {
	cmd := c.ReadinessProbe.Exec.Command
	c.Command, c.Args = cmd[:1], cmd[1:]
	return c
}

// TestRuntimeImageDaemonSet runs the DaemonSet's pod as the manifest says,
// from the image scripts/build-image.sh makes, under a real dockerd in a
// test host namespace: --network host and --pid host of that dockerd, the
// five capabilities with ALL dropped, a read-only root, docker's default
// seccomp profile, the ConfigMap's configuration unchanged, the key on a
// "hostPath". Both iptables backends run in it with those capabilities.
// Before the daemon runs, the readiness probe fails; with it,
// the probe passes and the node is served: a bridge container (IMDSv1
// upgraded, an IMDSv2 token session, iam/ denied, container id in the
// events) and host processes (root allowed and named from the node's
// /etc/passwd, an unprivileged user denied iam/). Nothing reaches IMDS but
// imdsguard, and when the pod stops its rules stay: connection refused.
func TestRuntimeImageDaemonSet(t *testing.T) {
	e := testbed.New(t)
	e.RequireBins("aemm", "imdsclient", "imdsclient-static")
	m := loadManifest(t, e)
	c := guardContainer(t, m)
	h := e.NewHost(testbed.HostOptions{})
	d := e.StartDockerd(h.HostNS)
	buildImage(t, e, d)
	d.Import(e.ClientImage(), clientImage)
	past := forwardCounter(t, h)

	for _, save := range []string{"/usr/sbin/iptables-nft-save", "/usr/sbin/ip6tables-nft-save", "/usr/sbin/iptables-legacy-save", "/usr/sbin/ip6tables-legacy-save"} {
		cc := c
		cc.Command, cc.Args = []string{save}, nil
		if r := e.Run(d.Docker(append([]string{"run", "--rm"}, podRun(t, e, m, cc, "imdsguard-backend")...)...)); r.Err != nil {
			t.Errorf("%s in the image, with the pod's capabilities: %v", save, r)
		}
	}

	probe := d.Docker(append([]string{"run", "--rm"}, podRun(t, e, m, probeContainer(c), "imdsguard-probe")...)...)
	if r := e.Run(probe); r.Err == nil || !strings.Contains(r.Stdout, "FAIL  redirect rules installed") ||
		!strings.Contains(r.Stdout, "FAIL  imdsguard answers metadata requests through the redirect") {
		t.Fatalf("readiness probe before the daemon runs: want a failure naming the missing rules: %v", r)
	}

	args := podRun(t, e, m, c, "imdsguard")
	t.Logf("docker run %s", strings.Join(args, " "))
	start := time.Now()
	g := &testbed.Guard{Proc: d.Start("imdsguard pod", append([]string{"run", "--rm"}, args...)...), Addr: "127.0.0.1:8989"}
	g.StopGrace = 15 * time.Second
	testbed.WaitListening(t, g.Proc, h.HostNS, g.Addr)
	listening := time.Since(start)
	ready := d.Exec("imdsguard", c.ReadinessProbe.Exec.Command...)
	testbed.WaitFor(t, "readiness probe passes", func() bool { return e.Run(ready).Err == nil })
	t.Logf("pod listening after %v, ready after %v", listening.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	if r := e.Run(ready); r.Err != nil || strings.Count(r.Stdout, "\n") != 1 || !strings.HasPrefix(r.Stdout, "ready (checked in ") {
		t.Errorf("readiness probe in the pod: want one line \"ready (checked in ...): ...\": %v", r)
	} else {
		t.Logf("readiness probe in the pod (docker exec): %s", strings.TrimSpace(r.Stdout))
	}

	t.Run("container", func(t *testing.T) {
		id := d.RunDetached("--name", "app", clientImage, "sleep", "3600")
		ip := d.MustDocker("inspect", "-f", "{{.NetworkSettings.IPAddress}}", id)
		exec := func(argv ...string) testbed.Cmd { return d.Exec(id, argv...) }
		runRuntimeCases(t, e, g, containerCaller(id, ip, "docker0"), v1v2Denied(exec, ""))
	})
	t.Run("host-root", func(t *testing.T) {
		runRuntimeCases(t, e, g, hostNamed(0, "root"), []rtCase{
			{name: "sdk-v1", cmd: h.InHost(e.IMDSClient("v1", "", "-get", "instance-id")),
				want: testbed.AEMMInstanceID, ok: true, version: "v1", decision: "allow", status: 200},
		})
	})
	t.Run("host-user", func(t *testing.T) {
		u := testbed.EnsureUser(t, testbed.TestUserName)
		as := func(c testbed.Cmd) testbed.Cmd { return e.AsUser(u, h.InHost(c)) }
		runRuntimeCases(t, e, g, hostNamed(int(u.UID), u.Name), []rtCase{
			{name: "sdk-v2", cmd: as(e.IMDSClient("v2", "", "-no-fallback", "-get", "instance-id")),
				want: testbed.AEMMInstanceID, ok: true, version: "v2", decision: "allow", status: 200},
			{name: "denied-iam", cmd: as(e.Curl(testbed.IMDSURL(4) + "/latest/meta-data/iam/security-credentials/")),
				want: "HTTP 403", ok: true, version: "v1", decision: "deny", status: 403},
		})
	})
	onlyGuardReachedIMDS(t, h, past)
	for _, ev := range g.Events() {
		if lvl := str(ev["level"]); lvl == "ERROR" || (lvl == "WARN" && ev["msg"] != "imds request") {
			t.Errorf("the pod logged %s %q: %v", lvl, ev["msg"], ev)
		}
	}
	checkInPod(t, e, d, c) // after onlyGuardReachedIMDS: its direct probe asks IMDS itself

	if err := g.Stop(); err != nil {
		t.Errorf("stop the pod: %v", err)
	}
	took := refusedIn(t, h.HostNS, testbed.IMDSAddr(4))
	t.Logf("pod stopped: metadata from the node refused after %v (rules kept)", took)
}

// checkInPod runs the full `imdsguard check` in the running pod, as
// `kubectl exec ds/imdsguard -- imdsguard check` would: with the pod's
// capabilities, read-only root and mounts it reports the node's state.
// This node is a Docker one and the manifest mounts containerd's and
// CRI-O's directories, not Docker's socket: the runtimes check fails, and
// says so; the rest passes.
func checkInPod(t *testing.T, e *testbed.Env, d *testbed.Dockerd, c corev1.Container) {
	t.Helper()
	r := e.Run(d.Exec("imdsguard", append([]string{"/usr/sbin/imdsguard", "check"}, c.Args[1:]...)...))
	t.Logf("imdsguard check in the pod:\n%s", r.Stdout)
	if r.Err == nil || strings.Count(r.Stdout, "FAIL  ") != 1 {
		t.Errorf("check in the pod: %v, want exactly one FAIL (the runtimes)\n%s%s", r.Err, r.Stdout, r.Stderr)
	}
	wantLines(t, "check in the pod", r.Stdout, "PASS  redirect rules installed", "ipv4 169.254.254.169/32: present",
		"CNI: looks like Docker bridge", "FAIL  container runtimes answer",
		"containerd at /run/containerd/containerd.sock: not on this node", "no runtime answers, yet the interfaces show Docker bridge",
		"PASS  IMDS itself rejects IMDSv1 without a token", "PASS  an IMDSv1 request through the redirect is served")
}

// hostNamed wants a host process of uid, named name (from the node's
// /etc/passwd that the pod mounts).
func hostNamed(uid int, name string) callerCheck {
	return func(ev rtEvent) string {
		switch {
		case ev.Class != "host":
			return "class " + ev.Class + ", want host"
		case !ev.UIDKnown || ev.UID != uid:
			return fmt.Sprintf("uid %d (known %v), want %d", ev.UID, ev.UIDKnown, uid)
		case ev.User != name:
			return "user " + ev.User + ", want " + name
		}
		return ""
	}
}
