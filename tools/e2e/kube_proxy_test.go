package e2e

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imdsguard/imdsguard/tools/testbed"
)

// Issue 24, part 3: imdsguard beside a real kube-proxy (testbed.StartKubeProxy)
// on the real single-node cluster (testbed.StartCluster), in iptables mode
// and in nftables mode, each test with a cluster of its own. imdsguard
// runs as the host daemon in the node's namespace (its rules and its
// process are the node's, as the AMI's unit runs it; its CPU and its
// metrics are at hand). In order:
//
//  1. imdsguard, a backend pod behind a real Service, a client pod;
//     clients in the pod and on the node read the instance id in a loop
//     (IMDSv2, through imdsguard) from here to the end;
//  2. kube-proxy starts: its first rules are a real change (its jumps in
//     nat PREROUTING and OUTPUT, in iptables mode), so imdsguard may put
//     its own first again: at most one restore per family;
//  3. kubeProxyServices selector-less Services, each with an EndpointSlice
//     of kubeProxyEndpoints addresses (about ten nat rules per service in
//     iptables mode), created with kubectl in batches while imdsguard's
//     and kube-proxy's CPU is sampled (a figure, logged: services vs CPU
//     per second);
//  4. a quiet spell of kubeProxyQuiet (two of kube-proxy's full resyncs).
//
// From step 2 on, imdsguard restores nothing more (kube-proxy's syncs do
// not touch its rules), kube-proxy syncs no more than its changes and its
// resync period ask for (imdsguard's upkeep does not touch its rules), its
// rule writes never fail, the Service answers through its ClusterIP from
// the pod and from the node (after each step), no read fails, and IMDS
// sees imdsguard's requests only.

const (
	kubeProxyServices  = 2000
	kubeProxyBatch     = 250
	kubeProxyEndpoints = 3
	kubeProxyQuiet     = 65 * time.Second
	kubeProxyLoadNS    = "svc-load"
	kubeProxyMetrics   = 9797 // imdsguard's metrics port in the node's namespace
	kubeProxyEchoBody  = "kube-proxy-echo"
)

// kubeProxyPods: echo, a busybox httpd behind Service echo (port 80 to
// 8080), and client, a pod that reads metadata and asks echo.
const kubeProxyPods = `apiVersion: v1
kind: Pod
metadata: {name: echo, namespace: team-a, labels: {app: echo}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: %[1]s
    imagePullPolicy: Never
    command: [/bin/sh, -c, "/bin/busybox mkdir -p /tmp/www && echo %[2]s > /tmp/www/index.html && exec /bin/busybox httpd -f -p 8080 -h /tmp/www"]
    readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: team-a}
spec: {selector: {app: echo}, ports: [{name: http, port: 80, targetPort: 8080}]}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: team-a, labels: {app: client}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: main, image: %[1]s, imagePullPolicy: Never, command: [/bin/sleep, "3600"]}
`

func TestKubeProxyIptables(t *testing.T) { testKubeProxy(t, testbed.KubeProxyIptables) }
func TestKubeProxyNftables(t *testing.T) { testKubeProxy(t, testbed.KubeProxyNftables) }

// kubeProxyRun is one test's cluster, daemons and clients.
type kubeProxyRun struct {
	t       *testing.T
	e       *testbed.Env
	h       *testbed.Host
	c       *testbed.Cluster
	g       *testbed.Guard
	kp      *testbed.KubeProxy
	hc      *http.Client // in the node's namespace
	echoIP  string
	readers *pacedReaders
}

