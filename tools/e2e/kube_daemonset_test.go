package e2e

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/imdsguard/imdsguard/tools/chart"
	"github.com/imdsguard/imdsguard/tools/testbed"
)

// The shipped DaemonSet on a real node (testbed.StartCluster: etcd,
// kube-apiserver, controller-manager, scheduler, kubelet 1.30 on
// containerd's CRI, in a Host's host namespace, AEMM as IMDS requiring
// tokens). One cluster, one story, in order:
//
//  1. a pod started before imdsguard, with no rules: it reaches IMDS
//     itself (the gap a DaemonSet alone leaves; the AMI's unit closes it);
//  2. the rules installed the AMI's way (`imdsguard rules install`): that
//     pod and one started now are refused, never let through;
//  3. packaging/kubernetes/daemonset.yaml applied unchanged with kubectl
//     (the image `make image` builds, imported offline): the pod runs with
//     its init container, probes and privileges, and both early pods are
//     served;
//  4. real pods (bridge, hostNetwork, an init container, two namespaces,
//     labels): IMDSv1 upgraded, IMDSv2, the container hop limit, policy
//     denials, and each named in the audit by what the runtime says;
//  5. while clients in the pods' namespaces read in a loop: an edited
//     ConfigMap (pods selectors; applied by the daemon itself), a new
//     image (a surge rollout), the Helm chart's rendering applied over
//     the manifest (another rollout), then kill -9 of the daemon. Every
//     read is counted; rules are watched for absence.

// kubeDSImageV2 and V3 are the same image under other tags: a rollout.
const (
	kubeDSImageV2 = "docker.io/library/imdsguard:v2"
	kubeDSImageV3 = "docker.io/library/imdsguard:v3"
)

const kubeDSPod = `apiVersion: v1
kind: Pod
metadata: {name: %[2]s, namespace: %[3]s, labels: {app: %[4]s}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: main, image: %[1]s, imagePullPolicy: Never, command: [/bin/sleep, "3600"]}
`

// kubeDSPolicy replaces the ConfigMap's policy in step 5: team-a's web
// pods (by namespace and label, as the runtime tells them) may read
// credentials; everyone else as before.
const kubeDSPolicy = `    policy:
      mode: enforce
      default: deny
      rules:
        - name: root
          match: {users: [root]}
          allow: ["/**"]
          imds_v1: upgrade
        - name: team-a-web
          match: {pods: {namespaces: [team-a], labels: {app: web}}}
          allow: ["/**"]
          imds_v1: upgrade
        - name: others
          match: {}
          allow: ["/**"]
          deny: ["/meta-data/iam/**", "/meta-data/identity-credentials/**", "/user-data",
                 "/dynamic/instance-identity/signature", "/dynamic/instance-identity/pkcs7",
                 "/dynamic/instance-identity/rsa2048"]
          imds_v1: upgrade
`

