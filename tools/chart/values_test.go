package chart_test

import (
	"maps"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/imdsguard/imdsguard/internal/config"
	"github.com/imdsguard/imdsguard/tools/chart"
)

// TestValues renders the chart with each value changed and checks that the
// change lands where it should, and that the configuration the daemon
// reads stays valid.
func TestValues(t *testing.T) {
	b := newBench(t)
	defaults := b.render(t, nil)
	defCfg, err := defaults.Config()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		values m
		check  func(t *testing.T, o *chart.Objects, cfg *config.Config)
	}{
		{"image", m{"image": m{"repository": "registry.example/imdsguard", "tag": "v1.2.3", "pullPolicy": "Always"}},
			wantImage("registry.example/imdsguard:v1.2.3", corev1.PullAlways)},
		{"image by digest", m{"image": m{"repository": "registry.example/imdsguard", "digest": "sha256:" + strings.Repeat("ab", 32)}},
			wantImage("registry.example/imdsguard@sha256:"+strings.Repeat("ab", 32), corev1.PullIfNotPresent)},
		{"resources", m{"resources": m{"requests": m{"cpu": "50m", "memory": "64Mi"}, "limits": m{"memory": "256Mi"}}},
			wantResources("50m", "64Mi", "256Mi")},
		{"a policy of one rule", m{"config": m{"policy": m{"rules": []any{
			m{"name": "only-placement", "match": m{}, "allow": []any{"/meta-data/placement/**"}, "imds_v1": "reject"},
		}}}}, wantOnlyRule(defCfg, "only-placement")},
		{"metrics", m{"metrics": m{"enabled": true, "port": 9990}}, wantMetrics("0.0.0.0:9990", false)},
		{"metrics and a ServiceMonitor", m{"metrics": m{"enabled": true, "port": 9990}, "serviceMonitor": m{"enabled": true, "labels": m{"release": "prom"}}},
			wantMetrics("0.0.0.0:9990", true)},
		{"tolerations replaced", m{"tolerations": []any{m{"key": "dedicated", "operator": "Equal", "value": "imds", "effect": "NoSchedule"}}},
			wantTolerations(corev1.Toleration{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "imds", Effect: corev1.TaintEffectNoSchedule})},
		{"no priority class", m{"priorityClassName": ""}, func(t *testing.T, o *chart.Objects, _ *config.Config) {
			if pc := o.DaemonSet.Spec.Template.Spec.PriorityClassName; pc != "" {
				t.Errorf("priorityClassName %q, want none", pc)
			}
		}},
		{"scheduling and pod metadata", m{
			"nodeSelector":   m{"kubernetes.io/os": "linux"},
			"affinity":       m{"nodeAffinity": m{"requiredDuringSchedulingIgnoredDuringExecution": m{"nodeSelectorTerms": []any{m{"matchExpressions": []any{m{"key": "eks.amazonaws.com/compute-type", "operator": "NotIn", "values": []any{"fargate"}}}}}}}},
			"podAnnotations": m{"example.com/owner": "platform"},
			"podLabels":      m{"team": "platform"},
		}, wantScheduling},
		{"OnDelete updates (rollingUpdate removed with null)", m{"updateStrategy": m{"type": "OnDelete", "rollingUpdate": nil}}, func(t *testing.T, o *chart.Objects, _ *config.Config) {
			if s := o.DaemonSet.Spec.UpdateStrategy; s.Type != appsv1.OnDeleteDaemonSetStrategyType || s.RollingUpdate != nil {
				t.Errorf("updateStrategy %+v, want OnDelete alone", s)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := b.render(t, c.values)
			cfg, err := o.Config()
			if err != nil {
				t.Fatalf("the daemon would refuse the rendered configuration: %v", err)
			}
			c.check(t, o, cfg)
		})
	}
}

