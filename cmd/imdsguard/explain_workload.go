package main

import (
	"strings"

	"github.com/imdsguard/imdsguard/internal/workload"
)

// given reports whether any flag describes a container.
func (w *workloadFlags) given() bool {
	return w.runtime != "" || w.name != "" || w.image != "" || len(w.labels) > 0 ||
		w.podNamespace != "" || w.podName != "" || w.podUID != "" || len(w.podLabels) > 0 || len(w.podAnnots) > 0 || w.hostNetwork
}

// workload is the container the flags describe, nil when none do. A pod
// needs its namespace and name; its container carries the kubelet's labels
// for them, as a real one does.
func (w *workloadFlags) workload() (*workload.Workload, error) {
	if !w.given() {
		return nil, nil
	}
	labels, err := parseLabels("--label", w.labels)
	if err != nil {
		return nil, err
	}
	out := &workload.Workload{Runtime: w.runtime, Name: w.name, Image: w.image, Labels: labels}
	pod := w.podNamespace != "" || w.podName != "" || w.podUID != "" || len(w.podLabels) > 0 || len(w.podAnnots) > 0
	if out.Runtime == "" {
		out.Runtime = workload.Docker
		if pod {
			out.Runtime = workload.Containerd
		}
	}
	if !pod {
		return out, nil
	}
	if w.podNamespace == "" || w.podName == "" {
		return nil, usageError("a pod needs --pod-namespace and --pod-name")
	}
	podLabels, err := parseLabels("--pod-label", w.podLabels)
	if err != nil {
		return nil, err
	}
	annotations, err := parseLabels("--pod-annotation", w.podAnnots)
	if err != nil {
		return nil, err
	}
	labels[workload.LabelPodNamespace], labels[workload.LabelPodName] = w.podNamespace, w.podName
	if w.podUID != "" {
		labels[workload.LabelPodUID] = w.podUID
	}
	if w.name != "" {
		labels[workload.LabelContainerName] = w.name
	}
	out.Pod = &workload.Pod{Namespace: w.podNamespace, Name: w.podName, UID: w.podUID, Labels: podLabels, Annotations: annotations}
	return out, nil
}

// parseLabels reads K=V flags.
func parseLabels(flag string, list []string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range list {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usageError("%s %q: write KEY=VALUE", flag, kv)
		}
		out[k] = v
	}
	return out, nil
}
