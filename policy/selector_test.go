package policy

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/imdsguard/imdsguard/internal/config/field"
	"github.com/imdsguard/imdsguard/internal/workload"
)

// workloadYAML is a container-host policy written by workload.
const workloadYAML = `
policy:
  rules:
    - name: root
      match: {users: [root]}
      allow: ["/**"]
    - name: node-agents
      match:
        pods: {namespaces: [kube-system], names: ["aws-node-*", "ebs-csi-node-*"]}
        containers: {names: ["cw-agent"], labels: {team: observability}}
      allow: ["/**"]
    - name: payments
      match:
        containers: {names: ["web-*"], images: ["registry.example/app:*"], labels: {team: payments}}
      allow: ["/meta-data/iam/**", "/meta-data/placement/**"]
    - name: billing
      match:
        pods: {namespaces: [prod-*], labels: {app: billing, tier: "*"}}
      allow: ["/meta-data/iam/**"]
    - name: others
      match: {}
      allow: ["/meta-data/placement/**"]
`

// Workloads of the tests: each is a container caller unless hostNet.
var (
	webPayments = &workload.Workload{Runtime: "docker", Name: "web-1", Image: "registry.example/app:1.2", Labels: map[string]string{"team": "payments"}}
	webOther    = &workload.Workload{Runtime: "docker", Name: "web-2", Image: "registry.example/app:1.2", Labels: map[string]string{"team": "search"}}
	webNoLabel  = &workload.Workload{Runtime: "docker", Name: "web-3", Image: "registry.example/app:1.2", Labels: map[string]string{}}
	webWrongImg = &workload.Workload{Runtime: "docker", Name: "web-4", Image: "docker.io/library/app:1.2", Labels: map[string]string{"team": "payments"}}
	cwAgent     = &workload.Workload{Runtime: "docker", Name: "cw-agent", Image: "amazon/cloudwatch-agent", Labels: map[string]string{"team": "observability"}}
	awsNode     = podWorkload("aws-node", "kube-system", "aws-node-x7k2p", map[string]string{"k8s-app": "aws-node"})
	billing     = podWorkload("app", "prod-eu", "billing-5d9c8b7f6-x2x9z", map[string]string{"app": "billing", "tier": "web"})
	billingDev  = podWorkload("app", "dev", "billing-5d9c8b7f6-x2x9z", map[string]string{"app": "billing", "tier": "web"})
	billingNoT  = podWorkload("app", "prod-eu", "billing-5d9c8b7f6-x2x9z", map[string]string{"app": "billing"})
	podNamedWeb = podWorkload("web-1", "default", "web", map[string]string{"team": "payments"}) // pod labels are not container labels
)

func podWorkload(container, ns, pod string, labels map[string]string) *workload.Workload {
	return &workload.Workload{Runtime: "containerd", Name: container, Image: "registry.example/x:1",
		Labels: map[string]string{workload.LabelPodNamespace: ns, workload.LabelPodName: pod},
		Pod:    &workload.Pod{Namespace: ns, Name: pod, UID: "u1", Labels: labels}}
}

func inContainer(w *workload.Workload) Caller {
	return Caller{Source: netip.MustParseAddr("172.17.0.5"), Interface: "docker0", Container: true, Workload: w}
}

func hostNet(uid uint32, w *workload.Workload) Caller {
	return Caller{UIDKnown: true, UID: uid, GIDs: []uint32{uid}, Source: netip.MustParseAddr("127.0.0.1"), Workload: w}
}

func TestDecideSelectors(t *testing.T) {
	p := mustCompile(t, decodeConfig(t, workloadYAML), hostNames())
	tests := []struct {
		name   string
		caller Caller
		rule   string
	}{
		{"container by name, image and label", inContainer(webPayments), "payments"},
		{"label value differs", inContainer(webOther), "others"},
		{"label missing", inContainer(webNoLabel), "others"},
		{"image differs", inContainer(webWrongImg), "others"},
		{"second selector of the match", inContainer(cwAgent), "node-agents"},
		{"pod by namespace and name glob", inContainer(awsNode), "node-agents"},
		{"pod by namespace glob and labels", inContainer(billing), "billing"},
		{"pod namespace differs", inContainer(billingDev), "others"},
		{"pod label missing (glob value needs the key)", inContainer(billingNoT), "others"},
		{"pod labels are not container labels", inContainer(podNamedWeb), "others"},
		{"runtime did not answer", inContainer(nil), "others"},
		{"hostNetwork pod: host process, matches pods", hostNet(1000, awsNode), "node-agents"},
		{"hostNetwork root: users first", hostNet(0, awsNode), "root"},
		{"--network=host container by name", hostNet(1000, webPayments), "payments"},
		{"plain host process", hostNet(1000, nil), "others"},
		{"container root is not root", Caller{UIDKnown: true, Container: true, Workload: webOther}, "others"},
	}
	for _, tt := range tests {
		if d := p.Decide(Request{Caller: tt.caller, Path: "/meta-data/iam/info"}); d.Rule != tt.rule {
			t.Errorf("%s: rule %q, want %q (%s)", tt.name, d.Rule, tt.rule, d.Reason)
		}
	}
}

