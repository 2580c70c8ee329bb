package cri

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/imdsguard/imdsguard/internal/workload"
)

// fakeCRI serves the two calls a lookup makes from fixed data, as a
// CRI-O would (its ListContainers filter matches id prefixes).
type fakeCRI struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	containers []*runtimeapi.Container
	sandboxes  map[string]*runtimeapi.PodSandboxStatus
}

func (f *fakeCRI) ListContainers(_ context.Context, req *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	var out []*runtimeapi.Container
	for _, c := range f.containers {
		if strings.HasPrefix(c.Id, req.GetFilter().GetId()) {
			out = append(out, c)
		}
	}
	return &runtimeapi.ListContainersResponse{Containers: out}, nil
}

func (f *fakeCRI) Version(context.Context, *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
	return &runtimeapi.VersionResponse{Version: "0.1.0", RuntimeName: "cri-o", RuntimeVersion: "1.30.4", RuntimeApiVersion: "v1"}, nil
}

func (f *fakeCRI) PodSandboxStatus(_ context.Context, req *runtimeapi.PodSandboxStatusRequest) (*runtimeapi.PodSandboxStatusResponse, error) {
	st, ok := f.sandboxes[req.PodSandboxId]
	if !ok {
		return nil, errors.New("no such sandbox")
	}
	return &runtimeapi.PodSandboxStatusResponse{Status: st}, nil
}

const (
	appID   = "1111111111111111111111111111111111111111111111111111111111111111"
	appID2  = "1111111111111111111111111111111111111111111111111111111111111112"
	orphan  = "2222222222222222222222222222222222222222222222222222222222222222"
	sandbox = "ffff"
	// a pod whose sandbox carries the kubelet's labels and a kube2iam
	// annotation, and a sandbox without them (not the kubelet's).
	kubeID    = "3333333333333333333333333333333333333333333333333333333333333333"
	kubeBox   = "eeee"
	strayID   = "4444444444444444444444444444444444444444444444444444444444444444"
	strayBox  = "dddd"
	roleAnnot = "iam.amazonaws.com/role"
)

func serve(t *testing.T) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "crio.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	kubelet := map[string]string{workload.LabelPodNamespace: "prod", workload.LabelPodName: "billing-1", workload.LabelPodUID: "u-1", workload.LabelContainerName: "app"}
	srv := grpc.NewServer()
	runtimeapi.RegisterRuntimeServiceServer(srv, &fakeCRI{
		containers: []*runtimeapi.Container{
			{Id: appID, PodSandboxId: sandbox, Metadata: &runtimeapi.ContainerMetadata{Name: "app"},
				Image: &runtimeapi.ImageSpec{Image: "sha256:abc", UserSpecifiedImage: "registry.example/app:1"}, Labels: kubelet},
			{Id: appID2, PodSandboxId: sandbox, Metadata: &runtimeapi.ContainerMetadata{Name: "sidecar"}, Labels: kubelet},
			{Id: orphan, PodSandboxId: "gone", Metadata: &runtimeapi.ContainerMetadata{Name: "lost"}, Labels: kubelet},
			{Id: kubeID, PodSandboxId: kubeBox, Metadata: &runtimeapi.ContainerMetadata{Name: "api"}, Labels: kubelet},
			{Id: strayID, PodSandboxId: strayBox, Metadata: &runtimeapi.ContainerMetadata{Name: "api"}, Labels: kubelet},
		},
		sandboxes: map[string]*runtimeapi.PodSandboxStatus{sandbox: {
			Id:       sandbox,
			Metadata: &runtimeapi.PodSandboxMetadata{Name: "billing-1", Namespace: "prod", Uid: "u-1"},
			Labels:   map[string]string{"app": "billing", workload.LabelPodName: "billing-1"},
		}, kubeBox: {
			Id:          kubeBox,
			Metadata:    &runtimeapi.PodSandboxMetadata{Name: "api-1", Namespace: "payments", Uid: "u-2"},
			Labels:      map[string]string{"app": "api", workload.LabelPodNamespace: "payments", workload.LabelPodName: "api-1", workload.LabelPodUID: "u-2"},
			Annotations: map[string]string{roleAnnot: "payments-api", "kubernetes.io/config.source": "file"},
		}, strayBox: {
			Id:          strayBox,
			Metadata:    &runtimeapi.PodSandboxMetadata{Name: "api-2", Namespace: "payments", Uid: "u-3"},
			Labels:      map[string]string{"app": "api"},
			Annotations: map[string]string{roleAnnot: "payments-api"},
		}},
	})
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return sock
}

