package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"

	"github.com/imdsguard/imdsguard/internal/runtime/containerd"
	"github.com/imdsguard/imdsguard/internal/runtime/docker"
	"github.com/imdsguard/imdsguard/internal/workload"
	"github.com/imdsguard/imdsguard/tools/testbed"
)

// BenchmarkRuntimeLookup is what imdsguard pays to learn a container's
// workload from a real runtime: cold is one lookup through the runtime's
// API (what the first connection of a container waits for, up to the 100
// ms bound), cached is every later connection (the cache, kept until the
// runtime's events say the container changed).
//
//	cd tools && go test -run '^$' -bench BenchmarkRuntimeLookup ./e2e/
func BenchmarkRuntimeLookup(b *testing.B) {
	e := testbed.New(b)
	h := e.NewHost(testbed.HostOptions{})
	d := e.StartDockerd(h.HostNS)
	d.Import(e.ClientImage(), clientImage)
	dockerID := d.RunDetached("--name", "web-a", "--label", "team=payments", clientImage, "sleep", "3600")
	c := e.StartContainerd(h.HostNS)
	b.Cleanup(c.DeleteEverything)
	c.MustCtrIn(testbed.K8sNamespace, "image", "import", e.OCIArchive(e.ClientImage(), ctrImage, []string{"/bin/sh"}))
	pod := map[string]string{"io.kubernetes.pod.namespace": "prod", "io.kubernetes.pod.name": "billing-1", "io.kubernetes.pod.uid": "u1"}
	sandbox := map[string]string{"io.cri-containerd.kind": "sandbox", "app": "billing"}
	app := map[string]string{"io.cri-containerd.kind": "container", "io.kubernetes.container.name": "app"}
	for k, v := range pod {
		sandbox[k], app[k] = v, v
	}
	c.CreateIn(testbed.K8sNamespace, ctrImage, benchID(b), sandbox)
	podID := benchID(b)
	c.CreateIn(testbed.K8sNamespace, ctrImage, podID, app) // a lookup needs no task

	dr, err := docker.New(d.Sock)
	if err != nil {
		b.Fatal(err)
	}
	defer dr.Close()
	cr, err := containerd.New(c.Sock)
	if err != nil {
		b.Fatal(err)
	}
	defer cr.Close()
	for _, rc := range []struct {
		name   string
		rt     workload.Runtime
		id, cg string
	}{
		{"docker", dr, dockerID, "/docker/" + dockerID},
		{"containerd-pod", cr, podID, "/k8s.io/" + podID},
	} {
		ctx := context.Background()
		b.Run(rc.name+"/cold", func(b *testing.B) {
			for b.Loop() {
				if w, err := rc.rt.Lookup(ctx, rc.id, rc.cg); err != nil || w.Name == "" {
					b.Fatalf("%v %v", w, err)
				}
			}
		})
		b.Run(rc.name+"/cached", func(b *testing.B) {
			cache := workload.New(workload.Options{Runtimes: []workload.Runtime{rc.rt}})
			if r := cache.Find(ctx, rc.id, rc.cg); r.Workload == nil {
				b.Fatal(r.Reason)
			}
			b.ReportAllocs()
			for b.Loop() {
				cache.Find(ctx, rc.id, rc.cg)
			}
		})
	}
}

// benchID is a fresh 64-hex container id.
func benchID(tb testing.TB) string {
	tb.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return hex.EncodeToString(b)
}