func testKubeProxy(t *testing.T, mode string) {
	start := time.Now()
	r := startKubeProxyRun(t)
	defer r.readers.stop()
	from := time.Now() // the readers' start

	jumps := r.startKubeProxy(mode)
	r.echoIP = strings.TrimSpace(r.c.MustKubectl("-n", "team-a", "get", "service", "echo", "-o", "jsonpath={.spec.clusterIP}"))
	r.checkEcho("2. kube-proxy started")

	// 3 and 4. The services, then quiet.
	restores0, syncs0 := r.restores(), r.kp.Syncs()
	s := startCPUSampler(r.g.Pid(), r.kp.Pid())
	time.Sleep(2 * cpuEvery) // the curve's start: no service yet
	loadStart := time.Now()
	r.createServices(s)
	loaded := time.Since(loadStart)
	r.checkEcho(fmt.Sprintf("3. %d services programmed", kubeProxyServices))
	quietFrom, quietSyncs, quietRestores := time.Now(), r.kp.Syncs(), r.restores()
	time.Sleep(kubeProxyQuiet)
	samples := s.stop()
	r.checkEcho("4. after the quiet spell")

	r.reportCPU(samples)
	if end := r.kubeProxyJumps(); end != jumps {
		t.Errorf("kube-proxy's jumps in imdsguard's chains: %d at its start, %d at the end: one agent removed or doubled the other's", jumps, end)
	}
	r.checkRestores(restores0, quietRestores)
	r.checkSyncs(syncs0, quietSyncs, time.Since(quietFrom))
	r.checkReads(from)
	checkAEMMOnlyImdsguardSince(t, r.h, [2]int{0, 0})
	t.Logf("TestKubeProxy (%s): %d services created and programmed in %v; whole test %v", mode, kubeProxyServices,
		loaded.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

// startKubeProxy: imdsguard's CPU before; step 2. It returns kube-proxy's
// jumps in the chains where imdsguard keeps its own first.
func (r *kubeProxyRun) startKubeProxy(mode string) int {
	t := r.t
	t.Helper()
	g0 := cpuOf(r.g.Pid())
	time.Sleep(2 * cpuEvery)
	t.Logf("1. imdsguard's CPU before kube-proxy: %.0f ms/s (its own and its children's, over %v)", perSecond(cpuOf(r.g.Pid())-g0, 2*cpuEvery), 2*cpuEvery)
	before := r.restores()
	r.kp = r.c.StartKubeProxy(mode)
	requireComm(t, r.kp.Pid(), "kube-proxy")
	time.Sleep(3 * time.Second) // imdsguard's upkeep looks every 750 ms
	atStart, jumps := r.restores()-before, r.kubeProxyJumps()
	t.Logf("2. kube-proxy (%s) started: %d jumps of its own in the chains where imdsguard keeps its jumps first; imdsguard restored its rules %d times (its log: %s)",
		mode, jumps, atStart, r.restoreLog())
	if atStart > jumps {
		t.Errorf("2. %d restores at kube-proxy's start: more than one per jump kube-proxy inserted above imdsguard's (%d)", atStart, jumps)
	}
	return jumps
}

// startKubeProxyRun: step 1.
func startKubeProxyRun(t *testing.T) *kubeProxyRun {
	e := testbed.New(t)
	e.RequireBins("aemm", "imdsguard", "imdsclient-static")
	h := e.NewHost(testbed.HostOptions{})
	c := h.StartCluster(testbed.ClusterOptions{})
	c.ImportImage(e.OCIArchive(e.ClientImage(), ctrImage, []string{"/bin/sh"}))
	c.Namespace("team-a")
	c.Namespace(kubeProxyLoadNS)
	// Audit summaries, not a line per read (the readers' 40 a second).
	g := h.StartGuard(testbed.HostGuardConfig{AuditSummary: "60s",
		Extra: fmt.Sprintf(`metrics: {listen: "127.0.0.1:%d"}`, kubeProxyMetrics)})
	requireComm(t, g.Pid(), "imdsguard")
	c.Apply(fmt.Sprintf(kubeProxyPods, ctrImage, kubeProxyEchoBody))
	c.WaitReady("team-a", "pod/echo", time.Minute)
	c.WaitReady("team-a", "pod/client", time.Minute)
	r := &kubeProxyRun{t: t, e: e, h: h, c: c, g: g,
		hc: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: testbed.DialerIn(h.HostNS, 5*time.Second)}}}
	r.readers = startPacedReaders(t, podNetns(t, c, "team-a", "client"), h.HostNS)
	t.Log("1. imdsguard (host daemon), echo and its Service, client; readers in client and on the node")
	return r
}

// requireComm: pid is the process named comm (not a wrapper that started
// it): its CPU is the one sampled.
func requireComm(t *testing.T, pid int, comm string) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil || strings.TrimSpace(string(b)) != comm {
		t.Fatalf("pid %d is %q (%v), not %s: its CPU would be another's", pid, b, err, comm)
	}
}

