package main

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"

	"github.com/imdsguard/imdsguard/internal/roles"
	"github.com/imdsguard/imdsguard/internal/workload"
	"github.com/imdsguard/imdsguard/policy"
)

type recordBroker struct {
	mu                 sync.Mutex
	prefetched, forgot []string
}

func (b *recordBroker) Prefetch(s roles.Session) {
	b.mu.Lock()
	b.prefetched = append(b.prefetched, s.Name)
	b.mu.Unlock()
}
func (b *recordBroker) Forget(s roles.Session) {
	b.mu.Lock()
	b.forgot = append(b.forgot, s.Name)
	b.mu.Unlock()
}

// A pod's containers and sandbox appearing prefetch its one session; the
// session is forgotten when the last of them is gone. A pod the policy
// keeps from iam/, or whose namespace may not take the role, is not
// prefetched.
func TestPrefetcher(t *testing.T) {
	pod := func(ns, name, role string) *workload.Workload {
		return &workload.Workload{Runtime: workload.Containerd, Name: "app", Labels: map[string]string{},
			Pod: &workload.Pod{Namespace: ns, Name: name, UID: "u", Labels: map[string]string{}, Annotations: map[string]string{roles.AnnotationRole: role}}}
	}
	live := map[string]*workload.Workload{
		"sandbox": pod("payments", "api-1", "payments-api"),
		"app":     pod("payments", "api-1", "payments-api"),
		"other":   pod("default", "web", "payments-api"),
		"denied":  pod("locked", "x", "payments-api"),
	}
	cfg := roles.DefaultConfig()
	cfg.BaseARN = "arn:aws:iam::123456789012:role/"
	cfg.Namespaces = map[string][]string{"payments": {"payments-*"}, "locked": {"*"}}
	res := roles.NewResolver(cfg)
	pol, _, err := policy.Compile(policy.Config{Rules: []policy.RuleConfig{
		{Name: "locked", Match: &policy.MatchConfig{Pods: &policy.PodSelector{Namespaces: []string{"locked"}}}, Allow: []string{"/**"}, Deny: []string{"/meta-data/iam/**"}},
		{Name: "all", Match: &policy.MatchConfig{}, Allow: []string{"/**"}},
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b := &recordBroker{}
	var mu sync.Mutex
	p := newPrefetcher(func(_ context.Context, id string) *workload.Workload { mu.Lock(); defer mu.Unlock(); return live[id] },
		func() *policy.Policy { return pol }, func() *roles.Resolver { return res }, b, slog.New(slog.DiscardHandler))
	for _, id := range []string{"sandbox", "app", "other", "denied"} {
		p.update(id)
	}
	if !slices.Equal(b.prefetched, []string{"payments.api-1", "payments.api-1"}) {
		t.Errorf("prefetched %v", b.prefetched)
	}
	mu.Lock()
	delete(live, "app")
	mu.Unlock()
	p.update("app")
	if len(b.forgot) != 0 {
		t.Errorf("forgot %v while the sandbox still holds the session", b.forgot)
	}
	mu.Lock()
	delete(live, "sandbox")
	mu.Unlock()
	p.update("sandbox")
	p.update("other") // still there, no role: nothing to forget
	if !slices.Equal(b.forgot, []string{"payments.api-1"}) {
		t.Errorf("forgot %v", b.forgot)
	}
}
