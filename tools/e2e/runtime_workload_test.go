package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/imdsguard/imdsguard/internal/netnstest"
	"github.com/imdsguard/imdsguard/tools/testbed"
)

// workloadPolicy gives the role to workloads named by what their runtime
// says, and has no catch-all rule: a caller no selector fits gets the
// default, deny.
const workloadPolicy = `policy:
  default: deny
  rules:
    - name: payments
      match: {containers: {names: ["web-a"], labels: {team: payments}}}
      allow: ["/**"]
    - name: billing
      match: {pods: {namespaces: [prod], labels: {app: billing}}}
      allow: ["/**"]
    - name: host-agent
      match: {containers: {names: ["host-agent"]}}
      allow: ["/**"]
`

// workloadMetrics is where the workload tests' imdsguard serves metrics, in
// the host namespace.
const workloadMetrics = "127.0.0.1:9989"

// iamPath is what every workload test reads: the role's name.
const iamPath = "/latest/meta-data/iam/security-credentials/"

// workloadBench is a Host with a real dockerd and a real containerd in its
// host namespace (client image loaded in both), then imdsguard with
// workloadPolicy and both runtimes' sockets.
type workloadBench struct {
	e *testbed.Env
	h *testbed.Host
	d *testbed.Dockerd
	c *testbed.Containerd
	g *testbed.Guard
}

func newWorkloadBench(t *testing.T) *workloadBench {
	t.Helper()
	e := testbed.New(t)
	e.RequireBins("aemm", "imdsguard", "imdsclient-static")
	h := e.NewHost(testbed.HostOptions{})
	h.RouteBack(t, testbed.CNISubnetV4, testbed.CNISubnetV6)
	b := &workloadBench{e: e, h: h}
	b.d = e.StartDockerd(h.HostNS)
	b.d.Import(e.ClientImage(), clientImage)
	b.c = e.StartContainerd(h.HostNS)
	t.Cleanup(b.c.DeleteEverything) // the k8s.io containers too, while containerd runs
	oci := e.OCIArchive(e.ClientImage(), ctrImage, []string{"/bin/sh"})
	b.c.MustCtrIn(testbed.K8sNamespace, "image", "import", oci)
	b.g = h.StartGuard(testbed.HostGuardConfig{Extra: workloadPolicy +
		fmt.Sprintf("runtimes: {docker: %q, containerd: %q, crio: \"\"}\n", b.d.Sock, b.c.Sock) +
		"metrics: {listen: \"" + workloadMetrics + "\"}\n"})
	return b
}

// ask runs cmd and returns its result and the last audit event it caused.
func (b *workloadBench) ask(t *testing.T, cmd testbed.Cmd) (testbed.Result, event) {
	t.Helper()
	n := auditCount(b.g)
	r := b.e.Run(cmd)
	evs := eventsFor(t, b.g, n, 1)
	return r, evs[len(evs)-1]
}

// workloadField is a field of the event caller's workload ("" if none).
func workloadField(ev event, key string) string {
	c, _ := ev.Raw["caller"].(map[string]any)
	w, _ := c["workload"].(map[string]any)
	return str(w[key])
}

// workloadUnknown is why the event's caller has no workload.
func workloadUnknown(ev event) string {
	c, _ := ev.Raw["caller"].(map[string]any)
	return str(c["workload_unknown"])
}

// wantEvent checks an event's container, workload name, rule and status.
func wantWorkload(t *testing.T, ev event, id, name, rule string, status int) {
	t.Helper()
	if ev.Container != id || workloadField(ev, "container_name") != name || ev.Rule != rule || ev.Status != status {
		t.Errorf("event %v workload %q (%s); want container %.12s workload %q rule %q status %d",
			ev, workloadField(ev, "container_name"), workloadUnknown(ev), id, name, rule, status)
	}
}