func TestKubeDaemonSet(t *testing.T) {
	start := time.Now()
	e := testbed.New(t)
	e.RequireBins("aemm", "imdsguard", "imdsclient-static", "helm")
	keepNodePaths(t, "/var/lib/imdsguard", "/run/imdsguard")
	h := e.NewHost(testbed.HostOptions{})
	c := h.StartCluster(testbed.ClusterOptions{})
	c.ImportImage(e.GuardImageOCI(testbed.GuardImageRef))
	c.MustCtr("images", "tag", testbed.GuardImageRef, kubeDSImageV2)
	c.MustCtr("images", "tag", testbed.GuardImageRef, kubeDSImageV3)
	c.ImportImage(e.OCIArchive(e.ClientImage(), ctrImage, []string{"/bin/sh"}))
	c.Namespace("team-a", "team=a")
	c.Namespace("team-b", "team=b")
	manifest, err := os.ReadFile(filepath.Join(e.Root, manifestPath))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cluster and images ready after %v", time.Since(start).Round(time.Millisecond))

	// 1. Before imdsguard, no rules: IMDS answers the pod itself.
	c.Apply(fmt.Sprintf(kubeDSPod, ctrImage, "early", "team-a", "early"))
	c.WaitReady("team-a", "pod/early", time.Minute)
	early := podNetns(t, c, "team-a", "early")
	direct := len(aemmRequests(h.AEMM4))
	if r, err := rawGet(early, 4); err != nil || r.Status != 401 {
		t.Fatalf("a pod before imdsguard and its rules: v1 GET %+v %v; want IMDS's own 401 (tokens required)", r, err)
	}
	t.Log("1. no rules yet: a pod's IMDSv1 GET reached IMDS, which answered 401 itself (the gap the AMI's unit closes)")
	// AEMM writes its log on its own time: wait for that request to be in
	// it, so that what follows counts from here.
	testbed.WaitFor(t, "AEMM to log the pod's direct request", func() bool { return len(aemmRequests(h.AEMM4)) > direct })
	aemmBefore := [2]int{len(aemmRequests(h.AEMM4)), len(aemmRequests(h.AEMM6))} // from here on, only imdsguard may ask IMDS

	// 2. The AMI's rules first: refused, never let through.
	cfgFile := e.WriteFile("daemonset-config.yaml", configMapYAML(t, string(manifest)))
	if r := e.Run(testbed.In(h.HostNS, testbed.Cmd{Name: "imdsguard rules install", Path: e.Bin("imdsguard"), Args: []string{"rules", "install", "--config", cfgFile}})); r.Err != nil {
		t.Fatalf("%v", r)
	}
	c.Apply(fmt.Sprintf(kubeDSPod, ctrImage, "late", "team-a", "late"))
	c.WaitReady("team-a", "pod/late", time.Minute)
	late := podNetns(t, c, "team-a", "late")
	for name, ns := range map[string]string{"early": early, "late": late} {
		if _, err := rawGet(ns, 4); testbed.ErrorKind(err) != "refused" {
			t.Errorf("2. %s, rules in and no daemon: %v; want connection refused", name, err)
		}
	}
	t.Log("2. rules installed before the DaemonSet: a pod started before and one started after are both refused (connection refused)")

	// 3. The shipped manifest, unchanged.
	applied := time.Now()
	c.Apply(string(manifest))
	c.MustKubectl("-n", "imdsguard", "rollout", "status", "daemonset/imdsguard", "--timeout=120s")
	guard := dsPod(t, c)
	t.Logf("3. daemonset.yaml applied unchanged: pod %s Ready %v later; init container %q; its log: %s", guard.Name, time.Since(applied).Round(time.Millisecond),
		strings.TrimSpace(c.Logs("imdsguard", guard.Name, "-c", "rules")), lastLine(c.Logs("imdsguard", guard.Name, "-c", "imdsguard")))
	for name, ns := range map[string]string{"early": early, "late": late} {
		if !servedByGuard(ns, 4) || !servedByGuard(ns, 6) {
			t.Errorf("3. %s not served through imdsguard once the DaemonSet runs", name)
		}
	}
	checkInDSPod(t, e, c, guard.Name)

	// 4. Real pods: TestKubeNode's (bridge, hostNetwork, an init
	// container that reads IMDS, two namespaces).
	startKubeNodePods(c)
	checkDSPods(t, e, c, guard.Name)
	checkDSHopLimit(t, h, c)

	// 5. Rollouts while clients read in a loop.
	web, api := podNetns(t, c, "team-a", "web"), podNetns(t, c, "team-b", "api")
	readers := startDSReaders(t, map[string]string{"early": early, "late": late, "web": web, "api": api, "node": h.HostNS})
	defer readers.stop()
	watch := watchRules(t, h.HostNS)
	defer watch.stop()
	time.Sleep(time.Second)

	dsConfigChange(t, e, c, string(manifest), readers)
	dsRollout(t, c, readers, "a new image", func() {
		c.MustKubectl("-n", "imdsguard", "set", "image", "daemonset/imdsguard", "imdsguard="+kubeDSImageV2, "rules="+kubeDSImageV2)
	})
	dsRollout(t, c, readers, "from the manifest to the Helm chart", func() {
		// The chart's selector has the release's instance label, and a
		// selector cannot change: the manifest's DaemonSet goes with its
		// pod orphaned (still serving), the chart's starts its own beside
		// it (which takes over), and the orphan is deleted once the new
		// pod is ready. The chart's ServiceAccount and ConfigMap replace
		// the manifest's.
		c.MustKubectl("-n", "imdsguard", "delete", "daemonset", "imdsguard", "--cascade=orphan")
		c.Apply(chart.RenderChart(t, e.Bin("helm"), filepath.Join(e.Root, chart.Dir), map[string]any{
			"image": map[string]any{"repository": "imdsguard", "tag": "v3"},
		}))
	})
	// The chart's daemon does for the pods what the manifest's did.
	checkDSPods(t, e, c, dsPod(t, c).Name)
	if n := watch.absent(); n != 0 {
		t.Errorf("the rules were absent %d times during the rollouts (of %d looks)", n, watch.looks())
	}
	t.Logf("rules looked at %d times during the config change and the rollouts: never absent", watch.looks())
	dsKill(t, c, readers)
	checkAEMMOnlyImdsguardSince(t, h, aemmBefore)
	t.Logf("TestKubeDaemonSet: %v", time.Since(start).Round(time.Millisecond))
}

