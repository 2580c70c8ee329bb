package e2e

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imdsguard/imdsguard/tools/fakests"
	"github.com/imdsguard/imdsguard/tools/testbed"
)

// TestKubeRoles: roles per pod from kube2iam's annotations, on a real
// node (testbed.StartCluster: etcd, kube-apiserver, controller-manager,
// scheduler, kubelet 1.30 on containerd's CRI, in a Host's host
// namespace, AEMM as IMDS) with a fake STS (fakests, on the loopback of
// the node's namespace; the daemon finds it through AWS_ENDPOINT_URL_STS).
//
// imdsguard runs as the other host tests run it (Host.StartGuardWith, the
// AMI's way: a daemon in the node's namespace, its rules in before any pod
// starts) rather than as the DaemonSet: the DaemonSet would need the image
// built and imported and its manifest edited for the roles section and the
// fake's environment, for nothing this test looks at (TestKubeDaemonSet
// covers the DaemonSet itself). The daemon asks the cluster's containerd
// (runtimes.containerd), as it would on a node.
//
// Every pod is made by the kubelet from the client image and reads its
// credentials with the real AWS SDK for Go v2 (imdsclient -sdk v2 -creds,
// unconfigured: the SDK's own 169.254.169.254). Each point of issue 22 is
// a subtest with a log line.
func TestKubeRoles(t *testing.T) {
	start := time.Now()
	e := testbed.New(t)
	e.RequireBins("aemm", "imdsguard", "imdsclient-static")
	h := e.NewHost(testbed.HostOptions{})
	sts := h.StartFakeSTS()
	// The 200 pods of many-pods and the others: more than the kubelet's
	// default 110.
	c := h.StartCluster(testbed.ClusterOptions{KubeletConfig: "maxPods: 250\n"})
	g := h.StartGuardWith(testbed.HostGuardConfig{Extra: fmt.Sprintf(kubeRolesConfig, testbed.KubeContainerdSock)},
		testbed.GuardOptions{Env: []string{sts.Env()}})
	c.ImportImage(e.OCIArchive(e.ClientImage(), ctrImage, []string{"/bin/sh"}))
	c.Namespace("payments")
	c.Namespace("team-x")
	t.Logf("cluster, imdsguard (roles on, STS at %s) and the client image ready after %v", sts.URL, time.Since(start).Round(time.Millisecond))

	k := &kubeRoles{e: e, c: c, sts: sts, g: g}
	// The start-up race pods' roles answer 1 s late: their first read
	// comes while the fetch still runs (startupRace).
	sts.SetRoleFault("payments-early", fakests.Fault{Delay: time.Second, Times: 1})
	sts.SetRoleFault("payments-early-host", fakests.Fault{Delay: time.Second, Times: 1})
	applied := time.Now()
	for _, p := range kubeRolesPods {
		c.Apply(p.yaml())
	}
	for _, p := range kubeRolesPods {
		c.WaitReady(p.ns, "pod/"+p.name, time.Minute)
	}
	t.Logf("%d pods Ready %v after kubectl apply", len(kubeRolesPods), time.Since(applied).Round(time.Millisecond))

	t.Run("annotated-role", k.annotatedRole)
	t.Run("external-id-and-session-name", k.externalID)
	t.Run("namespace-not-listed", func(t *testing.T) {
		k.refused(t, "team-x", "api", "namespace team-x is not in roles.namespaces")
	})
	t.Run("role-not-allowed", func(t *testing.T) {
		k.refused(t, "payments", "wrong", "does not allow")
	})
	t.Run("no-annotation-default", k.noAnnotation)
	t.Run("kube-system-any-role", func(t *testing.T) {
		k.ownRole(t, "kube-system", "sys", kubeRolesBase+"cluster-autoscaler", "kube-system.sys", "")
	})
	t.Run("hostNetwork", func(t *testing.T) {
		k.ownRole(t, "payments", "agent", kubeRolesBase+"payments-agent", "payments.agent", "")
	})
	t.Run("start-up-race", k.startupRace)
	t.Run("reused-address", k.reusedAddress)
	t.Run("many-pods", k.manyPods)
	t.Run("node-role-never-served", k.nodeRoleNever)
	t.Logf("TestKubeRoles body: %v", time.Since(start).Round(time.Millisecond))
}