// TestRuntimeWorkloads: the policy decides by what the real runtimes say
// about the container a caller's cgroup names.
func TestRuntimeWorkloads(t *testing.T) {
	b := newWorkloadBench(t)
	t.Run("docker-names-and-labels", b.dockerNamesAndLabels)
	t.Run("docker-recreated-and-renamed", b.dockerRecreated)
	t.Run("docker-host-network", b.dockerHostNetwork)
	t.Run("docker-forged-source", b.dockerForgedSource)
	t.Run("containerd-pod", b.containerdPod)
	t.Run("audit-and-metrics", b.auditAndMetrics)
}

// imdsguard audit shows the workload of every container caller, and the
// IMDSv1 series counts them by image and by pod.
func (b *workloadBench) auditAndMetrics(t *testing.T) {
	r := b.e.Run(guardCmd(b.e, b.h, b.g, "audit"))
	t.Logf("imdsguard audit:\n%s", r.Stdout)
	if r.Err != nil || !strings.Contains(r.Stdout, "WORKLOAD") || !strings.Contains(r.Stdout, "docker:web-a ("+clientImage+")") ||
		!strings.Contains(r.Stdout, "pod:prod/billing-5d9c8b7f6-x2x9z/app ("+ctrImage+")") {
		t.Errorf("audit: %v", r)
	}
	r = b.e.Run(guardCmd(b.e, b.h, b.g, "audit", "--json"))
	var snap struct {
		Callers []struct {
			Runtime       string `json:"runtime"`
			ContainerName string `json:"container_name"`
			PodNamespace  string `json:"pod_namespace"`
		}
	}
	if err := json.Unmarshal([]byte(r.Stdout), &snap); err != nil || r.Err != nil {
		t.Fatalf("audit --json: %v %v", err, r)
	}
	seen := map[string]bool{}
	for _, c := range snap.Callers {
		seen[c.Runtime+"/"+c.ContainerName+"/"+c.PodNamespace] = true
	}
	for _, want := range []string{"docker/web-a/", "docker/host-agent/", "containerd/app/prod", "containerd/app/dev"} {
		if !seen[want] {
			t.Errorf("audit --json has no caller %s: %v", want, snap.Callers)
		}
	}
	m, err := testbed.RawRequestIn(b.h.HostNS, workloadMetrics, "GET", "/metrics", nil)
	if err != nil || m.Status != 200 {
		t.Fatalf("metrics: %+v %v", m, err)
	}
	var series []string
	for _, line := range strings.Split(string(m.Body), "\n") {
		if strings.HasPrefix(line, "imdsguard_imdsv1_requests_by_workload_total{") {
			series = append(series, line)
		}
	}
	t.Logf("IMDSv1 users by workload:\n%s", strings.Join(series, "\n"))
	all := strings.Join(series, "\n")
	for _, want := range []string{`{kind="pod",workload="prod/billing"}`, `{kind="pod",workload="dev/billing"}`,
		`{kind="image",workload="imdsguard-client"}`, `{kind="exe",workload="/usr/bin/busybox"}`} {
		if !strings.Contains(all, want) {
			t.Errorf("no IMDSv1 series %s", want)
		}
	}
}

// Two containers on one bridge differ in name and labels: the SDK's
// credential provider gets the role's keys in one and nothing in the other.
func (b *workloadBench) dockerNamesAndLabels(t *testing.T) {
	a := b.d.RunDetached("--name", "web-a", "--label", "team=payments", clientImage, "sleep", "3600")
	o := b.d.RunDetached("--name", "web-b", "--label", "team=search", clientImage, "sleep", "3600")
	defer b.d.MustDocker("rm", "-f", a, o)
	creds := []string{"/bin/imdsclient", "-sdk", "v2", "-no-fallback", "-creds"}
	r, ev := b.ask(t, b.d.Exec(a, creds...))
	if r.Err != nil || !strings.Contains(r.Stdout, testbed.AEMMAccessKeyID) {
		t.Errorf("web-a: %v", r)
	}
	wantWorkload(t, ev, a, "web-a", "payments", 200)
	if workloadField(ev, "runtime") != "docker" || workloadField(ev, "image") != clientImage {
		t.Errorf("web-a workload: %v", ev.Raw["caller"])
	}
	r, ev = b.ask(t, b.d.Exec(o, creds...))
	if r.Err == nil || strings.Contains(r.Stdout, testbed.AEMMAccessKeyID) {
		t.Errorf("web-b got credentials: %v", r)
	}
	wantWorkload(t, ev, o, "web-b", "", 403) // the token PUT: default deny
}