// keepNodePaths removes, when the test ends, those of paths (the
// DaemonSet's hostPaths on this machine) that did not exist before it.
func keepNodePaths(t *testing.T, paths ...string) {
	for _, p := range paths {
		if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
			t.Cleanup(func() { os.RemoveAll(p) })
		}
	}
}

// configMapYAML is the imdsguard.yaml of the manifest's ConfigMap.
func configMapYAML(t *testing.T, manifest string) string {
	t.Helper()
	_, rest, ok := strings.Cut(manifest, "  imdsguard.yaml: |\n")
	if !ok {
		t.Fatal("no imdsguard.yaml in the manifest's ConfigMap")
	}
	var b strings.Builder
	for _, l := range strings.Split(rest, "\n") {
		if l == "---" {
			break
		}
		b.WriteString(strings.TrimPrefix(l, "    ") + "\n")
	}
	return b.String()
}

// dsPod is the DaemonSet's running pod (the newest, when two are there).
func dsPod(t *testing.T, c *testbed.Cluster) testbed.KubePod {
	t.Helper()
	names := strings.Fields(c.MustKubectl("-n", "imdsguard", "get", "pods", "-l", "app.kubernetes.io/name=imdsguard",
		"--sort-by=.metadata.creationTimestamp", "-o", "jsonpath={.items[*].metadata.name}"))
	if len(names) == 0 {
		t.Fatal("no imdsguard pod")
	}
	return c.Pod("imdsguard", names[len(names)-1])
}

// podNetns is the name (in /run/netns) of a pod's network namespace: the
// CRI's cni-… whose inode is its container's.
func podNetns(t *testing.T, c *testbed.Cluster, ns, name string) string {
	t.Helper()
	p := c.Pod(ns, name)
	pid := c.TaskPid(p.Containers["main"])
	var want syscall.Stat_t
	if err := syscall.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &want); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir("/run/netns")
	for _, d := range ents {
		var st syscall.Stat_t
		if strings.HasPrefix(d.Name(), "cni-") && syscall.Stat("/run/netns/"+d.Name(), &st) == nil && st.Ino == want.Ino {
			return d.Name()
		}
	}
	t.Fatalf("no /run/netns entry for pod %s/%s (pid %d)", ns, name, pid)
	return ""
}

// checkInDSPod: imdsguard check --ready inside the DaemonSet's pod passes
// (the probe's command), and the full check reports the node.
func checkInDSPod(t *testing.T, e *testbed.Env, c *testbed.Cluster, pod string) {
	t.Helper()
	r := e.Run(c.Exec("imdsguard", pod, "imdsguard", "/usr/sbin/imdsguard", "check", "--ready", "--config", "/etc/imdsguard/imdsguard.yaml"))
	if r.Err != nil {
		t.Errorf("check --ready in the DaemonSet's pod: %v", r)
	}
	full := e.Run(c.Exec("imdsguard", pod, "imdsguard", "/usr/sbin/imdsguard", "check", "--config", "/etc/imdsguard/imdsguard.yaml"))
	t.Logf("3. imdsguard check in the DaemonSet's pod (exit %v):\n%s", full.Err, full.Stdout)
	for _, want := range []string{"PASS  redirect rules installed", "PASS  landing addresses", "containerd", "answers"} {
		if !strings.Contains(full.Stdout, want) {
			t.Errorf("check in the pod does not say %q", want)
		}
	}
}