func TestLookup(t *testing.T) {
	r, err := New(workload.CRIO, serve(t))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	w, err := r.Lookup(ctx, appID, "")
	if err != nil {
		t.Fatal(err)
	}
	if w.Runtime != workload.CRIO || w.Name != "app" || w.Image != "registry.example/app:1" || w.Pod == nil ||
		w.Pod.Namespace != "prod" || w.Pod.Name != "billing-1" || w.Pod.UID != "u-1" || len(w.Pod.Labels) != 1 || w.Pod.Labels["app"] != "billing" {
		t.Errorf("workload %+v, pod %+v", w, w.Pod)
	}
	// The sandbox is gone: the pod comes from the kubelet's labels, with no pod labels.
	if w, err := r.Lookup(ctx, orphan, ""); err != nil || w.Pod == nil || w.Pod.Name != "billing-1" || len(w.Pod.Labels) != 0 {
		t.Errorf("orphan: %+v, %v", w, err)
	}
	// A prefix is not the container.
	if _, err := r.Lookup(ctx, "1111", ""); !errors.Is(err, workload.ErrNotFound) {
		t.Errorf("prefix: %v, want ErrNotFound", err)
	}
	if err := r.Watch(ctx, nil, nil); !errors.Is(err, workload.ErrNoEvents) {
		t.Errorf("Watch = %v, want ErrNoEvents", err)
	}
}

// A pod's annotations come from its sandbox, and only from a sandbox the
// kubelet made (its labels are there).
func TestLookupAnnotations(t *testing.T) {
	r, err := New(workload.CRIO, serve(t))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	w, err := r.Lookup(ctx, kubeID, "")
	if err != nil {
		t.Fatal(err)
	}
	if w.Pod == nil || w.Pod.Annotations[roleAnnot] != "payments-api" || len(w.Pod.Annotations) != 2 || w.Pod.Labels["app"] != "api" {
		t.Errorf("kubelet's sandbox: pod %+v", w.Pod)
	}
	if c := w.Clone(); c.Pod.Annotations[roleAnnot] != "payments-api" {
		t.Errorf("Clone lost the annotations: %+v", c.Pod)
	} else if c.Pod.Annotations[roleAnnot] = "x"; w.Pod.Annotations[roleAnnot] != "payments-api" {
		t.Error("Clone shares the annotations map")
	}
	w, err = r.Lookup(ctx, strayID, "")
	if err != nil {
		t.Fatal(err)
	}
	if w.Pod == nil || w.Pod.Annotations != nil {
		t.Errorf("a sandbox without the kubelet's labels: pod %+v, want no annotations", w.Pod)
	}
	if w, _ := r.Lookup(ctx, appID, ""); w.Pod.Annotations != nil {
		t.Errorf("sandbox without kubelet uid label: annotations %v", w.Pod.Annotations)
	}
}

// Version is what imdsguard check asks to see that the runtime answers.
func TestVersion(t *testing.T) {
	r, err := New(workload.CRIO, serve(t))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if v, err := r.Version(ctx); err != nil || v != "cri-o 1.30.4 (CRI v1)" {
		t.Errorf("Version = %q, %v", v, err)
	}
	none, err := New(workload.CRIO, filepath.Join(t.TempDir(), "none.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer none.Close()
	if _, err := none.Version(ctx); err == nil || !strings.Contains(err.Error(), "none.sock") {
		t.Errorf("Version without a socket = %v", err)
	}
}

// No socket: a lookup fails at once with the reason, never hangs.
func TestLookupNoSocket(t *testing.T) {
	r, err := New(workload.CRIO, filepath.Join(t.TempDir(), "none.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	start := time.Now()
	_, err = r.Lookup(context.Background(), appID, "")
	if err == nil || errors.Is(err, workload.ErrNotFound) || !strings.Contains(err.Error(), "none.sock") || time.Since(start) > time.Second {
		t.Errorf("Lookup = %v after %s", err, time.Since(start))
	}
}