// restores is imdsguard_rule_restores_total.
func (r *kubeProxyRun) restores() int {
	r.t.Helper()
	m, err := testbed.ScrapeMetrics(r.hc, fmt.Sprintf("http://127.0.0.1:%d/metrics", kubeProxyMetrics))
	if err != nil {
		r.t.Fatalf("imdsguard's metrics: %v", err)
	}
	v, ok := m["imdsguard_rule_restores_total"]
	if !ok {
		r.t.Fatal("imdsguard's metrics have no imdsguard_rule_restores_total")
	}
	return int(v)
}

// restoreFixed finds what one restore put back in imdsguard's log line.
var restoreFixed = regexp.MustCompile(`"msg":"restored rules deleted from outside".*"family":"(\w+)","fixed":(\[[^\]]*\])`)

// restoreLog is what imdsguard's log says it restored, each restore as
// "family [what it fixed]".
func (r *kubeProxyRun) restoreLog() string {
	var out []string
	for _, l := range strings.Split(r.g.Stderr(), "\n") {
		if m := restoreFixed.FindStringSubmatch(l); m != nil {
			out = append(out, m[1]+" "+m[2])
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, "; ")
}

// kubeProxyJumps counts, in both families' iptables, kube-proxy's jumps in
// the chains where imdsguard keeps a jump: each one kube-proxy inserted
// (at the top) is a real change imdsguard may answer with one restore.
func (r *kubeProxyRun) kubeProxyJumps() int {
	r.t.Helper()
	n := 0
	for _, save := range []string{"iptables-save", "ip6tables-save"} {
		res := r.e.Run(testbed.Cmd{Name: save, Path: "/usr/sbin/" + save, NS: r.h.HostNS})
		if res.Err != nil {
			r.t.Errorf("%v", res)
		}
		n += countKubeProxyJumps(res.Stdout)
	}
	return n
}

// ruleJump is a rule of iptables-save with its chain and its target.
var ruleJump = regexp.MustCompile(`^-A (\S+) .*-j (\S+)`)

// kubeProxyTargets are the chains kube-proxy's iptables mode jumps to from
// the built-in ones (the kubelet's KUBE-FIREWALL is not its).
var kubeProxyTargets = map[string]bool{
	"KUBE-SERVICES": true, "KUBE-NODEPORTS": true, "KUBE-POSTROUTING": true, "KUBE-FORWARD": true,
	"KUBE-PROXY-FIREWALL": true, "KUBE-EXTERNAL-SERVICES": true,
}

// countKubeProxyJumps counts kube-proxy's jumps from the chains (of each
// table) that hold a jump to an IMDSGUARD-* chain.
func countKubeProxyJumps(save string) int {
	n := 0
	for _, table := range strings.Split(save, "\n*") {
		guarded := map[string]bool{}
		var kube []string
		for _, l := range strings.Split(table, "\n") {
			m := ruleJump.FindStringSubmatch(l)
			switch {
			case m == nil || strings.HasPrefix(m[1], "IMDSGUARD-") || strings.HasPrefix(m[1], "KUBE-"):
			case strings.HasPrefix(m[2], "IMDSGUARD-"):
				guarded[m[1]] = true
			case kubeProxyTargets[m[2]]:
				kube = append(kube, m[1])
			}
		}
		for _, c := range kube {
			if guarded[c] {
				n++
			}
		}
	}
	return n
}

// checkEcho: the Service answers through its ClusterIP from the client pod
// and from the node.
func (r *kubeProxyRun) checkEcho(when string) {
	r.t.Helper()
	url := "http://" + r.echoIP + "/"
	// (busybox's wget -T crashes: the Cmd's timeout bounds it.)
	exec := r.c.Exec("team-a", "client", "main", "/bin/wget", "-q", "-O-", url)
	exec.Timeout = 20 * time.Second
	pod := r.e.Run(exec)
	if pod.Err != nil || strings.TrimSpace(pod.Stdout) != kubeProxyEchoBody {
		r.t.Errorf("%s: Service echo (%s) from the client pod: %v", when, url, pod)
		return
	}
	node := r.e.Run(r.h.InHost(r.e.Curl(url)))
	if body, status := testbed.CurlStatus(node); node.Err != nil || status != 200 || strings.TrimSpace(body) != kubeProxyEchoBody {
		r.t.Errorf("%s: Service echo (%s) from the node: %v", when, url, node)
		return
	}
	r.t.Logf("%s: Service echo answers through %s from the pod and from the node", when, r.echoIP)
}

// createServices creates the services and their slices in batches (one
// server-side apply of a List each), counting them in s, and waits until
// kube-proxy's rules name the last one.
func (r *kubeProxyRun) createServices(s *cpuSampler) {
	r.t.Helper()
	for from := 0; from < kubeProxyServices; from += kubeProxyBatch {
		n := min(kubeProxyBatch, kubeProxyServices-from)
		f := r.e.WriteFile(fmt.Sprintf("kube/services-%04d.json", from), servicesList(from, n))
		cmd := r.c.Kubectl("apply", "--server-side", "-f", f)
		cmd.Timeout = 5 * time.Minute
		if res := r.e.Run(cmd); res.Err != nil {
			r.t.Fatalf("3. services %d..%d: %v", from, from+n-1, res.Err)
		}
		s.services.Store(int64(from + n))
	}
	last := serviceName(kubeProxyServices - 1)
	deadline := time.Now().Add(5 * time.Minute)
	for !r.kp.Programmed(kubeProxyLoadNS, last) {
		if time.Now().After(deadline) {
			r.t.Fatalf("3. kube-proxy's rules do not name %s/%s after 5 minutes", kubeProxyLoadNS, last)
		}
		time.Sleep(time.Second)
	}
	s.programmed.Store(true)
}

func serviceName(i int) string { return fmt.Sprintf("s-%04d", i) }

// servicesList is a List of n selector-less Services from number from on,
// each with an EndpointSlice of kubeProxyEndpoints ready addresses of the
// pod network that no pod has (nothing is sent to them).
func servicesList(from, n int) string {
	var items []string
	for i := from; i < from+n; i++ {
		name := serviceName(i)
		items = append(items, fmt.Sprintf(`{"apiVersion":"v1","kind":"Service","metadata":{"name":%q,"namespace":%q},`+
			`"spec":{"ports":[{"name":"http","port":80,"protocol":"TCP"}]}}`, name, kubeProxyLoadNS))
		var eps []string
		for k := range kubeProxyEndpoints {
			eps = append(eps, fmt.Sprintf(`{"addresses":["198.19.0.%d"],"conditions":{"ready":true}}`, 200+(i+k)%50))
		}
		items = append(items, fmt.Sprintf(`{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice",`+
			`"metadata":{"name":"%s-1","namespace":%q,"labels":{"kubernetes.io/service-name":%q}},`+
			`"addressType":"IPv4","ports":[{"name":"http","port":8080,"protocol":"TCP"}],"endpoints":[%s]}`,
			name, kubeProxyLoadNS, name, strings.Join(eps, ",")))
	}
	return `{"apiVersion":"v1","kind":"List","items":[` + strings.Join(items, ",\n") + "]}\n"
}

// checkRestores: no restore from the services on (kube-proxy's syncs put
// nothing before imdsguard's jumps nor touch its chains).
func (r *kubeProxyRun) checkRestores(atLoad, atQuiet int) {
	r.t.Helper()
	now := r.restores()
	r.t.Logf("imdsguard's restores: %d while the services were added, %d in the quiet %v (its log, from the start: %s)",
		atQuiet-atLoad, now-atQuiet, kubeProxyQuiet, r.restoreLog())
	if now != atLoad {
		r.t.Errorf("imdsguard restored its rules %d times after kube-proxy's start: its syncs are no change to imdsguard's rules", now-atLoad)
	}
}

// checkSyncs: kube-proxy's syncs in the quiet spell are its resyncs and
// stray updates, a handful, not a fight with imdsguard (which would be
// one every minSyncPeriod, 1 s: at most one per 5 s is allowed); none of
// its rule writes failed.
func (r *kubeProxyRun) checkSyncs(atLoad, atQuiet int, quiet time.Duration) {
	r.t.Helper()
	m, err := r.kp.Metrics()
	if err != nil {
		r.t.Fatalf("kube-proxy's metrics: %v", err)
	}
	now := int(m["kubeproxy_sync_proxy_rules_duration_seconds_count"])
	var counters []string
	for k, v := range m {
		if strings.HasPrefix(k, "kubeproxy_sync_") && (strings.Contains(k, "_total") || strings.HasSuffix(k, "_count")) {
			counters = append(counters, fmt.Sprintf("%s=%g", k, v))
			if strings.Contains(k, "failures_total") && v != 0 {
				r.t.Errorf("kube-proxy: %s = %g", k, v)
			}
		}
	}
	r.t.Logf("kube-proxy: %d syncs while %d services were added, %d in the quiet %v; its counters: %s",
		atQuiet-atLoad, kubeProxyServices, now-atQuiet, quiet.Round(time.Second), strings.Join(counters, " "))
	if limit := int(quiet / (5 * time.Second)); now-atQuiet > limit {
		r.t.Errorf("kube-proxy synced %d times in a quiet %v: more than one per 5 s (%d): something rewrites its rules", now-atQuiet, quiet.Round(time.Second), limit)
	}
}

// checkReads: no read failed from the readers' start to now.
func (r *kubeProxyRun) checkReads(from time.Time) {
	r.t.Helper()
	total, failed, kinds := r.readers.count()
	r.t.Logf("reads from the pod and the node, IPv4 and IPv6, since %v: %d, %d failed %v", time.Since(from).Round(time.Second), total, failed, kinds)
	if failed != 0 || total == 0 {
		r.t.Errorf("%d of %d reads failed", failed, total)
	}
}

// readEvery paces each reader: a steady load (4 readers, 40 reads a
// second), so that imdsguard's CPU is mostly its rule upkeep.
const readEvery = 100 * time.Millisecond

// pacedReaders read the instance id every readEvery from each namespace
// over IPv4 and IPv6, on keep-alive connections, with an IMDSv2 token of
// six hours minted through imdsguard at the start (the test outlives the
// one-minute tokens of dsReaders).
type pacedReaders struct {
	mu            sync.Mutex
	total, failed int
	kinds         map[string]int
	quit          chan struct{}
	wg            sync.WaitGroup
}

func startPacedReaders(t *testing.T, nss ...string) *pacedReaders {
	t.Helper()
	p := &pacedReaders{kinds: map[string]int{}, quit: make(chan struct{})}
	for _, ns := range nss {
		for _, v := range []int{4, 6} {
			tok, err := testbed.RawRequestIn(ns, testbed.IMDSAddr(v), "PUT", "/latest/api/token",
				[]string{"X-aws-ec2-metadata-token-ttl-seconds: 21600"})
			if err != nil || tok.Status != 200 || len(tok.Body) == 0 {
				t.Fatalf("token for the reader in %s over IPv%d: %+v %v", ns, v, tok, err)
			}
			p.wg.Add(1)
			go p.read(ns, v, string(tok.Body))
		}
	}
	return p
}

func (p *pacedReaders) read(ns string, v int, token string) {
	defer p.wg.Done()
	tr := testbed.KeepAliveTransport(testbed.DialerIn(ns, time.Second))
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 2 * time.Second}
	tick := time.NewTicker(readEvery)
	defer tick.Stop()
	for {
		select {
		case <-p.quit:
			return
		case <-tick.C:
		}
		p.record(readOnce(hc, testbed.IMDSURL(v)+instanceIDPath, token))
	}
}

