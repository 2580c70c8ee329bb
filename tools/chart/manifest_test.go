package chart_test

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/imdsguard/imdsguard/internal/config"
	"github.com/imdsguard/imdsguard/tools/chart"
)

// TestDefaultsAreTheManifest renders the chart with its default values and
// wants the objects of packaging/kubernetes/daemonset.yaml: the same
// ServiceAccount, a ConfigMap whose imdsguard.yaml the daemon reads as the
// same configuration, and the same DaemonSet in every field, the pod spec
// whole, with only Helm's standard labels added. The manifest is the
// reference: a change there that the chart does not follow fails here.
func TestDefaultsAreTheManifest(t *testing.T) {
	b := newBench(t)
	man := loadManifest(t, b.root)
	o := b.render(t, nil)
	if got := strings.Join(o.Kinds, ","); got != "ServiceAccount,ConfigMap,DaemonSet" {
		t.Errorf("rendered %s, want ServiceAccount,ConfigMap,DaemonSet (no Namespace, no RBAC, no Service unless asked)", got)
	}
	if o.ServiceAccount == nil || o.ConfigMap == nil || o.DaemonSet == nil {
		t.FailNow()
	}

	sa := o.ServiceAccount.DeepCopy()
	sa.Labels = labelsAside(t, "ServiceAccount labels", sa.Labels, man.ServiceAccount.Labels)
	sameAs(t, "ServiceAccount", sa, man.ServiceAccount)

	sameConfigMap(t, o, man.ConfigMap.DeepCopy())
	sameDaemonSet(t, o, man.DaemonSet.DeepCopy())
}

// sameConfigMap wants the same keys, each the same configuration to the
// daemon's loader (the chart's is toYaml of a tree, without the comments),
// and the rest of the object equal.
func sameConfigMap(t *testing.T, o *chart.Objects, want *corev1.ConfigMap) {
	t.Helper()
	got := o.ConfigMap.DeepCopy()
	got.Labels = labelsAside(t, "ConfigMap labels", got.Labels, want.Labels)
	if len(got.Data) != 1 || len(want.Data) != 1 {
		t.Errorf("ConfigMap keys: chart %d, manifest %d, want one each (%s)", len(got.Data), len(want.Data), chart.ConfigKey)
	}
	cfg, err := o.Config()
	if err != nil {
		t.Fatalf("the chart's configuration: %v", err)
	}
	wantCfg, err := config.Read(strings.NewReader(want.Data[chart.ConfigKey]), manifestPath)
	if err != nil {
		t.Fatalf("the manifest's configuration: %v", err)
	}
	if d := configDiff(*wantCfg, *cfg); d != "" {
		t.Errorf("%s: the daemon reads another configuration from the chart's than from the manifest's (- manifest, + chart):\n%s", chart.ConfigKey, d)
	}
	got.Data, want.Data = nil, nil
	sameAs(t, "ConfigMap (beside its data)", got, want)
}

// sameDaemonSet compares the DaemonSet part by part (for a readable
// failure), then whole, labels aside.
func sameDaemonSet(t *testing.T, o *chart.Objects, want *appsv1.DaemonSet) {
	t.Helper()
	got := o.DaemonSet.DeepCopy()
	got.Labels = labelsAside(t, "DaemonSet labels", got.Labels, want.Labels)
	got.Spec.Selector.MatchLabels = labelsAside(t, "DaemonSet selector", got.Spec.Selector.MatchLabels, want.Spec.Selector.MatchLabels)
	got.Spec.Template.Labels = labelsAside(t, "pod labels", got.Spec.Template.Labels, want.Spec.Template.Labels)
	g, w := got.Spec.Template.Spec, want.Spec.Template.Spec
	for _, p := range []struct {
		name      string
		got, want any
	}{
		{"updateStrategy", got.Spec.UpdateStrategy, want.Spec.UpdateStrategy},
		{"pod annotations", got.Spec.Template.Annotations, want.Spec.Template.Annotations},
		{"containers", g.Containers, w.Containers},
		{"initContainers", g.InitContainers, w.InitContainers},
		{"volumes", g.Volumes, w.Volumes},
		{"pod securityContext", g.SecurityContext, w.SecurityContext},
		{"hostNetwork, hostPID, hostIPC", []bool{g.HostNetwork, g.HostPID, g.HostIPC}, []bool{w.HostNetwork, w.HostPID, w.HostIPC}},
		{"serviceAccountName", g.ServiceAccountName, w.ServiceAccountName},
		{"automountServiceAccountToken", g.AutomountServiceAccountToken, w.AutomountServiceAccountToken},
		{"priorityClassName", g.PriorityClassName, w.PriorityClassName},
		{"tolerations", g.Tolerations, w.Tolerations},
		{"nodeSelector", g.NodeSelector, w.NodeSelector},
		{"affinity", g.Affinity, w.Affinity},
		{"terminationGracePeriodSeconds", g.TerminationGracePeriodSeconds, w.TerminationGracePeriodSeconds},
	} {
		sameAs(t, p.name, p.got, p.want)
	}
	if !t.Failed() {
		sameAs(t, "DaemonSet (whole)", got, want)
	}
}
