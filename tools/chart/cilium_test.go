package chart_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/imdsguard/imdsguard/tools/chart"
)

// lrpManifestPath is the Cilium Local Redirect Policy pair that
// ciliumLocalRedirect.enabled must render.
const lrpManifestPath = "packaging/kubernetes/cilium-lrp.yaml"

// lrpInterfaces are what docs/containers.md#cilium has the node's
// container_interfaces hold for the local redirect listener: the pod veths
// and cilium_host.
var lrpInterfaces = []string{"lxc+", "cilium_host"}

// loadLRPManifest decodes cilium-lrp.yaml with the chart's own strict
// decoding, so that the chart's policies and the manifest's are read the
// same way; a fresh copy each call, for the caller to change.
func loadLRPManifest(t *testing.T, root string) []*chart.LocalRedirectPolicy {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, lrpManifestPath))
	if err != nil {
		t.Fatal(err)
	}
	o, err := chart.Decode(string(b))
	if err != nil {
		t.Fatalf("%s: %v", lrpManifestPath, err)
	}
	if got := strings.Join(o.Kinds, ","); got != "CiliumLocalRedirectPolicy,CiliumLocalRedirectPolicy" {
		t.Fatalf("%s: holds %s, want two CiliumLocalRedirectPolicy objects", lrpManifestPath, got)
	}
	return o.LocalRedirectPolicies
}

// TestCiliumLocalRedirectOffByDefault: without the value the chart renders
// no policy and the daemon opens no local redirect listener (the rest of
// the defaults is TestDefaultsAreTheManifest's).
func TestCiliumLocalRedirectOffByDefault(t *testing.T) {
	b := newBench(t)
	o := b.render(t, nil)
	if len(o.LocalRedirectPolicies) != 0 {
		t.Errorf("rendered %v by default, want no CiliumLocalRedirectPolicy", o.Kinds)
	}
	cfg, err := o.Config()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen.LocalRedirectPort != 0 {
		t.Errorf("listen.local_redirect_port %d by default, want 0 (off)", cfg.Listen.LocalRedirectPort)
	}
}

// TestCiliumLocalRedirect: enabled, the chart renders the manifest's two
// policies (Helm's labels and the release's instance label in the selector
// aside), with the port given as their backend port; the configuration the
// daemon accepts, with that port as listen.local_redirect_port and the
// Cilium interfaces added, and nothing else changed; and the DaemonSet
// exactly as without it: no declared port (a hostPort would keep a surging
// pod off its node), the same surge rollout.
func TestCiliumLocalRedirect(t *testing.T) {
	b := newBench(t)
	defaults := b.render(t, nil)
	defCfg, err := defaults.Config()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		values m
		port   int
	}{
		{"the default port", m{"ciliumLocalRedirect": m{"enabled": true}}, 8990},
		{"another port", m{"ciliumLocalRedirect": m{"enabled": true, "port": 9000}}, 9000},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := b.render(t, c.values)
			want := loadLRPManifest(t, b.root)
			for _, p := range want {
				p.Spec.RedirectBackend.ToPorts[0].Port = strconv.Itoa(c.port)
			}
			samePolicies(t, o.LocalRedirectPolicies, want)
			checkPoliciesSelect(t, o, c.port)

			cfg, err := o.Config()
			if err != nil {
				t.Fatalf("the daemon would refuse the rendered configuration: %v", err)
			}
			if cfg.Listen.LocalRedirectPort != c.port {
				t.Errorf("listen.local_redirect_port %d, want %d", cfg.Listen.LocalRedirectPort, c.port)
			}
			wantIfaces := slices.Concat(defCfg.Redirect.ContainerInterfaces, []string{"cilium_host"})
			if !slices.Equal(cfg.Redirect.ContainerInterfaces, wantIfaces) {
				t.Errorf("redirect.container_interfaces %q, want the defaults and cilium_host: %q", cfg.Redirect.ContainerInterfaces, wantIfaces)
			}
			rest := *cfg
			rest.Listen.LocalRedirectPort, rest.Redirect.ContainerInterfaces = defCfg.Listen.LocalRedirectPort, defCfg.Redirect.ContainerInterfaces
			if d := configDiff(*defCfg, rest); d != "" {
				t.Errorf("more than listen.local_redirect_port and redirect.container_interfaces changed (- defaults, + rendered):\n%s", d)
			}

			for _, ctr := range slices.Concat(o.DaemonSet.Spec.Template.Spec.InitContainers, o.DaemonSet.Spec.Template.Spec.Containers) {
				if len(ctr.Ports) != 0 {
					t.Errorf("container %s declares ports %v: in the node's network they become hostPorts, and a surge rollout's new pod could not be scheduled", ctr.Name, ctr.Ports)
				}
			}
			sameAs(t, "DaemonSet with ciliumLocalRedirect (against the defaults')", o.DaemonSet, defaults.DaemonSet)
		})
	}
}

// samePolicies compares the chart's policies with the manifest's by name,
// each whole once the labels Helm may add are set aside, in the metadata and
// in the backend's selector (the release's instance label).
func samePolicies(t *testing.T, got, want []*chart.LocalRedirectPolicy) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("rendered %d policies, want the manifest's %d", len(got), len(want))
	}
	for _, w := range want {
		i := slices.IndexFunc(got, func(g *chart.LocalRedirectPolicy) bool { return g.Name == w.Name })
		if i < 0 {
			t.Errorf("no policy %s rendered", w.Name)
			continue
		}
		g := *got[i]
		g.Labels = labelsAside(t, w.Name+" labels", g.Labels, w.Labels)
		sel := &g.Spec.RedirectBackend.LocalEndpointSelector
		sel.MatchLabels = labelsAside(t, w.Name+" backend selector", sel.MatchLabels, w.Spec.RedirectBackend.LocalEndpointSelector.MatchLabels)
		sameAs(t, "CiliumLocalRedirectPolicy "+w.Name, &g, w)
	}
}