// readOnce is "" for the instance id, else what went wrong.
func readOnce(hc *http.Client, url, token string) string {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return "other"
	}
	req.Header.Set("X-Aws-Ec2-Metadata-Token", token)
	resp, err := hc.Do(req)
	if err != nil {
		return testbed.ErrorKind(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 200))
	switch {
	case resp.StatusCode != 200:
		return fmt.Sprintf("status %d", resp.StatusCode)
	case err != nil || string(body) != testbed.AEMMInstanceID:
		return "body"
	}
	return ""
}

func (p *pacedReaders) record(kind string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.total++
	if kind != "" {
		p.failed++
		p.kinds[kind]++
	}
}

func (p *pacedReaders) count() (total, failed int, kinds map[string]int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.total, p.failed, maps.Clone(p.kinds)
}

func (p *pacedReaders) stop() {
	close(p.quit)
	p.wg.Wait()
}

// cpuSample is one point of the curve: when, how many services had been
// created (and whether kube-proxy had programmed them all), and the CPU
// imdsguard and kube-proxy used since the sample before.
type cpuSample struct {
	at           time.Duration
	services     int64
	programmed   bool
	guard, proxy time.Duration
	interval     time.Duration
}

// cpuSampler samples every cpuEvery.
type cpuSampler struct {
	services   atomic.Int64
	programmed atomic.Bool
	quit       chan struct{}
	wg         sync.WaitGroup
	samples    []cpuSample
}

