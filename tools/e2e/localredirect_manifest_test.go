package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/imdsguard/imdsguard/internal/config"
	"github.com/imdsguard/imdsguard/internal/imds"
	"github.com/imdsguard/imdsguard/tools/testbed"
)

// lrpManifestPath is the Cilium Local Redirect Policy for the DaemonSet.
const lrpManifestPath = "packaging/kubernetes/cilium-lrp.yaml"

// lrpPolicyDoc is the part of Cilium's CiliumLocalRedirectPolicy (cilium.io/v2,
// its CRD's openAPIV3Schema) that the manifest uses; decoded strictly, so a
// misspelt or misplaced field fails.
type lrpPolicyDoc struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string            `json:"name"`
		Namespace string            `json:"namespace"`
		Labels    map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec struct {
		Description      string `json:"description"`
		RedirectFrontend struct {
			AddressMatcher struct {
				IP      string       `json:"ip"`
				ToPorts []lrpPortDoc `json:"toPorts"`
			} `json:"addressMatcher"`
		} `json:"redirectFrontend"`
		RedirectBackend struct {
			LocalEndpointSelector struct {
				MatchLabels map[string]string `json:"matchLabels"`
			} `json:"localEndpointSelector"`
			ToPorts []lrpPortDoc `json:"toPorts"`
		} `json:"redirectBackend"`
		SkipRedirectFromBackend bool `json:"skipRedirectFromBackend"`
	} `json:"spec"`
}

type lrpPortDoc struct {
	Port     string `json:"port"`
	Protocol string `json:"protocol"`
	Name     string `json:"name,omitempty"`
}

// TestCiliumLRPManifest: the shipped policy redirects the metadata
// service, both families, port 80, to the DaemonSet's own pods (its
// namespace, a selector its pod template's labels fit) at the local
// redirect port the tests use (lrpPort), skips the backend's own namespace
// (the node's: imdsguard's upstream), and agrees with the DaemonSet's
// configuration when that sets listen.local_redirect_port.
func TestCiliumLRPManifest(t *testing.T) {
	e := testbed.New(t)
	b, err := os.ReadFile(filepath.Join(e.Root, lrpManifestPath))
	if err != nil {
		t.Fatal(err)
	}
	var docs []lrpPolicyDoc
	for _, part := range strings.Split(string(b), "\n---\n") {
		if strings.TrimSpace(stripComments(part)) == "" {
			continue
		}
		var d lrpPolicyDoc
		if err := yaml.UnmarshalStrict([]byte(part), &d); err != nil {
			t.Fatalf("%s: %v", lrpManifestPath, err)
		}
		docs = append(docs, d)
	}
	m := loadManifest(t, e)
	podLabels := m.DaemonSet.Spec.Template.Labels
	want := map[string]bool{imds.IPv4.String(): false, imds.IPv6.String(): false}
	for _, d := range docs {
		s := d.Spec
		fe, be := s.RedirectFrontend.AddressMatcher, s.RedirectBackend
		if d.APIVersion != "cilium.io/v2" || d.Kind != "CiliumLocalRedirectPolicy" || d.Metadata.Namespace != m.DaemonSet.Namespace {
			t.Errorf("%s: %s %s in namespace %q; want a cilium.io/v2 CiliumLocalRedirectPolicy in %q", d.Metadata.Name, d.APIVersion, d.Kind, d.Metadata.Namespace, m.DaemonSet.Namespace)
		}
		if _, ok := want[fe.IP]; !ok || len(fe.ToPorts) != 1 || fe.ToPorts[0] != (lrpPortDoc{Port: strconv.Itoa(imds.Port), Protocol: "TCP"}) {
			t.Errorf("%s: frontend %s %v; want a metadata address, port 80/TCP", d.Metadata.Name, fe.IP, fe.ToPorts)
		}
		want[fe.IP] = true
		sel := be.LocalEndpointSelector.MatchLabels
		if len(sel) == 0 || !isSubset(sel, podLabels) {
			t.Errorf("%s: backend selector %v does not select the DaemonSet's pods %v", d.Metadata.Name, sel, podLabels)
		}
		if len(be.ToPorts) != 1 || be.ToPorts[0] != (lrpPortDoc{Port: strconv.Itoa(lrpPort), Protocol: "TCP"}) {
			t.Errorf("%s: backend ports %v; want %d/TCP", d.Metadata.Name, be.ToPorts, lrpPort)
		}
		if !s.SkipRedirectFromBackend {
			t.Errorf("%s: skipRedirectFromBackend is off: the node's own metadata traffic, imdsguard's upstream included, would be redirected", d.Metadata.Name)
		}
	}
	for ip, seen := range want {
		if !seen {
			t.Errorf("no policy for %s", ip)
		}
	}
	cfg, err := config.Read(strings.NewReader(m.ConfigMap.Data["imdsguard.yaml"]), manifestPath)
	if err != nil {
		t.Fatal(err)
	}
	switch p := cfg.Listen.LocalRedirectPort; p {
	case 0:
		t.Logf("%s: listen.local_redirect_port is not set: the policy needs it (%d)", manifestPath, lrpPort)
	case lrpPort:
	default:
		t.Errorf("%s: listen.local_redirect_port %d, but the policy sends pods to %d", manifestPath, p, lrpPort)
	}
	t.Logf("%d policies, backend %v port %d", len(docs), docs[0].Spec.RedirectBackend.LocalEndpointSelector.MatchLabels, lrpPort)
}

func isSubset(sub, of map[string]string) bool {
	for k, v := range sub {
		if w, ok := of[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// stripComments drops whole-line YAML comments.
func stripComments(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