// A container recreated under the same name with other labels (usually
// at the same address) gets the new answer; one renamed into a rule's name
// gets that rule's answer at once (Docker's rename event).
func (b *workloadBench) dockerRecreated(t *testing.T) {
	iam := []string{"/bin/wget", "-q", "-O-", testbed.IMDSURL(4) + iamPath}
	a := b.d.RunDetached("--name", "web-a", "--label", "team=payments", clientImage, "sleep", "3600")
	ipA := b.d.MustDocker("inspect", "-f", "{{.NetworkSettings.IPAddress}}", a)
	_, ev := b.ask(t, b.d.Exec(a, iam...))
	wantWorkload(t, ev, a, "web-a", "payments", 200)
	b.d.MustDocker("rm", "-f", a)

	a2 := b.d.RunDetached("--name", "web-a", "--label", "team=search", clientImage, "sleep", "3600")
	ip2 := b.d.MustDocker("inspect", "-f", "{{.NetworkSettings.IPAddress}}", a2)
	_, ev = b.ask(t, b.d.Exec(a2, iam...))
	wantWorkload(t, ev, a2, "web-a", "", 403)
	t.Logf("recreated web-a: address %s then %s; team=search is denied", strings.TrimSpace(ipA), strings.TrimSpace(ip2))
	b.d.MustDocker("rm", "-f", a2)

	c := b.d.RunDetached("--name", "web-c", "--label", "team=payments", clientImage, "sleep", "3600")
	defer b.d.MustDocker("rm", "-f", c)
	_, ev = b.ask(t, b.d.Exec(c, iam...))
	wantWorkload(t, ev, c, "web-c", "", 403)
	b.d.MustDocker("rename", "web-c", "web-a")
	var r testbed.Result
	testbed.WaitFor(t, "the rename to reach imdsguard", func() bool {
		r, ev = b.ask(t, b.d.Exec(c, iam...))
		return ev.Rule == "payments"
	})
	if !strings.Contains(r.Stdout, testbed.AEMMRole) {
		t.Errorf("renamed web-c: %v", r)
	}
	wantWorkload(t, ev, c, "web-a", "payments", 200)
}

// --network=host containers are host processes (class host, their uid)
// and match containers selectors by name; a plain host process of the
// same uid matches none.
func (b *workloadBench) dockerHostNetwork(t *testing.T) {
	iam := []string{"/bin/wget", "-q", "-O-", testbed.IMDSURL(4) + iamPath}
	agent := b.d.RunDetached("--network", "host", "--user", "4242:4242", "--name", "host-agent", clientImage, "sleep", "3600")
	other := b.d.RunDetached("--network", "host", "--user", "4242:4242", "--name", "host-other", clientImage, "sleep", "3600")
	defer b.d.MustDocker("rm", "-f", agent, other)
	r, ev := b.ask(t, b.d.Exec(agent, iam...))
	if !strings.Contains(r.Stdout, testbed.AEMMRole) {
		t.Errorf("host-agent: %v", r)
	}
	wantWorkload(t, ev, agent, "host-agent", "host-agent", 200)
	if ev.Class != "host" || ev.UID != 4242 {
		t.Errorf("host-agent event %v: want class host, uid 4242", ev)
	}
	_, ev = b.ask(t, b.d.Exec(other, iam...))
	wantWorkload(t, ev, other, "host-other", "", 403)
	host := testbed.Cmd{Name: "wget as uid 4242 on the host", Path: testbed.BusyboxStatic, Args: []string{"wget", "-q", "-O-", testbed.IMDSURL(4) + iamPath},
		NS: b.h.HostNS, Cred: &syscall.Credential{Uid: 4242, Gid: 4242}}
	_, ev = b.ask(t, host)
	wantWorkload(t, ev, "", "", "", 403)
}

