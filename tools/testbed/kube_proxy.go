package testbed

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/imdsguard/imdsguard/internal/netnstest"
	"github.com/imdsguard/imdsguard/internal/testenv"
)

// A real kube-proxy (bin/kube/kube-proxy, scripts/build-tools.sh kube) on
// a Cluster's node, as a node runs it: in the node's network namespace
// (nsenter --net, like the other daemons), as the user system:kube-proxy
// (the bootstrap ClusterRoleBinding system:node-proxier), in iptables or
// nftables mode (alpha in 1.30: feature gate NFTablesProxyMode; it runs
// nft). What it leaves on the machine: only rules in the node's namespace,
// removed when it stops (kube-proxy --cleanup, then whatever is left: its
// KUBE-* chains and the nft tables kube-proxy), also when the test fails.
// The kernel settings it would change outside the namespace
// (nf_conntrack_max, the conntrack timeouts) are left alone: conntrack's
// settings are zero, "do not touch".

// KubeProxy modes.
const (
	KubeProxyIptables = "iptables"
	KubeProxyNftables = "nftables"
)

// NftPath is Debian nftables' binary, which kube-proxy's nftables mode
// runs.
const NftPath = "/usr/sbin/nft"

// Ports of kube-proxy inside the node's namespace (its defaults, on
// loopback).
const (
	KubeProxyMetricsPort = 10249
	kubeProxyHealthzPort = 10256
)

// KubeProxySyncPeriod is kube-proxy's full resync period (its default):
// without any change it rewrites its rules that often.
const KubeProxySyncPeriod = 30 * time.Second

// KubeProxy is a running kube-proxy.
type KubeProxy struct {
	*Proc
	Mode string
	c    *Cluster
	hc   *http.Client // dials in the node's namespace
}

// StartKubeProxy starts kube-proxy in mode (KubeProxyIptables or
// KubeProxyNftables) with the cluster's pod networks as its clusterCIDR,
// and returns once it has written its rules once. It is stopped, and its
// rules removed, when the test ends.
func (c *Cluster) StartKubeProxy(mode string) *KubeProxy {
	t := c.e.T
	t.Helper()
	c.requireKubeProxy(mode)
	conf := c.e.WriteFile("kube/kube-proxy-"+mode+".yaml", c.kubeProxyConfig(mode))
	c.routeServices()
	// Registered before the process's own cleanup: runs after it stopped.
	t.Cleanup(func() { c.cleanupKubeProxy() })
	p := c.start("kube-proxy", c.e.Bin("kube/kube-proxy"), "--config="+conf, "--v=2")
	kp := &KubeProxy{Proc: p, Mode: mode, c: c,
		hc: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: DialerIn(c.NS, 5*time.Second)}}}
	start := time.Now()
	c.waitProc(p, "kube-proxy ("+mode+") has written its rules once", func() bool { return kp.Syncs() > 0 })
	t.Logf("cluster: kube-proxy (%s mode) synced its rules %v after its start", mode, time.Since(start).Round(time.Millisecond))
	return kp
}

// routeServices routes the service range out of the node's uplink, as a
// node's default route would: a connection from the node to a service
// address needs a route before kube-proxy's DNAT in nat OUTPUT (the node
// namespace has routes to the metadata addresses only). Removed when the
// test ends.
func (c *Cluster) routeServices() {
	t := c.e.T
	t.Helper()
	netnstest.IP(t, c.NS, "route", "add", KubeServiceCIDR, "via", IMDSLinkV4, "src", c.NodeIP)
	t.Cleanup(func() {
		if r := RunCombined(5*time.Second, nil, "ip", "-n", c.NS, "route", "del", KubeServiceCIDR); r.Err != nil {
			t.Errorf("cluster: remove the service route: %v", r)
		}
	})
}

// requireKubeProxy skips (or, under make test, fails) without the binary,
// or without nft in nftables mode.
func (c *Cluster) requireKubeProxy(mode string) {
	t := c.e.T
	t.Helper()
	if _, err := os.Stat(c.e.Bin("kube/kube-proxy")); err != nil {
		testenv.Skipf(t, "missing bin/kube/kube-proxy: scripts/build-tools.sh kube builds it (make test runs it)")
	}
	if _, err := os.Stat(NftPath); mode == KubeProxyNftables && err != nil {
		testenv.Skipf(t, "no %s: scripts/install-test-deps.sh installs nftables", NftPath)
	}
}

// kubeProxyConfig is the KubeProxyConfiguration: mode, the node's name
// (as the kubelet registers it), the pod networks (traffic to a service
// from outside them is masqueraded), metrics and health on loopback,
// conntrack left alone, its own OOM score left alone.
func (c *Cluster) kubeProxyConfig(mode string) string {
	return fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: %q}