// TestReleaseNames: another release name and namespace name every object,
// and the pod finds its ServiceAccount and ConfigMap by those names.
func TestReleaseNames(t *testing.T) {
	b := newBench(t)
	out, err := chart.Render(b.helm, b.dir, chart.Release{Name: "guard", Namespace: "kube-system"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	o, err := chart.Decode(out)
	if err != nil {
		t.Fatal(err)
	}
	pod := o.DaemonSet.Spec.Template.Spec
	for what, meta := range map[string]struct{ name, ns string }{
		"ServiceAccount": {o.ServiceAccount.Name, o.ServiceAccount.Namespace},
		"ConfigMap":      {o.ConfigMap.Name, o.ConfigMap.Namespace},
		"DaemonSet":      {o.DaemonSet.Name, o.DaemonSet.Namespace},
	} {
		if meta.name != "guard-imdsguard" || meta.ns != "kube-system" {
			t.Errorf("%s %s/%s, want kube-system/guard-imdsguard", what, meta.ns, meta.name)
		}
	}
	if pod.ServiceAccountName != o.ServiceAccount.Name {
		t.Errorf("pod's serviceAccountName %q, want %q", pod.ServiceAccountName, o.ServiceAccount.Name)
	}
	for _, v := range pod.Volumes {
		if v.ConfigMap != nil && v.ConfigMap.Name != o.ConfigMap.Name {
			t.Errorf("volume %s: ConfigMap %q, want %q", v.Name, v.ConfigMap.Name, o.ConfigMap.Name)
		}
	}
	sel := o.DaemonSet.Spec.Selector.MatchLabels
	if sel["app.kubernetes.io/instance"] != "guard" || !subset(sel, o.DaemonSet.Spec.Template.Labels) {
		t.Errorf("selector %v: want the release's instance label, and the pods to carry it (pod labels %v)", sel, o.DaemonSet.Spec.Template.Labels)
	}
}

type check = func(t *testing.T, o *chart.Objects, cfg *config.Config)

// wantImage: the daemon and its init container run the same image.
func wantImage(image string, pull corev1.PullPolicy) check {
	return func(t *testing.T, o *chart.Objects, _ *config.Config) {
		pod := o.DaemonSet.Spec.Template.Spec
		for _, c := range slices.Concat(pod.InitContainers, pod.Containers) {
			if c.Image != image || c.ImagePullPolicy != pull {
				t.Errorf("container %s: image %s (%s), want %s (%s)", c.Name, c.Image, c.ImagePullPolicy, image, pull)
			}
		}
	}
}

func wantResources(cpu, mem, memLimit string) check {
	return func(t *testing.T, o *chart.Objects, _ *config.Config) {
		want := corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem)},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(memLimit)},
		}
		pod := o.DaemonSet.Spec.Template.Spec
		for _, c := range slices.Concat(pod.InitContainers, pod.Containers) {
			sameAs(t, "resources of "+c.Name, c.Resources, want)
		}
	}
}

// wantOnlyRule: the rule list is replaced whole (Helm merges maps, not
// lists), and nothing else of the configuration moved.
func wantOnlyRule(def *config.Config, name string) check {
	return func(t *testing.T, _ *chart.Objects, cfg *config.Config) {
		if len(cfg.Policy.Rules) != 1 || cfg.Policy.Rules[0].Name != name {
			t.Errorf("policy rules %+v, want only %s", cfg.Policy.Rules, name)
		}
		rest, defRest := *cfg, *def
		rest.Policy.Rules, defRest.Policy.Rules = nil, nil
		if d := configDiff(defRest, rest); d != "" {
			t.Errorf("more than the rules changed (- defaults, + rendered):\n%s", d)
		}
	}
}