// A caller no selector fits falls through to later rules and the default;
// the default's reason names the workload.
func TestDecideSelectorDefault(t *testing.T) {
	c := Config{Rules: []RuleConfig{{Name: "web", Match: &MatchConfig{Containers: &ContainerSelector{Names: []string{"web-*"}}}, Allow: []string{"/**"}}}}
	p := mustCompile(t, c, nil)
	d := p.Decide(Request{Caller: inContainer(awsNode), Path: "/"})
	if d.Allow || d.Rule != "" || !strings.Contains(d.Reason, "containerd container aws-node of pod kube-system/aws-node-x7k2p") {
		t.Errorf("%+v", d)
	}
}

func TestWildMatch(t *testing.T) {
	tests := []struct {
		pat, s string
		want   bool
	}{
		{"web-*", "web-1", true},
		{"web-*", "web-", true},
		{"web-*", "Web-1", false},
		{"registry.example/app:*", "registry.example/app:1.2", true},
		{"registry.example/app:*", "registry.example/app", false},
		{"*/app:*", "a/b/app:1", true},
		{"*", "", true},
		{"", "", true},
		{"", "x", false},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false},
		{"exact", "exact", true},
	}
	for _, tt := range tests {
		if got := wildMatch(tt.pat, tt.s); got != tt.want {
			t.Errorf("wildMatch(%q, %q) = %v", tt.pat, tt.s, got)
		}
	}
}

func TestValidateSelectors(t *testing.T) {
	rule := func(m *MatchConfig) Config {
		return Config{Rules: []RuleConfig{{Name: "r", Match: m, Allow: []string{"/**"}}}}
	}
	tests := []struct {
		name string
		m    *MatchConfig
		path string
		msg  string
	}{
		{"empty containers", &MatchConfig{Containers: &ContainerSelector{}}, "rules[0].match.containers", `images: ["*"]`},
		{"empty pods", &MatchConfig{Pods: &PodSelector{}}, "rules[0].match.pods", `namespaces: ["*"]`},
		{"empty names", &MatchConfig{Containers: &ContainerSelector{Names: []string{}}}, "rules[0].match.containers.names", "empty list"},
		{"empty name", &MatchConfig{Containers: &ContainerSelector{Names: []string{"a", ""}}}, "rules[0].match.containers.names[1]", "empty container name"},
		{"image with space", &MatchConfig{Containers: &ContainerSelector{Images: []string{"app :1"}}}, "rules[0].match.containers.images[0]", "space"},
		{"empty labels", &MatchConfig{Pods: &PodSelector{Labels: map[string]string{}}}, "rules[0].match.pods.labels", "empty map"},
		{"glob label key", &MatchConfig{Pods: &PodSelector{Labels: map[string]string{"app*": "x"}}}, "rules[0].match.pods.labels.'app*'", "exactly"},
		{"dotted label key", &MatchConfig{Containers: &ContainerSelector{Labels: map[string]string{"io.x/y z": "v"}}}, "rules[0].match.containers.labels.'io.x/y z'", "space"},
		{"control in value", &MatchConfig{Containers: &ContainerSelector{Labels: map[string]string{"team": "a\x01"}}}, "rules[0].match.containers.labels.team", "control"},
		{"empty namespace", &MatchConfig{Pods: &PodSelector{Namespaces: []string{""}}}, "rules[0].match.pods.namespaces[0]", "empty namespace"},
	}
	for _, tt := range tests {
		errs := field.Split(rule(tt.m).Validate())
		if len(errs) != 1 {
			t.Errorf("%s: %v, want one error", tt.name, errs)
			continue
		}
		var fe *field.Error
		if !errors.As(errs[0], &fe) || fe.Path != tt.path || !strings.Contains(fe.Msg, tt.msg) {
			t.Errorf("%s: %v, want %s: ...%s...", tt.name, errs[0], tt.path, tt.msg)
		}
	}
	if err := decodeConfig(t, workloadYAML).Validate(); err != nil {
		t.Errorf("workload policy: %v", err)
	}
}
