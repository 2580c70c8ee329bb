// Package containerd looks containers up in containerd, through its gRPC
// API with containerd's own generated API client
// (github.com/containerd/containerd/api), and follows its container
// events. Kubernetes containers live in the "k8s.io" namespace and carry
// the kubelet's labels; their pod's labels are on the pod's sandbox
// container, which containerd's CRI plugin labels
// io.cri-containerd.kind=sandbox, and their pod's annotations in that
// container's sandbox metadata extension.
//
// The full client (github.com/containerd/containerd/v2/client) wraps the
// same API with image, snapshot, content and task machinery imdsguard never
// uses; the API module alone is what this needs (Containers.Get and List,
// Namespaces.List, Events.Subscribe). The only thing written here that the
// full client would have done is the namespace header.
package containerd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	_ "github.com/containerd/containerd/api/events" // registers the event types for anypb
	containersapi "github.com/containerd/containerd/api/services/containers/v1"
	eventsapi "github.com/containerd/containerd/api/services/events/v1"
	namespacesapi "github.com/containerd/containerd/api/services/namespaces/v1"
	versionapi "github.com/containerd/containerd/api/services/version/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/imdsguard/imdsguard/internal/runtime/unixgrpc"
	"github.com/imdsguard/imdsguard/internal/workload"
)

// Labels containerd's CRI plugin sets.
const (
	labelKind    = "io.cri-containerd.kind"
	kindSandbox  = "sandbox"
	k8sNamespace = "k8s.io"
	nsHeader     = "containerd-namespace" // containerd's namespace, as its client sends it
	nsListMaxAge = 30 * time.Second
)

// Runtime is containerd at one socket.
type Runtime struct {
	socket     string
	conn       *grpc.ClientConn
	containers containersapi.ContainersClient
	namespaces namespacesapi.NamespacesClient
	events     eventsapi.EventsClient
	version    versionapi.VersionClient

	mu       sync.Mutex
	nsList   []string
	nsListAt time.Time
}

// New returns containerd at socket. It does not connect: a socket that is
// not there makes each lookup fail, and the cache says why. A restarted
// containerd is reconnected within two seconds.
func New(socket string) (*Runtime, error) {
	conn, err := unixgrpc.New(socket)
	if err != nil {
		return nil, fmt.Errorf("containerd client for %s: %w", socket, err)
	}
	return &Runtime{
		socket:     socket,
		conn:       conn,
		containers: containersapi.NewContainersClient(conn),
		namespaces: namespacesapi.NewNamespacesClient(conn),
		events:     eventsapi.NewEventsClient(conn),
		version:    versionapi.NewVersionClient(conn),
	}, nil
}

// Name implements workload.Runtime.
func (*Runtime) Name() string { return workload.Containerd }

// Close releases the connection.
func (r *Runtime) Close() error { return r.conn.Close() }

// Version asks containerd for its version (the Version service): the
// cheapest call that proves it answers, as imdsguard check uses it.
func (r *Runtime) Version(ctx context.Context) (string, error) {
	v, err := r.version.Version(ctx, &emptypb.Empty{})
	if err != nil {
		return "", fmt.Errorf("containerd at %s: version: %w", r.socket, err)
	}
	return "containerd " + v.GetVersion(), nil
}

func inNamespace(ctx context.Context, ns string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, nsHeader, ns)
}

// Lookup implements workload.Runtime: the container is looked for in the
// namespace its cgroup names, then "k8s.io", then every other namespace.
func (r *Runtime) Lookup(ctx context.Context, id, cgroup string) (*workload.Workload, error) {
	tried := map[string]bool{}
	try := func(ns string) (*workload.Workload, error) {
		if ns == "" || tried[ns] {
			return nil, workload.ErrNotFound
		}
		tried[ns] = true
		return r.get(ctx, ns, id)
	}
	for _, ns := range []string{workload.ContainerdNamespace(cgroup, id), k8sNamespace} {
		if w, err := try(ns); !errors.Is(err, workload.ErrNotFound) {
			return w, err
		}
	}
	all, err := r.namespaceList(ctx, false)
	if err != nil {
		return nil, err
	}
	for _, ns := range all {
		if w, err := try(ns); !errors.Is(err, workload.ErrNotFound) {
			return w, err
		}
	}
	return nil, fmt.Errorf("containerd at %s, namespaces %s: %w", r.socket, strings.Join(slices.Sorted(maps.Keys(tried)), ", "), workload.ErrNotFound)
}