// A container that takes another's address on the bridge (NET_ADMIN to
// add it, NET_RAW to announce it) is still itself: its workload comes
// from its socket's cgroup, so it gets nothing the other's rule allows,
// and the other's token (bound to address and network namespace) is
// refused.
func (b *workloadBench) dockerForgedSource(t *testing.T) {
	a := b.d.RunDetached("--name", "web-a", "--label", "team=payments", clientImage, "sleep", "3600")
	m := b.d.RunDetached("--name", "mallory", "--cap-add", "NET_ADMIN", "--cap-add", "NET_RAW", clientImage, "sleep", "3600")
	defer b.d.MustDocker("rm", "-f", a, m)
	ipA := strings.TrimSpace(b.d.MustDocker("inspect", "-f", "{{.NetworkSettings.IPAddress}}", a))
	gw := strings.TrimSpace(b.d.MustDocker("inspect", "-f", "{{.NetworkSettings.Gateway}}", a))

	tok := httpVia(b.d.Exec(a, "sh", "-c", rawHTTP("PUT", "/latest/api/token", "X-aws-ec2-metadata-token-ttl-seconds: 300")))
	r := b.e.Run(tok)
	token := lastLine(r.Stdout)
	if r.Err != nil || !strings.Contains(r.Stdout, " 200 ") || len(token) < 20 {
		t.Fatalf("web-a's token: %v", r)
	}
	_, ev := b.ask(t, b.d.Exec(a, "sh", "-c", rawHTTP("GET", iamPath, "X-aws-ec2-metadata-token: "+token)))
	wantWorkload(t, ev, a, "web-a", "payments", 200)

	// mallory takes web-a's address, sends from it, and tells the host so.
	b.d.MustDocker("exec", m, "ip", "addr", "add", ipA+"/32", "dev", "eth0")
	b.d.MustDocker("exec", m, "ip", "route", "add", testbed.IMDSv4+"/32", "via", gw, "dev", "eth0", "src", ipA)
	announce := func() {
		b.e.Run(b.d.Exec(m, "/bin/busybox", "arping", "-U", "-c", "2", "-w", "1", "-I", "eth0", "-s", ipA, ipA))
	}

	for _, c := range []struct {
		name   string
		argv   []string
		status int
		rule   string
	}{
		{"v1 read", []string{"/bin/wget", "-q", "-O-", testbed.IMDSURL(4) + iamPath}, 403, ""},
		{"web-a's token", []string{"sh", "-c", rawHTTP("GET", iamPath, "X-aws-ec2-metadata-token: "+token)}, 401, ""},
	} {
		// web-a still answers ARP for its address: until the host's
		// neighbour entry names mallory, the handshake fails. Try again.
		var ev event
		var r testbed.Result
		for try := 0; ; try++ {
			announce()
			n := auditCount(b.g)
			r = b.e.Run(b.d.Exec(m, c.argv...))
			if evs := events(b.g)[n:]; len(evs) > 0 && evs[len(evs)-1].Source == ipA {
				ev = evs[len(evs)-1]
				break
			}
			if try == 10 {
				t.Fatalf("%s: mallory's request from %s never reached imdsguard: %v", c.name, ipA, r)
			}
		}
		if strings.Contains(r.Stdout, testbed.AEMMRole) {
			t.Errorf("%s: mallory read the role: %v", c.name, r)
		}
		wantWorkload(t, ev, m, "mallory", c.rule, c.status)
	}
	t.Logf("host's neighbours on docker0:\n%s", b.h.Shell(b.h.HostNS, "ip neigh show dev docker0"))
}

// rawHTTP is a shell line that sends one HTTP/1.0 request to IMDS with
// busybox nc and prints the answer (status line, headers, body).
func rawHTTP(method, path, header string) string {
	return fmt.Sprintf(`(printf '%s %s HTTP/1.0\r\nHost: %s\r\n%s\r\n\r\n'; sleep 1) | nc %s 80`,
		method, path, testbed.IMDSv4, header, testbed.IMDSv4)
}

func httpVia(c testbed.Cmd) testbed.Cmd { c.Timeout = 10 * time.Second; return c }