// checkPoliciesSelect: each policy is in the DaemonSet's namespace (a policy
// selects backends in its own only), selects the DaemonSet's pods, and
// sends to the listener's port.
func checkPoliciesSelect(t *testing.T, o *chart.Objects, port int) {
	t.Helper()
	ds := o.DaemonSet
	for _, p := range o.LocalRedirectPolicies {
		if p.Namespace != ds.Namespace {
			t.Errorf("%s in namespace %q, want the DaemonSet's %q", p.Name, p.Namespace, ds.Namespace)
		}
		sel := p.Spec.RedirectBackend.LocalEndpointSelector
		if !subset(sel.MatchLabels, ds.Spec.Template.Labels) || len(sel.MatchExpressions) != 0 {
			t.Errorf("%s: backend selector %+v does not select the DaemonSet's pods %v", p.Name, sel, ds.Spec.Template.Labels)
		}
		if !subset(ds.Spec.Selector.MatchLabels, sel.MatchLabels) {
			t.Errorf("%s: backend selector %v lacks the DaemonSet's selector %v: it could pick another release's pods", p.Name, sel.MatchLabels, ds.Spec.Selector.MatchLabels)
		}
		if tp := p.Spec.RedirectBackend.ToPorts; len(tp) != 1 || tp[0] != (chart.LRPPort{Port: strconv.Itoa(port), Protocol: "TCP"}) {
			t.Errorf("%s: backend ports %+v, want %d/TCP", p.Name, tp, port)
		}
	}
}

// TestCiliumLocalRedirectRelease: under another release name and namespace
// the policies follow the release, and select its pods only.
func TestCiliumLocalRedirectRelease(t *testing.T) {
	b := newBench(t)
	rel := chart.Release{Name: "guard", Namespace: "kube-system"}
	out, err := chart.Render(b.helm, b.dir, rel, m{"ciliumLocalRedirect": m{"enabled": true}})
	if err != nil {
		t.Fatal(err)
	}
	o, err := chart.Decode(out)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range o.LocalRedirectPolicies {
		names = append(names, p.Namespace+"/"+p.Name)
	}
	if want := []string{"kube-system/guard-imdsguard-ipv4", "kube-system/guard-imdsguard-ipv6"}; !slices.Equal(names, want) {
		t.Errorf("policies %v, want %v", names, want)
	}
	checkPoliciesSelect(t, o, 8990)
}

// TestCiliumLocalRedirectInterfaces: the Cilium interfaces are added to a
// container_interfaces of the user's, once, and in its order; a "+" there,
// a port that is listen.port, or no family redirected renders, but the
// daemon's validation refuses it, naming listen.local_redirect_port.
func TestCiliumLocalRedirectInterfaces(t *testing.T) {
	b := newBench(t)
	on := func(redirect m, port int) m {
		return m{"ciliumLocalRedirect": m{"enabled": true, "port": port}, "config": m{"redirect": redirect}}
	}
	for _, c := range []struct {
		name   string
		values m
		want   []string
	}{
		{"a list of the user's", on(m{"container_interfaces": []any{"eni+"}}, 8990), []string{"eni+", "lxc+", "cilium_host"}},
		{"already there", on(m{"container_interfaces": []any{"cilium_host", "lxc+"}}, 8990), []string{"cilium_host", "lxc+"}},
		{"none given (null)", on(m{"container_interfaces": nil}, 8990), lrpInterfaces},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := b.render(t, c.values).Config()
			if err != nil {
				t.Fatalf("the daemon would refuse the rendered configuration: %v", err)
			}
			if !slices.Equal(cfg.Redirect.ContainerInterfaces, c.want) {
				t.Errorf("redirect.container_interfaces %q, want %q", cfg.Redirect.ContainerInterfaces, c.want)
			}
		})
	}
	for _, c := range []struct {
		name   string
		values m
	}{
		{"the port is listen.port", on(m{}, 8989)},
		{`"+" among the interfaces`, on(m{"container_interfaces": []any{"+"}}, 8990)},
		{"no family redirected", on(m{"ipv4": false, "ipv6": false}, 8990)},
	} {
		t.Run("refused: "+c.name, func(t *testing.T) {
			_, err := b.render(t, c.values).Config()
			if err == nil {
				t.Fatalf("values %v: the daemon's loader accepted it", c.values)
			}
			if !strings.Contains(err.Error(), "listen.local_redirect_port") {
				t.Errorf("error does not name listen.local_redirect_port: %v", err)
			}
			t.Logf("refused: %v", err)
		})
	}
}

// TestCiliumLocalRedirectTradeIsSaid: the chart declares no port, which
// some Cilium releases need to find the backend; values.yaml and the
// README must say so, and what declaring it would cost.
func TestCiliumLocalRedirectTradeIsSaid(t *testing.T) {
	root := repoRoot(t)
	for _, doc := range []string{"values.yaml", "README.md"} {
		text := readChartDoc(t, root, doc)
		for _, s := range []string{"cilium/cilium#43929", "hostPort", "maxSurge: 0", "maxUnavailable: 1"} {
			if !bytes.Contains(text, []byte(s)) {
				t.Errorf("%s/%s: does not say %q (the undeclared port, and what declaring it costs)", chart.Dir, doc, s)
			}
		}
	}
}