// get looks container id up in namespace ns.
func (r *Runtime) get(ctx context.Context, ns, id string) (*workload.Workload, error) {
	resp, err := r.containers.Get(inNamespace(ctx, ns), &containersapi.GetContainerRequest{ID: id})
	if status.Code(err) == codes.NotFound {
		return nil, workload.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("containerd at %s: %w", r.socket, err)
	}
	c := resp.GetContainer()
	w := &workload.Workload{Runtime: workload.Containerd, ID: c.GetID(), Image: c.GetImage(), Labels: maps.Clone(c.GetLabels())}
	if w.Labels == nil {
		w.Labels = map[string]string{}
	}
	w.Name = containerName(w)
	if w.Pod = workload.PodOf(w.Labels); w.Pod != nil {
		r.sandbox(ctx, ns, w.Pod)
	}
	return w, nil
}

// containerName is the kubelet's container name, nerdctl's name, or the
// containerd id (which ctr users choose).
func containerName(w *workload.Workload) string {
	for _, k := range []string{workload.LabelContainerName, "nerdctl/name"} {
		if n := w.Labels[k]; n != "" {
			return n
		}
	}
	return w.ID
}

// sandbox completes pod from its sandbox container: the pod's labels,
// without the ones the kubelet and the CRI plugin add, and its annotations
// (sandboxAnnotations). Without a sandbox the pod has no labels and no
// annotations.
func (r *Runtime) sandbox(ctx context.Context, ns string, pod *workload.Pod) {
	filter := label(labelKind, kindSandbox) + "," + label(workload.LabelPodNamespace, pod.Namespace) + "," + label(workload.LabelPodName, pod.Name)
	if pod.UID != "" {
		filter += "," + label(workload.LabelPodUID, pod.UID)
	}
	resp, err := r.containers.List(inNamespace(ctx, ns), &containersapi.ListContainersRequest{Filters: []string{filter}})
	pod.Labels = map[string]string{}
	if err != nil || len(resp.GetContainers()) == 0 {
		return
	}
	sb := resp.GetContainers()[0]
	for k, v := range sb.GetLabels() {
		if !strings.HasPrefix(k, "io.kubernetes.pod.") && !strings.HasPrefix(k, "io.cri-containerd.") {
			pod.Labels[k] = v
		}
	}
	if workload.KubeletSandbox(sb.GetLabels()) {
		pod.Annotations = sandboxAnnotations(sb.GetExtensions()[sandboxMetadata])
	}
}

// sandboxMetadata is the extension where containerd's CRI plugin keeps a
// sandbox's metadata (1.x and 2.x alike): typeurl-encoded JSON,
// {"Version":"v1","Metadata":{"Config":<the CRI PodSandboxConfig>,...}}.
const sandboxMetadata = "io.cri-containerd.sandbox.metadata"

// sandboxAnnotations reads the pod's annotations, as the kubelet gave them
// to the CRI plugin, from the sandbox's metadata extension: never nil, and
// empty when the extension is missing or unreadable.
func sandboxAnnotations(ext *anypb.Any) map[string]string {
	var md struct {
		Version  string
		Metadata struct {
			Config struct {
				Annotations map[string]string `json:"annotations"`
			}
		}
	}
	if ext == nil || json.Unmarshal(ext.GetValue(), &md) != nil || md.Metadata.Config.Annotations == nil {
		return map[string]string{}
	}
	return md.Metadata.Config.Annotations
}

// label is a containerd filter on a label's exact value.
func label(k, v string) string {
	return "labels." + strconv.Quote(k) + "==" + strconv.Quote(v)
}

// namespaceList returns containerd's namespaces, listed at most every 30 s
// unless fresh is set.
func (r *Runtime) namespaceList(ctx context.Context, fresh bool) ([]string, error) {
	r.mu.Lock()
	if !fresh && r.nsList != nil && time.Since(r.nsListAt) < nsListMaxAge {
		defer r.mu.Unlock()
		return r.nsList, nil
	}
	r.mu.Unlock()
	resp, err := r.namespaces.List(ctx, &namespacesapi.ListNamespacesRequest{})
	if err != nil {
		return nil, fmt.Errorf("containerd at %s: list namespaces: %w", r.socket, err)
	}
	var names []string
	for _, ns := range resp.GetNamespaces() {
		names = append(names, ns.GetName())
	}
	r.mu.Lock()
	r.nsList, r.nsListAt = names, time.Now()
	r.mu.Unlock()
	return names, nil
}
