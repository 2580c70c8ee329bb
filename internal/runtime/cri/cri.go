// Package cri looks containers up through the Kubernetes Container Runtime
// Interface (k8s.io/cri-api's generated client), as CRI-O serves it on its
// socket: the container (name, image, labels, sandbox), then its pod
// sandbox (namespace, name, uid, labels). The CRI has no event stream that
// every runtime serves, so answers are kept for the cache's short TTL.
package cri

import (
	"context"
	"fmt"
	"maps"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/imdsguard/imdsguard/internal/runtime/unixgrpc"
	"github.com/imdsguard/imdsguard/internal/workload"
)

// Runtime is a CRI runtime service at one socket.
type Runtime struct {
	name   string
	socket string
	conn   *grpc.ClientConn
	rs     runtimeapi.RuntimeServiceClient
}

// New returns the CRI runtime service at socket, reported as the runtime
// name (workload.CRIO). It does not connect until the first lookup.
func New(name, socket string) (*Runtime, error) {
	conn, err := unixgrpc.New(socket)
	if err != nil {
		return nil, fmt.Errorf("CRI client for %s: %w", socket, err)
	}
	return &Runtime{name: name, socket: socket, conn: conn, rs: runtimeapi.NewRuntimeServiceClient(conn)}, nil
}

// Name implements workload.Runtime.
func (r *Runtime) Name() string { return r.name }

// Close releases the connection.
func (r *Runtime) Close() error { return r.conn.Close() }

// Version asks the runtime for its version (the CRI's Version call): the
// cheapest call that proves it answers, as imdsguard check uses it.
func (r *Runtime) Version(ctx context.Context) (string, error) {
	v, err := r.rs.Version(ctx, &runtimeapi.VersionRequest{})
	if err != nil {
		return "", fmt.Errorf("%s at %s: version: %w", r.name, r.socket, err)
	}
	return v.GetRuntimeName() + " " + v.GetRuntimeVersion() + " (CRI " + v.GetRuntimeApiVersion() + ")", nil
}

// Lookup implements workload.Runtime: ListContainers by id, then
// PodSandboxStatus of its sandbox.
func (r *Runtime) Lookup(ctx context.Context, id, _ string) (*workload.Workload, error) {
	resp, err := r.rs.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{Id: id}})
	if err != nil {
		return nil, fmt.Errorf("%s at %s: %w", r.name, r.socket, err)
	}
	var c *runtimeapi.Container
	for _, x := range resp.GetContainers() {
		if x.GetId() == id { // a runtime may match the filter as a prefix
			c = x
		}
	}
	if c == nil {
		return nil, fmt.Errorf("%s at %s: %w", r.name, r.socket, workload.ErrNotFound)
	}
	w := &workload.Workload{Runtime: r.name, ID: id, Name: c.GetMetadata().GetName(), Image: imageOf(c), Labels: maps.Clone(c.GetLabels())}
	if w.Labels == nil {
		w.Labels = map[string]string{}
	}
	w.Pod = r.pod(ctx, c.GetPodSandboxId(), w.Labels)
	return w, nil
}

// imageOf is the image as the kubelet asked for it.
func imageOf(c *runtimeapi.Container) string {
	if s := c.GetImage().GetUserSpecifiedImage(); s != "" {
		return s
	}
	if s := c.GetImage().GetImage(); s != "" {
		return s
	}
	return c.GetImageRef()
}

// pod describes the sandbox; from the container's kubelet labels, without
// pod labels, when the sandbox cannot be read. The pod's annotations
// (which the kubelet hands the runtime whole, and PodSandboxStatus returns)
// are kept when the sandbox carries the kubelet's labels.
func (r *Runtime) pod(ctx context.Context, sandbox string, labels map[string]string) *workload.Pod {
	fallback := workload.PodOf(labels)
	if sandbox == "" {
		return fallback
	}
	resp, err := r.rs.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: sandbox})
	if err != nil || resp.GetStatus().GetMetadata() == nil {
		return fallback
	}
	st := resp.GetStatus()
	p := &workload.Pod{Namespace: st.GetMetadata().GetNamespace(), Name: st.GetMetadata().GetName(), UID: st.GetMetadata().GetUid(), Labels: map[string]string{}}
	for k, v := range st.GetLabels() {
		if k != workload.LabelPodNamespace && k != workload.LabelPodName && k != workload.LabelPodUID {
			p.Labels[k] = v
		}
	}
	if workload.KubeletSandbox(st.GetLabels()) {
		p.Annotations = maps.Clone(st.GetAnnotations())
		if p.Annotations == nil {
			p.Annotations = map[string]string{}
		}
	}
	return p
}

// Watch implements workload.Runtime: the CRI's container events are not
// served by every runtime (CRI-O only with the evented PLEG), so none are
// followed.
func (r *Runtime) Watch(context.Context, func(), func(string)) error {
	return workload.ErrNoEvents
}