// checkDSPods: what each real pod gets through the DaemonSet.
func checkDSPods(t *testing.T, e *testbed.Env, c *testbed.Cluster, guard string) {
	t.Helper()
	exec := func(ns, pod string, argv ...string) testbed.Result {
		return e.Run(c.Exec(ns, pod, "main", argv...))
	}
	// The manifest's policy: pods may not read credentials; the
	// hostNetwork pod's process is a node process, and as root it is root.
	cases := []struct {
		ns, pod string
		creds   bool
	}{
		{"team-a", "web", false},
		{"team-b", "api", false},
		{"team-a", "agent", true},
	}
	for _, k := range cases {
		v1 := exec(k.ns, k.pod, "/bin/imdsclient", "-sdk", "v1", "-get", "instance-id")
		checkClient(t, v1, true, testbed.AEMMInstanceID)
		v2 := exec(k.ns, k.pod, "/bin/imdsclient", "-sdk", "v2", "-no-fallback", "-get", "instance-id")
		checkClient(t, v2, true, testbed.AEMMInstanceID)
		cr := exec(k.ns, k.pod, "/bin/imdsclient", "-sdk", "v2", "-no-fallback", "-creds")
		if (cr.Err == nil) != k.creds {
			t.Errorf("4. %s/%s credentials: %v; want allowed=%v", k.ns, k.pod, cr, k.creds)
		}
		t.Logf("4. %s/%s: IMDSv1 SDK %q, IMDSv2 SDK %q, credentials allowed=%v", k.ns, k.pod, strings.TrimSpace(v1.Stdout), strings.TrimSpace(v2.Stdout), cr.Err == nil)
	}
	if logs := c.Logs("team-b", "batch", "-c", "main"); !strings.Contains(logs, testbed.AEMMInstanceID) {
		t.Errorf("4. the init container's IMDSv2 read: main says %q", logs)
	}
	checkDSAudit(t, c, guard, cases[0].ns, cases[0].pod, cases[1].ns, cases[1].pod)
}

// checkDSHopLimit: a token answer reaches a bridge pod with TTL 1 (the
// container hop limit 2, minus the node's hop).
func checkDSHopLimit(t *testing.T, h *testbed.Host, c *testbed.Cluster) {
	t.Helper()
	web := podNetns(t, c, "team-a", "web")
	h.Shell(web, ttlCounters)
	for _, v := range []int{4, 6} {
		fam := map[int]string{4: "ipv4", 6: "ipv6"}[v]
		before := filterCounter(t, h, web, fam, "e2e-ttl1")
		if r, err := tokenPUT(web, v); err != nil || r.Status != 200 {
			t.Fatalf("4. token PUT from web over IPv%d: %+v %v", v, r, err)
		}
		if filterCounter(t, h, web, fam, "e2e-ttl1") == before {
			t.Errorf("4. IPv%d: no packet of the token answer arrived in web with TTL 1", v)
		}
	}
}

// checkDSAudit: the audit names each pod (namespace and name pairs) as its
// runtime does: namespace, name, uid. (Its labels decide the policy in
// step 5.)
func checkDSAudit(t *testing.T, c *testbed.Cluster, guard string, pods ...string) {
	t.Helper()
	logs := c.Logs("imdsguard", guard, "-c", "imdsguard")
	for i := 0; i+1 < len(pods); i += 2 {
		k := struct{ ns, pod string }{pods[i], pods[i+1]}
		p := c.Pod(k.ns, k.pod)
		want := fmt.Sprintf(`"pod_namespace":%q,"pod_name":%q,"pod_uid":%q`, k.ns, k.pod, p.UID)
		found := ""
		for _, l := range strings.Split(logs, "\n") {
			if strings.Contains(l, want) {
				found = l
				break
			}
		}
		if found == "" {
			t.Errorf("4. no audit event names pod %s/%s uid %s (%s)", k.ns, k.pod, p.UID, want)
		} else if k.pod == "web" {
			t.Logf("4. an audit event of web: %s", found)
		}
	}
}

// dsReaders are clients reading the instance id in a loop with IMDSv2
// tokens (minted by imdsguard for each namespace and family; they stay
// valid across restarts, as a real SDK's would), from pods' network
// namespaces and the node's, each on a keep-alive connection, a new one
// after a failure. (IMDSv1 reads would be fine too, but each is an audit
// line of its own: at this rate the kubelet would rotate the log away.)
type dsReaders struct {
	ps map[string]*testbed.Prober
}

func startDSReaders(t *testing.T, nss map[string]string) *dsReaders {
	t.Helper()
	r := &dsReaders{ps: map[string]*testbed.Prober{}}
	for name, ns := range nss {
		for _, v := range []int{4, 6} {
			tok, err := tokenPUT(ns, v)
			if err != nil || tok.Status != 200 || len(tok.Body) == 0 {
				t.Fatalf("token for the reader in %s over IPv%d: %+v %v", name, v, tok, err)
			}
			r.ps[fmt.Sprintf("%s-v%d", name, v)] = testbed.StartProbe(testbed.ProbeSpec{NS: ns, URL: testbed.IMDSURL(v) + instanceIDPath,
				Header:  http.Header{"X-Aws-Ec2-Metadata-Token": {string(tok.Body)}},
				Timeout: time.Second, Pause: 20 * time.Millisecond})
		}
	}
	return r
}

