// Package workload tells what a container runtime says about the container
// a caller runs in: its runtime, name, image and labels and, for a
// Kubernetes container, its pod's namespace, name, uid and labels. The
// container id comes from the caller's cgroup (package identity); the rest
// is asked of the runtime that owns the container (Docker, containerd,
// CRI-O: the packages under internal/runtime speak to them), once per container,
// through a Cache that a request never waits on for longer than a small
// bound.
//
// This package is pure: it knows no runtime's protocol, only the Runtime
// interface, so that the cache, its invalidation and its bound are tested
// with fakes.
package workload

import (
	"context"
	"errors"
	"log/slog"
	"maps"
)

// Names of the runtimes, as Workload.Runtime and the configuration say them.
const (
	Docker     = "docker"
	Containerd = "containerd"
	CRIO       = "cri-o"
)

// The labels the kubelet puts on every container of a pod; a container
// that carries them is a Kubernetes container, whatever its runtime.
const (
	LabelPodNamespace  = "io.kubernetes.pod.namespace"
	LabelPodName       = "io.kubernetes.pod.name"
	LabelPodUID        = "io.kubernetes.pod.uid"
	LabelContainerName = "io.kubernetes.container.name"
)

// Workload is what the runtime that owns a container says about it.
type Workload struct {
	Runtime string            // Docker, Containerd or CRIO
	ID      string            // the container id, as in the caller's cgroup
	Name    string            // the container's name (for a pod's container, the kubelet's container name)
	Image   string            // the image as the container was created from it ("registry.example/app:1.2")
	Labels  map[string]string // the container's labels (never nil)
	Pod     *Pod              // nil: not a Kubernetes container
}

// Pod is the Kubernetes pod a container belongs to.
type Pod struct {
	Namespace string
	Name      string
	UID       string
	// Labels are the pod's own labels (app: billing), from its sandbox;
	// never nil, empty when the sandbox was not found.
	Labels map[string]string
	// Annotations are the pod's annotations as the kubelet handed them to
	// the runtime with the sandbox (CRI PodSandboxConfig.annotations): how
	// a pod asks for an IAM role (package roles). Nil unless the sandbox
	// was found and carries the kubelet's labels: a sandbox the kubelet
	// did not create counts for nothing.
	Annotations map[string]string
}

// KubeletSandbox reports whether a sandbox's labels are the kubelet's: its
// pod's namespace, name and uid.
func KubeletSandbox(labels map[string]string) bool {
	return labels[LabelPodNamespace] != "" && labels[LabelPodName] != "" && labels[LabelPodUID] != ""
}

// PodOf returns the pod named by the kubelet's labels of a container, or
// nil when they are not there.
func PodOf(labels map[string]string) *Pod {
	ns, name := labels[LabelPodNamespace], labels[LabelPodName]
	if ns == "" || name == "" {
		return nil
	}
	return &Pod{Namespace: ns, Name: name, UID: labels[LabelPodUID], Labels: map[string]string{}}
}

// LogValue implements slog.LogValuer: the workload as audit-event attributes.
func (w *Workload) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("runtime", w.Runtime),
		slog.String("container_name", w.Name),
		slog.String("image", w.Image),
	}
	if w.Pod != nil {
		attrs = append(attrs, slog.String("pod_namespace", w.Pod.Namespace), slog.String("pod_name", w.Pod.Name), slog.String("pod_uid", w.Pod.UID))
	}
	return slog.GroupValue(attrs...)
}

// Clone returns a deep copy of w.
func (w *Workload) Clone() *Workload {
	c := *w
	c.Labels = maps.Clone(w.Labels)
	if w.Pod != nil {
		p := *w.Pod
		p.Labels = maps.Clone(w.Pod.Labels)
		p.Annotations = maps.Clone(w.Pod.Annotations)
		c.Pod = &p
	}
	return &c
}

// ErrNotFound is what a Runtime's Lookup returns (wrapped or not) when the
// runtime does not know the container.
var ErrNotFound = errors.New("container not known to the runtime")

// ErrNoEvents is what a Runtime's Watch returns when the runtime has no
// event stream: its answers are then kept for a short TTL only.
var ErrNoEvents = errors.New("the runtime reports no events")

// Runtime is one container runtime's API, as the Cache uses it.
type Runtime interface {
	// Name is Docker, Containerd or CRIO.
	Name() string
	// Lookup asks the runtime about the container id; cgroup is the
	// caller's cgroup path, a hint for where to look (containerd's
	// namespace). ErrNotFound when the runtime does not know it.
	Lookup(ctx context.Context, id, cgroup string) (*Workload, error)
	// Watch follows the runtime's events until ctx ends or the stream
	// fails: it calls connected once the stream is open, then changed
	// with the id of every container the runtime reports created,
	// changed or gone. ErrNoEvents when the runtime has none.
	Watch(ctx context.Context, connected func(), changed func(id string)) error
}