// kubeRolesBase is roles.base_arn.
const kubeRolesBase = "arn:aws:iam::123456789012:role/"

// kubeRolesConfig: the cluster's containerd; the roles of the issue; a
// policy that lets every pod read everything (so the role step alone
// decides what a pod's credentials are), and root too. The pods rule comes
// first: a hostNetwork pod's process as root would fit users: [root].
const kubeRolesConfig = `runtimes: {docker: "", containerd: %q, crio: ""}
roles:
  base_arn: "` + kubeRolesBase + `"
  namespaces:
    payments: ["payments-*"]
    kube-system: ["*"]
policy:
  mode: enforce
  default: deny
  rules:
    - name: pods
      match: {pods: {namespaces: ["*"]}}
      allow: ["/**"]
    - name: root
      match: {users: [root]}
      allow: ["/**"]
`

// readCreds is the command a start-up race pod runs first: the SDK reads
// its credentials as the container starts, and prints the AccessKeyId (or
// its error), then the pod sleeps.
const readCreds = "/bin/imdsclient -sdk v2 -no-fallback -timeout 10s -creds 2>&1; echo exit=$?; exec /bin/sleep 3600"

// kubeRolesPod is a pod of the test.
type kubeRolesPod struct {
	ns, name    string
	annotations map[string]string
	hostNetwork bool
	script      string // "": sleep
}

