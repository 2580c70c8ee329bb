package docker

import (
	"testing"

	"github.com/imdsguard/imdsguard/internal/workload"
)

// cri-dockerd keeps a pod's annotations as annotation.KEY labels of its
// sandbox container; they count only on the kubelet's sandbox of that pod.
func TestAnnotationsOf(t *testing.T) {
	pod := &workload.Pod{Namespace: "payments", Name: "api-1", UID: "u-2"}
	sandbox := func(edit func(map[string]string)) map[string]string {
		l := map[string]string{labelDockerType: typeSandbox, workload.LabelPodNamespace: "payments", workload.LabelPodName: "api-1",
			workload.LabelPodUID: "u-2", "annotation.iam.amazonaws.com/role": "payments-api", "app": "api"}
		if edit != nil {
			edit(l)
		}
		return l
	}
	if got := annotationsOf(sandbox(nil), pod); len(got) != 1 || got["iam.amazonaws.com/role"] != "payments-api" {
		t.Errorf("the pod's sandbox: %v", got)
	}
	for name, edit := range map[string]func(map[string]string){
		"not a sandbox":   func(l map[string]string) { l[labelDockerType] = "container" },
		"no kubelet uid":  func(l map[string]string) { delete(l, workload.LabelPodUID) },
		"another pod":     func(l map[string]string) { l[workload.LabelPodName] = "api-2" },
		"another pod uid": func(l map[string]string) { l[workload.LabelPodUID] = "u-9" },
	} {
		if got := annotationsOf(sandbox(edit), pod); got != nil {
			t.Errorf("%s: %v, want nil", name, got)
		}
	}
}