// podDriver runs commands in a containerd container without containerd:
// the container's own loop runs each /tmp/req.N it finds, writing
// /tmp/out.N, which the test reaches through /proc/PID/root. So requests
// can be made while containerd is stopped or paused.
type podDriver struct {
	root string // /proc/PID/root
	n    int
}

// driverLoop is the container's command.
const driverLoop = `while :; do for f in /tmp/req.*; do [ -e "$f" ] || continue; n=${f#/tmp/req.}; sh "$f" >/tmp/out.$n.tmp 2>&1; echo "exit $?" >>/tmp/out.$n.tmp; mv /tmp/out.$n.tmp /tmp/out.$n; rm "$f"; done; sleep 0.05; done`

// run has the container run script; it returns the output and how long
// the run took.
func (p *podDriver) run(t *testing.T, script string) (string, time.Duration) {
	t.Helper()
	p.n++
	req, out := filepath.Join(p.root, "tmp", fmt.Sprint("req.", p.n)), filepath.Join(p.root, "tmp", fmt.Sprint("out.", p.n))
	start := time.Now()
	if err := os.WriteFile(req+".new", []byte(script+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(req+".new", req); err != nil {
		t.Fatal(err)
	}
	var b []byte
	testbed.WaitFor(t, "the container to run "+script, func() bool {
		var err error
		b, err = os.ReadFile(out)
		return err == nil
	})
	return string(b), time.Since(start)
}

// ask has the pod read iam and returns the output, the time and the event.
func (b *workloadBench) askPod(t *testing.T, p *podDriver) (string, time.Duration, event) {
	t.Helper()
	n := auditCount(b.g)
	out, took := p.run(t, "wget -q -O- "+testbed.IMDSURL(4)+iamPath)
	evs := eventsFor(t, b.g, n, 1)
	return out, took, evs[len(evs)-1]
}

// startK8sPod makes a pod as containerd's CRI plugin would keep it, in
// namespace k8s.io: a sandbox container with the pod's labels and the
// kubelet's, and an app container with the kubelet's labels, in a network
// namespace the CNI bridge plugin wired to the host.
func (b *workloadBench) startK8sPod(t *testing.T, ns, pod string, podLabels map[string]string) (string, *podDriver) {
	t.Helper()
	uid := containerID(t)[:32]
	kubelet := map[string]string{"io.kubernetes.pod.namespace": ns, "io.kubernetes.pod.name": pod, "io.kubernetes.pod.uid": uid}
	sandbox := map[string]string{"io.cri-containerd.kind": "sandbox"}
	for k, v := range kubelet {
		sandbox[k] = v
	}
	for k, v := range podLabels {
		sandbox[k] = v
	}
	b.c.CreateIn(testbed.K8sNamespace, ctrImage, containerID(t), sandbox)
	app := map[string]string{"io.cri-containerd.kind": "container", "io.kubernetes.container.name": "app"}
	for k, v := range kubelet {
		app[k] = v
	}
	id := containerID(t)
	att := b.e.CNIAdd(b.h.HostNS, netnstest.New(t, "pod"), id)
	b.c.RunIn(testbed.K8sNamespace, ctrImage, id, att.NetNS, app, "/bin/sh", "-c", driverLoop)
	pid := strings.TrimSpace(b.c.MustCtrIn(testbed.K8sNamespace, "task", "ls"))
	for _, line := range strings.Split(pid, "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == id {
			pid = f[1]
		}
	}
	cg, _ := os.ReadFile("/proc/" + pid + "/cgroup")
	t.Logf("pod %s/%s: container %.12s pid %s at %s; cgroup:\n%s", ns, pod, id, pid, att.IPv4, cg)
	return id, &podDriver{root: "/proc/" + pid + "/root"}
}

// A containerd container in namespace k8s.io with the kubelet's labels
// matches a pods selector by namespace and the pod's labels; one of
// another namespace does not. Its labels changed (containerd's update
// event) change the answer. With containerd stopped, or not answering,
// the pod falls to the default at once and the event says why; back,
// the pod is known again.
func (b *workloadBench) containerdPod(t *testing.T) {
	billing := map[string]string{"app": "billing"}
	prodID, prod := b.startK8sPod(t, "prod", "billing-5d9c8b7f6-x2x9z", billing)
	devID, dev := b.startK8sPod(t, "dev", "billing-5d9c8b7f6-k4m2q", billing)

	out, _, ev := b.askPod(t, prod)
	if !strings.Contains(out, testbed.AEMMRole) {
		t.Errorf("prod pod: %s", out)
	}
	wantWorkload(t, ev, prodID, "app", "billing", 200)
	if workloadField(ev, "pod_namespace") != "prod" || workloadField(ev, "pod_name") != "billing-5d9c8b7f6-x2x9z" || workloadField(ev, "runtime") != "containerd" {
		t.Errorf("prod pod workload: %v", ev.Raw["caller"])
	}
	_, _, ev = b.askPod(t, dev)
	wantWorkload(t, ev, devID, "app", "", 403)

	t.Run("labels-changed", func(t *testing.T) {
		b.c.MustCtrIn(testbed.K8sNamespace, "containers", "label", prodID, "io.kubernetes.pod.namespace=staging")
		testbed.WaitFor(t, "containerd's update event to reach imdsguard", func() bool {
			_, _, ev = b.askPod(t, prod)
			return ev.Rule == ""
		})
		b.c.MustCtrIn(testbed.K8sNamespace, "containers", "label", prodID, "io.kubernetes.pod.namespace=prod")
		testbed.WaitFor(t, "the label back", func() bool {
			_, _, ev = b.askPod(t, prod)
			return ev.Rule == "billing"
		})
	})

	t.Run("containerd-stopped", func(t *testing.T) {
		b.c.StopWhile(func() {
			testbed.WaitFor(t, "imdsguard to see containerd's events stop", func() bool {
				return eventCount(b.g, "runtime events stopped: its answers are asked again") > 0
			})
			out, took, ev := b.askPod(t, prod)
			t.Logf("containerd stopped: answered in %v; %s", took.Round(time.Millisecond), workloadUnknown(ev))
			if strings.Contains(out, testbed.AEMMRole) || took > 2*time.Second {
				t.Errorf("with containerd stopped: %q after %v", out, took)
			}
			wantWorkload(t, ev, prodID, "", "", 403)
			if why := workloadUnknown(ev); !strings.Contains(why, "containerd unreachable") {
				t.Errorf("reason %q does not say containerd is unreachable", why)
			}
		})
		testbed.WaitFor(t, "containerd to be asked again", func() bool {
			_, _, ev = b.askPod(t, prod)
			return ev.Rule == "billing"
		})
	})

	t.Run("containerd-not-answering", func(t *testing.T) {
		// An update event drops the pod's answer, so that its next
		// connection asks containerd: wait for imdsguard to follow
		// containerd's events again after the restart, then send one.
		testbed.WaitFor(t, "imdsguard to follow containerd's events again", func() bool {
			n := 0
			for _, ev := range b.g.Events() {
				if ev["msg"] == "following runtime events" && ev["runtime"] == "containerd" {
					n++
				}
			}
			return n >= 2
		})
		b.c.MustCtrIn(testbed.K8sNamespace, "containers", "label", prodID, "touched=1")
		time.Sleep(200 * time.Millisecond)
		resume := b.c.Pause()
		out, took, ev := b.askPod(t, prod)
		resume()
		t.Logf("containerd paused: answered in %v; %s", took.Round(time.Millisecond), workloadUnknown(ev))
		if strings.Contains(out, testbed.AEMMRole) || took > 2*time.Second {
			t.Errorf("with containerd paused: %q after %v", out, took)
		}
		wantWorkload(t, ev, prodID, "", "", 403)
		if why := workloadUnknown(ev); !strings.Contains(why, "within 100ms") {
			t.Errorf("reason %q does not name the bound", why)
		}
		testbed.WaitFor(t, "the background lookup to land", func() bool {
			_, _, ev = b.askPod(t, prod)
			return ev.Rule == "billing"
		})
	})
}