func (r *dsReaders) stop() {
	for _, p := range r.ps {
		p.Stop()
	}
}

// since counts the reads that started in [from, to): all, failed, and the
// failures by kind; and whether each reader was served after to.
func (r *dsReaders) since(from, to time.Time) (total, failed int, kinds map[string]int) {
	kinds = map[string]int{}
	for _, p := range r.ps {
		for _, o := range p.Outcomes() {
			if o.Start.Before(from) || !o.Start.Before(to) {
				continue
			}
			total++
			if !good(o) {
				failed++
				k := testbed.ErrorKind(o.Err)
				if o.Status != 0 {
					k = fmt.Sprintf("status %d", o.Status)
				}
				kinds[k]++
			}
		}
	}
	return total, failed, kinds
}

// waitAllServed waits until every reader had a good answer to a read
// started after from.
func (r *dsReaders) waitAllServed(t *testing.T, from time.Time, within time.Duration) time.Duration {
	t.Helper()
	for {
		all := true
		for _, p := range r.ps {
			if firstServed(p.Outcomes(), from).IsZero() {
				all = false
			}
		}
		if all {
			return time.Since(from)
		}
		if time.Since(from) > within {
			t.Fatalf("not every reader served within %v", within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// rulesWatch looks at the node's nat PREROUTING and OUTPUT every 100 ms
// and counts the looks that miss imdsguard's jumps.
type rulesWatch struct {
	n, missing atomic.Int64
	quit       chan struct{}
	wg         sync.WaitGroup
}

func watchRules(t *testing.T, ns string) *rulesWatch {
	w := &rulesWatch{quit: make(chan struct{})}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		for {
			select {
			case <-w.quit:
				return
			case <-time.After(100 * time.Millisecond):
			}
			out := testbed.RunCombined(5*time.Second, nil, "ip", "netns", "exec", ns, "iptables-save", "-t", "nat")
			if out.Err != nil {
				continue
			}
			w.n.Add(1)
			if !jumpRE.pre.MatchString(out.Out) || !jumpRE.out.MatchString(out.Out) {
				w.missing.Add(1)
			}
		}
	}()
	return w
}

// jumpRE find imdsguard's jumps in iptables-save's nat table.
var jumpRE = struct{ pre, out *regexp.Regexp }{
	regexp.MustCompile(`(?m)^-A PREROUTING .*-j IMDSGUARD-PRE$`),
	regexp.MustCompile(`(?m)^-A OUTPUT .*-j IMDSGUARD-OUT$`),
}

func (w *rulesWatch) stop()         { close(w.quit); w.wg.Wait() }
func (w *rulesWatch) absent() int64 { return w.missing.Load() }
func (w *rulesWatch) looks() int64  { return w.n.Load() }

// dsConfigChange: the ConfigMap edited (team-a's web may read credentials)
// and applied; the kubelet updates the file and the daemon reloads by
// itself. No read fails meanwhile.
func dsConfigChange(t *testing.T, e *testbed.Env, c *testbed.Cluster, manifest string, r *dsReaders) {
	t.Helper()
	from := time.Now()
	i := strings.Index(manifest, "    policy:\n")
	j := strings.Index(manifest[i:], "---")
	edited := manifest[:i] + kubeDSPolicy + manifest[i+j:]
	c.Apply(edited)
	applied := time.Now()
	deadline := applied.Add(2 * time.Minute)
	for e.Run(c.Exec("team-a", "web", "main", "/bin/imdsclient", "-sdk", "v2", "-no-fallback", "-creds")).Err != nil {
		if time.Now().After(deadline) {
			t.Fatal("5. the edited ConfigMap's policy did not apply within 2 minutes")
		}
		time.Sleep(time.Second)
	}
	took := time.Since(applied)
	if e.Run(c.Exec("team-b", "api", "main", "/bin/imdsclient", "-sdk", "v2", "-no-fallback", "-creds")).Err == nil {
		t.Error("5. api (team-b) got credentials: the new rule is for team-a's web only")
	}
	time.Sleep(500 * time.Millisecond)
	total, failed, kinds := r.since(from, time.Now())
	t.Logf("5. ConfigMap edited: the new policy applied %v after kubectl apply, no restart; %d reads meanwhile, %d failed %v", took.Round(time.Millisecond), total, failed, kinds)
	if failed != 0 {
		t.Errorf("5. %d reads failed during the config change", failed)
	}
}

// dsRollout: change makes the DaemonSet roll; the rollout completes with
// the new pod beside the old one (a surge) and no read fails.
func dsRollout(t *testing.T, c *testbed.Cluster, r *dsReaders, what string, change func()) {
	t.Helper()
	old := dsPod(t, c)
	from := time.Now()
	change()
	c.MustKubectl("-n", "imdsguard", "rollout", "status", "daemonset/imdsguard", "--timeout=180s")
	took := time.Since(from)
	// An orphan (the manifest's pod, after its DaemonSet went) stays until
	// it is deleted; a DaemonSet's own old pod goes by itself.
	owners := c.MustKubectl("-n", "imdsguard", "get", "pod", old.Name, "--ignore-not-found", "-o", "jsonpath={.metadata.ownerReferences}")
	if owners == "" && strings.Contains(c.MustKubectl("-n", "imdsguard", "get", "pods", "-o", "name"), old.Name) {
		c.MustKubectl("-n", "imdsguard", "delete", "pod", old.Name, "--wait=false", "--ignore-not-found")
	}
	// The old pod is gone once the rollout completes; wait for it to go.
	deadline := time.Now().Add(time.Minute)
	for strings.Contains(c.MustKubectl("-n", "imdsguard", "get", "pods", "-o", "name"), old.Name) {
		if time.Now().After(deadline) {
			t.Fatalf("5. %s: the old pod %s is still there", what, old.Name)
		}
		time.Sleep(200 * time.Millisecond)
	}
	neu := dsPod(t, c)
	time.Sleep(time.Second)
	total, failed, kinds := r.since(from, time.Now())
	logs := c.Logs("imdsguard", neu.Name, "-c", "imdsguard")
	t.Logf("5. %s: rollout %s → %s in %v; %d reads meanwhile, %d failed %v; handover logged: %v", what, old.Name, neu.Name,
		took.Round(time.Millisecond), total, failed, kinds, strings.Contains(logs, "took the listeners over"))
	if failed != 0 {
		t.Errorf("5. %s: %d reads failed during the rollout", what, failed)
	}
	if !strings.Contains(logs, "took the listeners over") || !strings.Contains(logs, "took the rules over") {
		t.Errorf("5. %s: the new pod did not take the listeners and the rules over:\n%s", what, logs)
	}
}

// dsKill: the daemon killed with SIGKILL. Its rules stay: reads are
// refused (never answered by anyone else) until the kubelet has restarted
// the container, and all are served again.
func dsKill(t *testing.T, c *testbed.Cluster, r *dsReaders) {
	t.Helper()
	p := dsPod(t, c)
	pid := c.TaskPid(p.Containers["imdsguard"])
	from := time.Now()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	back := r.waitAllServed(t, from.Add(100*time.Millisecond), 2*time.Minute)
	total, failed, kinds := r.since(from, from.Add(back))
	t.Logf("5. kill -9 of the daemon (pid %d): every reader served again %v later (the kubelet restarts the container); %d reads meanwhile, %d failed %v",
		pid, back.Round(time.Millisecond), total, failed, kinds)
	for k := range kinds {
		if k != "refused" && k != "reset" && k != "eof" {
			t.Errorf("5. kill -9: a read failed as %q: only refusals (fail closed) or the cut of those in flight", k)
		}
	}
}

// checkAEMMOnlyImdsguardSince: of the requests AEMM logged after the first
// before[0] (IPv4) and before[1] (IPv6), every one is imdsguard's (the
// daemon, or its check asking IMDS itself), from the node's uplink.
func checkAEMMOnlyImdsguardSince(t *testing.T, h *testbed.Host, before [2]int) {
	t.Helper()
	reqs := append(aemmRequests(h.AEMM4)[before[0]:], aemmRequests(h.AEMM6)[before[1]:]...)
	byUA := map[string]int{}
	for _, r := range reqs {
		byUA[r.UserAgent]++
		host, _, err := net.SplitHostPort(r.Remote)
		if !strings.HasPrefix(r.UserAgent, "imdsguard/") || err != nil || (host != testbed.HostUpV4 && host != testbed.HostUpV6) {
			t.Errorf("AEMM got a request that is not imdsguard's: %+v", r)
		}
	}
	t.Logf("AEMM logged %d requests since imdsguard's rules went in, by User-Agent: %v", len(reqs), byUA)
	if len(reqs) == 0 {
		t.Error("AEMM logged no request at all: the test proves nothing")
	}
}