const cpuEvery = 5 * time.Second

func startCPUSampler(guard, proxy int) *cpuSampler {
	s := &cpuSampler{quit: make(chan struct{})}
	s.wg.Add(1)
	go s.run(guard, proxy)
	return s
}

func (s *cpuSampler) run(guard, proxy int) {
	defer s.wg.Done()
	start := time.Now()
	last, g0, p0 := start, cpuOf(guard), cpuOf(proxy)
	tick := time.NewTicker(cpuEvery)
	defer tick.Stop()
	for {
		select {
		case <-s.quit:
			return
		case now := <-tick.C:
			g, p := cpuOf(guard), cpuOf(proxy)
			s.samples = append(s.samples, cpuSample{at: now.Sub(start), services: s.services.Load(), programmed: s.programmed.Load(),
				guard: g - g0, proxy: p - p0, interval: now.Sub(last)})
			last, g0, p0 = now, g, p
		}
	}
}

func (s *cpuSampler) stop() []cpuSample {
	close(s.quit)
	s.wg.Wait()
	return s.samples
}

// cpuOf is testbed.ProcCPU, 0 when it cannot be read (the test sees that
// as a flat curve, and logs the curve).
func cpuOf(pid int) time.Duration {
	d, _ := testbed.ProcCPU(pid)
	return d
}