// wantMetrics: metrics.listen on the node, no port declared on the
// container (a hostPort would keep a surging pod off its node), and with a
// ServiceMonitor a headless Service whose port leads to it and whose
// selector is the DaemonSet's.
func wantMetrics(listen string, monitor bool) check {
	return func(t *testing.T, o *chart.Objects, cfg *config.Config) {
		if cfg.Metrics.Listen != listen {
			t.Errorf("metrics.listen %q, want %q", cfg.Metrics.Listen, listen)
		}
		for _, c := range o.DaemonSet.Spec.Template.Spec.Containers {
			if len(c.Ports) != 0 {
				t.Errorf("container %s declares ports %v: in the node's network they become hostPorts, and a surge rollout's new pod could not be scheduled", c.Name, c.Ports)
			}
		}
		if !monitor {
			if o.Service != nil || o.ServiceMonitor != nil {
				t.Errorf("rendered %v without serviceMonitor.enabled", o.Kinds)
			}
			return
		}
		if o.Service == nil || o.ServiceMonitor == nil {
			t.Fatalf("rendered %v, want a Service and a ServiceMonitor", o.Kinds)
		}
		checkService(t, o, listen[strings.LastIndex(listen, ":")+1:])
		checkServiceMonitor(t, o)
	}
}

func checkService(t *testing.T, o *chart.Objects, port string) {
	t.Helper()
	svc := o.Service.Spec
	if svc.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("Service clusterIP %q, want None (headless)", svc.ClusterIP)
	}
	if !maps.Equal(svc.Selector, o.DaemonSet.Spec.Selector.MatchLabels) {
		t.Errorf("Service selector %v, want the DaemonSet's %v", svc.Selector, o.DaemonSet.Spec.Selector.MatchLabels)
	}
	if len(svc.Ports) != 1 || svc.Ports[0].Name != "metrics" || svc.Ports[0].TargetPort.String() != port || svc.Ports[0].Port != svc.Ports[0].TargetPort.IntVal {
		t.Errorf("Service ports %+v, want one named metrics, to and at port %s", svc.Ports, port)
	}
	if o.Service.Namespace != chart.DefaultRelease.Namespace {
		t.Errorf("Service in %q, want the release's namespace", o.Service.Namespace)
	}
}

func checkServiceMonitor(t *testing.T, o *chart.Objects) {
	t.Helper()
	sm := o.ServiceMonitor
	if !subset(sm.Spec.Selector.MatchLabels, o.Service.Labels) || len(sm.Spec.Selector.MatchExpressions) != 0 {
		t.Errorf("ServiceMonitor selector %+v does not select the Service (labels %v)", sm.Spec.Selector, o.Service.Labels)
	}
	if !slices.Equal(sm.Spec.NamespaceSelector.MatchNames, []string{o.Service.Namespace}) {
		t.Errorf("ServiceMonitor namespaces %v, want the Service's %s", sm.Spec.NamespaceSelector.MatchNames, o.Service.Namespace)
	}
	if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != "metrics" || sm.Spec.Endpoints[0].Path != "/metrics" {
		t.Errorf("ServiceMonitor endpoints %+v, want the Service's port metrics, /metrics", sm.Spec.Endpoints)
	}
	if sm.Labels["release"] != "prom" {
		t.Errorf("ServiceMonitor labels %v, want serviceMonitor.labels among them", sm.Labels)
	}
}

func wantTolerations(want ...corev1.Toleration) check {
	return func(t *testing.T, o *chart.Objects, _ *config.Config) {
		sameAs(t, "tolerations", o.DaemonSet.Spec.Template.Spec.Tolerations, want)
	}
}

func wantScheduling(t *testing.T, o *chart.Objects, _ *config.Config) {
	tpl := o.DaemonSet.Spec.Template
	if tpl.Spec.NodeSelector["kubernetes.io/os"] != "linux" {
		t.Errorf("nodeSelector %v", tpl.Spec.NodeSelector)
	}
	if a := tpl.Spec.Affinity; a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		t.Errorf("affinity %+v, want the node affinity given", a)
	}
	if tpl.Annotations["example.com/owner"] != "platform" {
		t.Errorf("pod annotations %v", tpl.Annotations)
	}
	if tpl.Labels["team"] != "platform" || !subset(o.DaemonSet.Spec.Selector.MatchLabels, tpl.Labels) {
		t.Errorf("pod labels %v: want podLabels beside the selector's", tpl.Labels)
	}
}

// subset: every label of sel is in labels, and sel is not empty.
func subset(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return len(sel) > 0
}