hostnameOverride: %s
mode: %s
clusterCIDR: "%s,%s"
metricsBindAddress: "127.0.0.1:%d"
healthzBindAddress: "127.0.0.1:%d"
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
oomScoreAdj: 0
featureGates: {NFTablesProxyMode: true}
iptables: {syncPeriod: %s, minSyncPeriod: 1s}
nftables: {syncPeriod: %s, minSyncPeriod: 1s}
`, c.e.Path("kube/kube-proxy.kubeconfig"), c.NodeName, mode, KubePodCIDRv4, KubePodCIDRv6,
		KubeProxyMetricsPort, kubeProxyHealthzPort, KubeProxySyncPeriod, KubeProxySyncPeriod)
}

// kubeProxyChain finds the chains kube-proxy makes in iptables-save's
// output (the kubelet's own KUBE-KUBELET-CANARY, KUBE-FIREWALL and
// KUBE-IPTABLES-HINT are not its).
var kubeProxyChain = regexp.MustCompile(`(?m)^:(KUBE-(SERVICES|NODEPORTS|POSTROUTING|MARK-MASQ|FORWARD|PROXY-CANARY|EXTERNAL-SERVICES|PROXY-FIREWALL|SVC-[A-Z0-9]+|SEP-[A-Z0-9]+)) `)

// cleanupKubeProxy runs `kube-proxy --cleanup` in the node's namespace
// (with the nftables gate on, it removes both modes' rules), then removes
// what it leaves (its canary chains, and whatever a failed cleanup left).
func (c *Cluster) cleanupKubeProxy() {
	t := c.e.T
	r := c.e.Run(Cmd{Name: "kube-proxy --cleanup", Path: c.e.Bin("kube/kube-proxy"), NS: c.NS,
		Args: []string{"--cleanup", "--feature-gates=NFTablesProxyMode=true", "--v=0"},
		Env:  []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}})
	if r.Err != nil {
		t.Logf("cluster: kube-proxy --cleanup: %v (what is left is removed below): %s", r.Err, lastLines(r.Stderr, 3))
	}
	for _, fam := range []string{"ip", "ip6"} {
		if c.e.Run(c.nft("list", "table", fam, "kube-proxy")).Err != nil {
			continue // gone
		}
		t.Logf("cluster: kube-proxy --cleanup left nft table %s kube-proxy; deleting it", fam)
		if r := c.e.Run(c.nft("delete", "table", fam, "kube-proxy")); r.Err != nil {
			t.Errorf("cluster: %v", r)
		}
	}
	for _, tool := range []string{"iptables", "ip6tables"} {
		c.removeKubeProxyChains(tool)
	}
}

// removeKubeProxyChains flushes and deletes the chains of kube-proxy
// still in tool's (iptables, ip6tables) tables.
func (c *Cluster) removeKubeProxyChains(tool string) {
	t := c.e.T
	save := c.e.Run(Cmd{Name: tool + "-save", Path: "/usr/sbin/" + tool + "-save", NS: c.NS})
	var left [][2]string // table, chain
	for _, sec := range strings.Split(save.Stdout, "\n*")[1:] {
		table, _, _ := strings.Cut(sec, "\n")
		for _, m := range kubeProxyChain.FindAllStringSubmatch(sec, -1) {
			left = append(left, [2]string{table, m[1]})
		}
	}
	if len(left) == 0 {
		return
	}
	// Flush all first: a chain another one still jumps to cannot go.
	for _, op := range []string{"-F", "-X"} {
		for _, tc := range left {
			if r := c.e.Run(Cmd{Name: tool, Path: "/usr/sbin/" + tool, NS: c.NS, Args: []string{"-w", "-t", tc[0], op, tc[1]}}); r.Err != nil {
				t.Errorf("cluster: remove kube-proxy's chain %s/%s: %v", tc[0], tc[1], r)
			}
		}
	}
	t.Logf("cluster: removed %d %s chains kube-proxy --cleanup left (%s/%s ...)", len(left), tool, left[0][0], left[0][1])
}

// lastLines is the last n lines of s.
func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(l[max(0, len(l)-n):], " | ")
}

// nft is `nft ARGS...` in the node's namespace.
func (c *Cluster) nft(args ...string) Cmd {
	return Cmd{Name: "nft " + firstArg(args), Path: NftPath, Args: args, NS: c.NS}
}

// Metrics scrapes kube-proxy's /metrics (ParseMetrics).
func (kp *KubeProxy) Metrics() (map[string]float64, error) {
	return ScrapeMetrics(kp.hc, fmt.Sprintf("http://127.0.0.1:%d/metrics", KubeProxyMetricsPort))
}

// Syncs is how many times kube-proxy has written its rules (full and
// partial syncs), 0 when it cannot say yet.
func (kp *KubeProxy) Syncs() int {
	m, err := kp.Metrics()
	if err != nil {
		return 0
	}
	return int(m["kubeproxy_sync_proxy_rules_duration_seconds_count"])
}

// ScrapeMetrics GETs a Prometheus text endpoint with hc and parses it.
func ScrapeMetrics(hc *http.Client, url string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: status %d: %v", url, resp.StatusCode, err)
	}
	return ParseMetrics(string(b)), nil
}

// ParseMetrics reads Prometheus' text format: each sample's name, with its
// labels as written ({a="b"}), to its value. Comments and lines it cannot
// read are skipped.
func ParseMetrics(text string) map[string]float64 {
	out := map[string]float64{}
	for _, line := range strings.Split(text, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		out[line[:i]] = v
	}
	return out
}

// Programmed reports whether kube-proxy's rules name service ns/name: its
// comments in iptables mode ("ns/name:port cluster IP"), its chain names
// in nftables mode ("service-HASH-ns/name/tcp/port").
func (kp *KubeProxy) Programmed(ns, name string) bool {
	cmd := Cmd{Name: "iptables-save", Path: "/usr/sbin/iptables-save", Args: []string{"-t", "nat"}, NS: kp.c.NS}
	if kp.Mode == KubeProxyNftables {
		cmd = kp.c.nft("list", "table", "ip", "kube-proxy")
	}
	r := kp.c.e.Run(cmd)
	svc := ns + "/" + name
	return r.Err == nil && (strings.Contains(r.Stdout, svc+":") || strings.Contains(r.Stdout, svc+"/"))
}
