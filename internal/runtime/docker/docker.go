// Package docker looks containers up in the Docker Engine, through its
// API socket and the Engine's own Go client (github.com/moby/moby/client),
// and follows its container events. The client negotiates the API version
// down to the daemon's (1.40 and later: Docker 19.03 on; Debian 12's
// docker.io 20.10 speaks 1.41).
package docker

import (
	"context"
	"fmt"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"

	"github.com/imdsguard/imdsguard/internal/workload"
)

// Runtime is the Docker Engine at one socket.
type Runtime struct {
	socket string
	cli    *client.Client
}

// New returns the Docker Engine at socket. It does not connect: a socket
// that is not there makes each lookup fail, and the cache says why.
func New(socket string) (*Runtime, error) {
	cli, err := client.New(client.WithHost("unix://"+socket), client.WithUserAgent("imdsguard"))
	if err != nil {
		return nil, fmt.Errorf("docker client for %s: %w", socket, err)
	}
	return &Runtime{socket: socket, cli: cli}, nil
}

// Name implements workload.Runtime.
func (*Runtime) Name() string { return workload.Docker }

// Close releases the client's connections.
func (r *Runtime) Close() error { return r.cli.Close() }

// Version asks the Engine for its version (GET /version): the cheapest
// call that proves it answers, as imdsguard check uses it.
func (r *Runtime) Version(ctx context.Context) (string, error) {
	v, err := r.cli.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		return "", fmt.Errorf("docker at %s: version: %w", r.socket, err)
	}
	return "Docker Engine " + v.Version + " (API " + v.APIVersion + ")", nil
}

// Lookup implements workload.Runtime: one container inspect.
func (r *Runtime) Lookup(ctx context.Context, id, _ string) (*workload.Workload, error) {
	res, err := r.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return nil, fmt.Errorf("docker at %s: %w", r.socket, workload.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	c := res.Container
	w := &workload.Workload{Runtime: workload.Docker, ID: c.ID, Name: strings.TrimPrefix(c.Name, "/"), Labels: map[string]string{}}
	if c.Config != nil {
		w.Image = c.Config.Image
		for k, v := range c.Config.Labels {
			w.Labels[k] = v
		}
	}
	// A pod's container run by cri-dockerd carries the kubelet's labels;
	// the pod's own labels are on its sandbox, which is looked up for the
	// pod's annotations only.
	w.Pod = workload.PodOf(w.Labels)
	if w.Pod != nil && w.Labels[workload.LabelContainerName] != "" {
		w.Name = w.Labels[workload.LabelContainerName]
	}
	if w.Pod != nil && w.Labels[labelSandboxID] != "" {
		w.Pod.Annotations = r.sandboxAnnotations(ctx, w.Labels[labelSandboxID], w.Pod)
	}
	return w, nil
}

// cri-dockerd's labels: the sandbox of a pod's container, the kind of a
// container, and the prefix under which it keeps the pod's annotations on
// the sandbox container.
const (
	labelSandboxID    = "io.kubernetes.sandbox.id"
	labelDockerType   = "io.kubernetes.docker.type"
	typeSandbox       = "podsandbox"
	annotationsPrefix = "annotation."
)

// sandboxAnnotations inspects the pod's sandbox container, as cri-dockerd
// made it, for the pod's annotations; nil when it is not found, is not a
// sandbox of the kubelet's for that pod, or cannot be read.
func (r *Runtime) sandboxAnnotations(ctx context.Context, id string, pod *workload.Pod) map[string]string {
	res, err := r.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil || res.Container.Config == nil {
		return nil
	}
	return annotationsOf(res.Container.Config.Labels, pod)
}

// annotationsOf reads cri-dockerd's annotation.KEY labels of a sandbox
// container, when they are those of the kubelet's sandbox of pod.
func annotationsOf(labels map[string]string, pod *workload.Pod) map[string]string {
	if labels[labelDockerType] != typeSandbox || !workload.KubeletSandbox(labels) ||
		labels[workload.LabelPodNamespace] != pod.Namespace || labels[workload.LabelPodName] != pod.Name ||
		(pod.UID != "" && labels[workload.LabelPodUID] != pod.UID) {
		return nil
	}
	out := map[string]string{}
	for k, v := range labels {
		if key, ok := strings.CutPrefix(k, annotationsPrefix); ok {
			out[key] = v
		}
	}
	return out
}

// changes are the container events after which what Lookup said may be
// stale or gone.
var changes = map[events.Action]bool{
	events.ActionCreate: true, events.ActionStart: true, events.ActionRestart: true,
	events.ActionDie: true, events.ActionDestroy: true, events.ActionRename: true, events.ActionUpdate: true,
}

// Watch implements workload.Runtime: Docker's container events.
func (r *Runtime) Watch(ctx context.Context, connected func(), changed func(string)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	res := r.cli.Events(ctx, client.EventsListOptions{Filters: make(client.Filters).Add("type", string(events.ContainerEventType))})
	select {
	case err := <-res.Err: // Events returns once the request was answered, or failed
		return fmt.Errorf("docker events at %s: %w", r.socket, err)
	default:
	}
	connected()
	for {
		select {
		case m := <-res.Messages:
			if changes[m.Action] && m.Actor.ID != "" {
				changed(m.Actor.ID)
			}
		case err := <-res.Err:
			return fmt.Errorf("docker events at %s: %w", r.socket, err)
		}
	}
}