// perSecond is d per second of interval, in ms.
func perSecond(d, interval time.Duration) float64 {
	return float64(d.Milliseconds()) / interval.Seconds()
}

// reportCPU logs the curve: services created vs imdsguard's and
// kube-proxy's CPU per second.
func (r *kubeProxyRun) reportCPU(samples []cpuSample) {
	var b strings.Builder
	b.WriteString("   t  services  imdsguard ms/s  kube-proxy ms/s\n")
	for _, s := range samples {
		mark := ""
		if s.programmed {
			mark = " (all programmed)"
		}
		fmt.Fprintf(&b, "%4.0fs  %8d  %14.0f  %15.0f%s\n", s.at.Seconds(), s.services,
			perSecond(s.guard, s.interval), perSecond(s.proxy, s.interval), mark)
	}
	r.t.Logf("CPU as the services were added, every %v (imdsguard: its own and its children's; a figure, not a bound):\n%s", cpuEvery, b.String())
	if len(samples) == 0 {
		r.t.Error("no CPU sample")
	}
}

// TestCountKubeProxyJumps: only kube-proxy's jumps, only from chains that
// also jump to imdsguard's.
func TestCountKubeProxyJumps(t *testing.T) {
	save := `*nat
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -j IMDSGUARD-PRE
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -j IMDSGUARD-OUT
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
-A KUBE-SERVICES -d 198.19.128.10/32 -j KUBE-SVC-ABC
COMMIT
*filter
:INPUT ACCEPT [0:0]
-A INPUT -m conntrack --ctstate NEW -j KUBE-PROXY-FIREWALL
-A INPUT -j KUBE-FIREWALL
-A INPUT -j IMDSGUARD-IN
COMMIT
`
	// PREROUTING and OUTPUT's KUBE-SERVICES, INPUT's KUBE-PROXY-FIREWALL;
	// not POSTROUTING's (no imdsguard jump there), not the kubelet's
	// KUBE-FIREWALL, not KUBE-SERVICES' own.
	if n := countKubeProxyJumps(save); n != 3 {
		t.Errorf("countKubeProxyJumps = %d; want 3", n)
	}
}