func (p kubeRolesPod) yaml() string {
	keys := make([]string, 0, len(p.annotations))
	for k := range p.annotations {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var ann []string
	for _, k := range keys {
		ann = append(ann, fmt.Sprintf("%q: %q", k, p.annotations[k]))
	}
	script := p.script
	if script == "" {
		script = "exec /bin/sleep 3600"
	}
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
  namespace: %s
  annotations: {%s}
spec:
  hostNetwork: %t
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: %s
    imagePullPolicy: Never
    command: [/bin/sh, -c, %q]
`, p.name, p.ns, strings.Join(ann, ", "), p.hostNetwork, ctrImage, script)
}

func role(r string) map[string]string { return map[string]string{"iam.amazonaws.com/role": r} }

var kubeRolesPods = []kubeRolesPod{
	{ns: "payments", name: "api", annotations: role("payments-api")},
	{ns: "payments", name: "partner", annotations: map[string]string{
		"iam.amazonaws.com/role": "payments-partner", "iam.amazonaws.com/external-id": "partner-42",
		"iam.amazonaws.com/session-name": "partner-session"}},
	{ns: "team-x", name: "api", annotations: role("payments-api")},
	{ns: "payments", name: "wrong", annotations: role("reports-api")},
	{ns: "payments", name: "plain"},
	{ns: "kube-system", name: "sys", annotations: role("cluster-autoscaler")},
	{ns: "payments", name: "agent", annotations: role("payments-agent"), hostNetwork: true},
	{ns: "payments", name: "early", annotations: role("payments-early"), script: readCreds},
	{ns: "payments", name: "early-host", annotations: role("payments-early-host"), hostNetwork: true, script: readCreds},
}

// kubeRoles holds the test's cluster, daemon and fake STS, and every
// AccessKeyId an annotated pod was answered.
type kubeRoles struct {
	e   *testbed.Env
	c   *testbed.Cluster
	sts *testbed.FakeSTS
	g   *testbed.Guard

	mu       sync.Mutex
	answered map[string]string // "ns/pod": stdout and stderr of its reads
}

// creds reads the pod's credentials through the SDK v2 in its container.
func (k *kubeRoles) creds(ns, pod string) testbed.Result {
	r := k.e.Run(k.c.Exec(ns, pod, "main", "/bin/imdsclient", "-sdk", "v2", "-no-fallback", "-timeout", "10s", "-creds"))
	k.record(ns+"/"+pod, r.Stdout+r.Stderr)
	return r
}

func (k *kubeRoles) record(who, out string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.answered == nil {
		k.answered = map[string]string{}
	}
	k.answered[who] += out + "\n"
}

// callsOf are the fake's calls for role ARN and session name.
func (k *kubeRoles) callsOf(arn, session string) []fakests.Call {
	var out []fakests.Call
	for _, c := range k.sts.Calls() {
		if c.RoleARN == arn && c.RoleSessionName == session {
			out = append(out, c)
		}
	}
	return out
}

// checkOneCall: the fake saw exactly one AssumeRole for the session,
// answered, signed with the node's key, with externalID; it returns it.
func (k *kubeRoles) checkOneCall(t *testing.T, arn, session, externalID string) fakests.Call {
	t.Helper()
	calls := k.callsOf(arn, session)
	if len(calls) != 1 {
		t.Fatalf("the fake STS saw %d calls for %s session %s; want 1: %+v", len(calls), arn, session, calls)
	}
	c := calls[0]
	if c.Action != "AssumeRole" || c.Outcome != fakests.OK || c.SignerKeyID != fakests.NodeKey.AccessKeyID || c.ExternalID != externalID {
		t.Errorf("call %+v: want an answered AssumeRole signed with the node's key %s, external id %q", c, fakests.NodeKey.AccessKeyID, externalID)
	}
	return c
}

// ownRole: the pod reads its credentials through the SDK and gets those
// the fake minted for its role and session, from one AssumeRole signed
// with the node's key.
func (k *kubeRoles) ownRole(t *testing.T, ns, pod, arn, session, externalID string) {
	t.Helper()
	r := k.creds(ns, pod)
	want := fakests.Mint(arn, session, 1).AccessKeyID
	if r.Err != nil || strings.TrimSpace(r.Stdout) != want {
		t.Fatalf("%s/%s: %v; want AccessKeyId %s (fakests.Mint of %s, session %s)", ns, pod, r, want, arn, session)
	}
	call := k.checkOneCall(t, arn, session, externalID)
	// The listing names its role alone; the node's role is not there.
	name := arn[strings.LastIndex(arn, "/")+1:]
	list := k.e.Run(k.c.Exec(ns, pod, "main", "/bin/imdsclient", "-sdk", "v2", "-no-fallback", "-get", "iam/security-credentials/"))
	node := k.e.Run(k.c.Exec(ns, pod, "main", "/bin/imdsclient", "-sdk", "v2", "-no-fallback", "-get", "iam/security-credentials/baskinc-role"))
	k.record(ns+"/"+pod, list.Stdout+list.Stderr+node.Stdout+node.Stderr)
	if list.Err != nil || strings.TrimSpace(list.Stdout) != name {
		t.Errorf("%s/%s security-credentials/: %v; want %q alone", ns, pod, list, name)
	}
	if node.Err == nil || !strings.Contains(node.Stderr, "StatusCode: 404") {
		t.Errorf("%s/%s security-credentials/baskinc-role (the node's): %v; want 404", ns, pod, node)
	}
	p := k.c.Pod(ns, pod)
	t.Logf("%s/%s (hostNetwork=%v, ip %v) got AccessKeyId %s = fakests.Mint(%s, %s, 1); the fake STS: one AssumeRole %s, session %q, external id %q, signed by %s (region %s); security-credentials/ lists %q alone, .../baskinc-role (the node's) 404",
		ns, pod, p.HostNetwork, p.IPs, want, arn, session, call.RequestID, call.RoleSessionName, call.ExternalID, call.SignerKeyID, call.Region, strings.TrimSpace(list.Stdout))
}

func (k *kubeRoles) annotatedRole(t *testing.T) {
	k.ownRole(t, "payments", "api", kubeRolesBase+"payments-api", "payments.api", "")
	k.auditSays(t, "payments", "api", `"role":"`+kubeRolesBase+`payments-api"`)
}

func (k *kubeRoles) externalID(t *testing.T) {
	k.ownRole(t, "payments", "partner", kubeRolesBase+"payments-partner", "partner-session", "partner-42")
}

// refused: the pod asks for a role it may not take; the SDK gets no
// credentials (403 for security-credentials/ and below), never the
// node's, and the fake STS was never asked for it.
func (k *kubeRoles) refused(t *testing.T, ns, pod, reason string) {
	r := k.creds(ns, pod)
	if r.Err == nil || strings.Contains(r.Stdout+r.Stderr, fakests.NodeKey.AccessKeyID) {
		t.Errorf("%s/%s credentials: %v; want a failure, never the node's %s", ns, pod, r, fakests.NodeKey.AccessKeyID)
	}
	list := k.e.Run(k.c.Exec(ns, pod, "main", "/bin/imdsclient", "-sdk", "v2", "-no-fallback", "-get", "iam/security-credentials/"))
	node := k.e.Run(k.c.Exec(ns, pod, "main", "/bin/imdsclient", "-sdk", "v2", "-no-fallback", "-get", "iam/security-credentials/baskinc-role"))
	k.record(ns+"/"+pod, list.Stdout+list.Stderr+node.Stdout+node.Stderr)
	for _, x := range []testbed.Result{list, node} {
		if x.Err == nil || !strings.Contains(x.Stderr, "StatusCode: 403") {
			t.Errorf("%s/%s: %v; want 403", ns, pod, x)
		}
	}
	p := k.c.Pod(ns, pod)
	for _, call := range k.sts.Calls() {
		if strings.HasPrefix(call.RoleSessionName, ns+"."+pod) {
			t.Errorf("the fake STS was asked for %s/%s: %+v", ns, pod, call)
		}
	}
	line := k.auditSays(t, ns, pod, reason)
	t.Logf("%s/%s (annotation %s) refused: SDK credentials %q; security-credentials/ and .../baskinc-role (the node's) 403; no STS call; audit: %s",
		ns, pod, p.Annotations["iam.amazonaws.com/role"], firstLine(r.Stderr), line)
}

// noAnnotation: a pod without the annotation gets what the policy gives,
// which here is the node role, from AEMM.
func (k *kubeRoles) noAnnotation(t *testing.T) {
	r := k.e.Run(k.c.Exec("payments", "plain", "main", "/bin/imdsclient", "-sdk", "v2", "-no-fallback", "-creds"))
	if r.Err != nil || strings.TrimSpace(r.Stdout) != fakests.NodeKey.AccessKeyID {
		t.Fatalf("payments/plain: %v; want the node role's AccessKeyId %s (AEMM's)", r, fakests.NodeKey.AccessKeyID)
	}
	t.Logf("payments/plain (no annotation; rule pods allows /**) got the node role's AccessKeyId %s from AEMM, as before roles", fakests.NodeKey.AccessKeyID)
}

// startupRace: the container's very first command reads credentials. Its
// role's AssumeRole (started when the sandbox appeared) answers 1 s late,
// so the first read comes while the fetch runs; the pod gets its own role,
// never the node's. The same for a hostNetwork pod (a root process of the
// node's namespace, which the root rule would give the node role if its
// pod were not known in time).
//
// What the audit shows, and the log line prints: the SDK v2's IMDS client
// gives up on an answer's headers after 500 ms (feature/ec2/imds
// defaultResponseHeaderTimeout), well inside the daemon's 2 s wait for a
// running fetch. So its first GET of the credentials leaves after 500 ms
// (the daemon logs it 503, its context ended) and the SDK's retry, about
// 1 s later, is served from the cache. The test wants every read to be the
// pod's own session, answered 200 or 503, and the pod to print its own
// role's key; it does not want the first GET to be the one that succeeds.
func (k *kubeRoles) startupRace(t *testing.T) {
	for _, pod := range []string{"early", "early-host"} {
		arn := kubeRolesBase + "payments-" + pod
		session := "payments." + pod
		logs := k.waitLogs(t, "payments", pod, "exit=")
		k.record("payments/"+pod, logs)
		want := fakests.Mint(arn, session, 1).AccessKeyID
		if strings.TrimSpace(logs) != want+"\nexit=0" {
			t.Errorf("payments/%s's first command printed %q; want %s and exit=0", pod, logs, want)
			continue
		}
		call := k.checkOneCall(t, arn, session, "")
		// Every credentials read of the pod, as the audit has it: each
		// is for its own session, and answered its credentials or "being
		// fetched, ask again" (503), never anything of the node's.
		var seq []string
		for _, ev := range k.auditEvents("payments", pod) {
			if !strings.Contains(ev.path, "/security-credentials") {
				continue
			}
			seq = append(seq, fmt.Sprintf("%+dms %s %d %s", ev.time.Sub(call.Time).Milliseconds(), strings.TrimPrefix(ev.path, "/latest/meta-data/iam/"), ev.status, ev.roleCache))
			if ev.session != session || (ev.status != 200 && ev.status != 503) {
				t.Errorf("payments/%s: a credentials read %+v; want session %s, answered 200 or 503 (being fetched)", pod, ev, session)
			}
		}
		t.Logf("payments/%s (hostNetwork=%v): its container's first command (the SDK, as the container starts) printed %s = its own role's (fakests.Mint of %s, %s), never the node's. Its credentials reads as the audit logged them, timed from the fake STS receiving the AssumeRole (held 1 s by a fault): %s",
			pod, pod == "early-host", want, arn, session, strings.Join(seq, "; "))
	}
}

// auditEvent is what the test reads of an audit event.
type auditEvent struct {
	time                     time.Time
	path, session, roleCache string
	status                   int
}

// auditEvents are the daemon's audit events of the pod's requests.
func (k *kubeRoles) auditEvents(ns, pod string) []auditEvent {
	var out []auditEvent
	who := fmt.Sprintf(`"pod_namespace":%q,"pod_name":%q`, ns, pod)
	for _, l := range strings.Split(k.g.Stderr(), "\n") {
		if !strings.Contains(l, who) {
			continue
		}
		var ev struct {
			Time      time.Time `json:"time"`
			Path      string    `json:"path"`
			Status    int       `json:"status"`
			Session   string    `json:"session"`
			RoleCache string    `json:"role_cache"`
		}
		if json.Unmarshal([]byte(l), &ev) == nil {
			out = append(out, auditEvent{ev.Time, ev.Path, ev.Session, ev.RoleCache, ev.Status})
		}
	}
	return out
}

// waitLogs waits until the pod's log contains want and returns it.
func (k *kubeRoles) waitLogs(t *testing.T, ns, pod, want string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := k.e.Run(k.c.Kubectl("logs", "-n", ns, pod)) // fails until the container has started
		logs := r.Stdout
		if r.Err == nil && strings.Contains(logs, want) {
			return logs
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/%s's log has no %q after 30 s: %q", ns, pod, want, logs)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// reusedAddress (kiam #499): a pod is deleted and a new pod with another
// role gets its IPv4 address. host-local hands addresses out round-robin
// from the last one it reserved, so a freed address would come back only
// after the whole /24; the test puts the deleted pod's address back at
// the head of the round by rewriting host-local's own record of the last
// address it reserved (last_reserved_ip.0, in the test's CNI state
// directory) to the address before it. That is all it changes: the CNI
// plugin, the kubelet and imdsguard do what they always do. The new pod
// gets its own role from its first read; the deleted pod's credentials
// never reach it.
func (k *kubeRoles) reusedAddress(t *testing.T) {
	old := kubeRolesPod{ns: "payments", name: "old", annotations: role("payments-old")}
	k.c.Apply(old.yaml())
	k.c.WaitReady("payments", "pod/old", time.Minute)
	oldIP := k.c.Pod("payments", "old").IPs[0]
	oldKey := fakests.Mint(kubeRolesBase+"payments-old", "payments.old", 1).AccessKeyID
	if r := k.creds("payments", "old"); r.Err != nil || strings.TrimSpace(r.Stdout) != oldKey {
		t.Fatalf("payments/old: %v; want %s", r, oldKey)
	}
	k.c.MustKubectl("delete", "pod", "-n", "payments", "old", "--wait=true", "--timeout=60s")
	ipam := filepath.Join(k.e.Path("kube/cni-ipam"), testbed.KubeCNINetwork)
	testbed.WaitFor(t, "host-local releases "+oldIP, func() bool {
		_, err := os.Stat(filepath.Join(ipam, oldIP))
		return os.IsNotExist(err)
	})
	prev := netip.MustParseAddr(oldIP).Prev()
	if err := os.WriteFile(filepath.Join(ipam, "last_reserved_ip.0"), []byte(prev.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	neu := kubeRolesPod{ns: "payments", name: "new", annotations: role("payments-new"), script: readCreds}
	k.c.Apply(neu.yaml())
	k.c.WaitReady("payments", "pod/new", time.Minute)
	newIP := k.c.Pod("payments", "new").IPs[0]
	if newIP != oldIP {
		t.Fatalf("payments/new has %s, payments/old had %s: the address was not reused; the test shows nothing", newIP, oldIP)
	}
	want := fakests.Mint(kubeRolesBase+"payments-new", "payments.new", 1).AccessKeyID
	first := k.waitLogs(t, "payments", "new", "exit=")
	k.record("payments/new", first)
	r := k.creds("payments", "new")
	if strings.TrimSpace(first) != want+"\nexit=0" || r.Err != nil || strings.TrimSpace(r.Stdout) != want {
		t.Fatalf("payments/new on %s: first read %q, later read %v; want %s (its own role), never payments/old's %s", newIP, first, r, want, oldKey)
	}
	k.checkOneCall(t, kubeRolesBase+"payments-new", "payments.new", "")
	t.Logf("payments/old (role payments-old, %s) read %s and was deleted; payments/new got the same address %s and read %s (payments-new) at its start and after, never %s",
		oldIP, oldKey, newIP, want, oldKey)
}

// manyPods: 200 pods over 8 role sessions (the session-name annotation
// shares one session among 25 pods), started together, each reading its
// credentials as it starts: every one gets its session's, and the fake
// STS saw one AssumeRole per session.
func (k *kubeRoles) manyPods(t *testing.T) {
	const pods, sessions = 200, 8
	before := len(k.sts.Calls())
	var docs []string
	for i := 0; i < pods; i++ {
		p := kubeRolesPod{ns: "payments", name: fmt.Sprintf("crowd-%03d", i), script: readCreds, annotations: map[string]string{
			"iam.amazonaws.com/role":         fmt.Sprintf("payments-crowd-%d", i%sessions),
			"iam.amazonaws.com/session-name": fmt.Sprintf("crowd-%d", i%sessions),
		}}
		docs = append(docs, p.yaml())
	}
	from := time.Now()
	// In batches: kubectl apply of all at once outlasts its command's
	// bound here; the pods still start together, seconds apart at most.
	for i := 0; i < len(docs); i += 25 {
		k.c.Apply(strings.Join(docs[i:min(i+25, len(docs))], "---\n"))
	}
	for i := 0; i < pods; i++ {
		name := fmt.Sprintf("crowd-%03d", i)
		logs := k.waitLogs(t, "payments", name, "exit=")
		k.record("payments/"+name, logs)
		arn, session := kubeRolesBase+fmt.Sprintf("payments-crowd-%d", i%sessions), fmt.Sprintf("crowd-%d", i%sessions)
		if want := fakests.Mint(arn, session, 1).AccessKeyID; strings.TrimSpace(logs) != want+"\nexit=0" {
			t.Errorf("payments/%s printed %q; want %s", name, logs, want)
		}
	}
	took := time.Since(from)
	calls := k.sts.Calls()[before:]
	per := map[string]int{}
	for _, c := range calls {
		per[c.RoleARN+" "+c.RoleSessionName]++
	}
	for s := 0; s < sessions; s++ {
		k.checkOneCall(t, kubeRolesBase+fmt.Sprintf("payments-crowd-%d", s), fmt.Sprintf("crowd-%d", s), "")
	}
	if len(calls) != sessions {
		t.Errorf("the fake STS saw %d calls while %d pods of %d sessions started: %v", len(calls), pods, sessions, per)
	}
	t.Logf("%d pods over %d sessions, applied together: every one read its session's credentials at start (all within %v); the fake STS saw %d AssumeRoles: %v",
		pods, sessions, took.Round(time.Millisecond), len(calls), per)
	// The crowd goes now, in batches (the cluster's drain at the end is
	// bounded for a handful of pods), and its sessions with it.
	var names []string
	for i := 0; i < pods; i++ {
		names = append(names, fmt.Sprintf("crowd-%03d", i))
	}
	gone := time.Now()
	for i := 0; i < len(names); i += 50 {
		k.c.MustKubectl(append([]string{"-n", "payments", "delete", "pod", "--wait=false", "--grace-period=1"}, names[i:min(i+50, len(names))]...)...)
	}
	deadline := time.Now().Add(5 * time.Minute)
	for strings.Contains(k.c.MustKubectl("-n", "payments", "get", "pods", "-o", "name"), "crowd-") {
		if time.Now().After(deadline) {
			t.Fatal("the crowd's pods were not gone within 5 minutes")
		}
		time.Sleep(time.Second)
	}
	t.Logf("the %d pods deleted in %v", pods, time.Since(gone).Round(time.Millisecond))
}

// nodeRoleNever: the node role's AccessKeyId (AEMM's) is in no answer to
// an annotated pod, and the fake STS saw only AssumeRoles signed with the
// node's key, every one answered.
func (k *kubeRoles) nodeRoleNever(t *testing.T) {
	k.mu.Lock()
	defer k.mu.Unlock()
	var pods []string
	for who, out := range k.answered {
		pods = append(pods, who)
		if strings.Contains(out, fakests.NodeKey.AccessKeyID) {
			t.Errorf("%s was answered the node role's AccessKeyId %s: %q", who, fakests.NodeKey.AccessKeyID, out)
		}
	}
	sort.Strings(pods)
	calls := k.sts.Calls()
	for _, c := range calls {
		if c.Action != "AssumeRole" || c.SignerKeyID != fakests.NodeKey.AccessKeyID || c.Outcome != fakests.OK {
			t.Errorf("a call to the fake STS: %+v; want only answered AssumeRoles signed with %s", c, fakests.NodeKey.AccessKeyID)
		}
	}
	t.Logf("the node role's AccessKeyId %s is in none of the answers to %d annotated pods %v; the fake STS saw %d calls, all AssumeRole signed by %s and answered",
		fakests.NodeKey.AccessKeyID, len(pods), pods, len(calls), fakests.NodeKey.AccessKeyID)
}

// auditSays finds the daemon's audit event of a credentials read by the
// pod that contains want, and returns it.
func (k *kubeRoles) auditSays(t *testing.T, ns, pod, want string) string {
	t.Helper()
	p := k.c.Pod(ns, pod)
	who := fmt.Sprintf(`"pod_namespace":%q,"pod_name":%q`, ns, pod)
	var last string
	for _, l := range strings.Split(k.g.Stderr(), "\n") {
		if strings.Contains(l, who) && strings.Contains(l, "security-credentials") {
			last = l
			if strings.Contains(l, want) {
				return l // the first
			}
		}
	}
	t.Errorf("no audit event of %s/%s (uid %s) reading credentials says %q; the last: %s", ns, pod, p.UID, want, last)
	return last
}
