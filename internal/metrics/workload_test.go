package metrics

import (
	"fmt"
	"strings"
	"testing"

	"github.com/imdsguard/imdsguard/internal/audit"
	"github.com/imdsguard/imdsguard/internal/identity"
	"github.com/imdsguard/imdsguard/internal/workload"
)

func TestPodOwner(t *testing.T) {
	for pod, want := range map[string]string{
		"aws-node-x7k2p":           "aws-node",
		"billing-5d9c8b7f6-x2x9z":  "billing",
		"coredns-7db6d8ff4d-4xkzb": "coredns",
		"web-0":                    "web",
		"web-12":                   "web",
		"aws-node":                 "aws-node",
		"nodes-apple":              "nodes-apple", // vowels: not generated
		"ebs-csi-node-8fz2q":       "ebs-csi-node",
		"standalone":               "standalone",
		"job-abcde":                "job-abcde", // "a", "e" are not in the alphabet
	} {
		if got := PodOwner(pod); got != want {
			t.Errorf("PodOwner(%q) = %q, want %q", pod, got, want)
		}
	}
}

func TestV1ByWorkload(t *testing.T) {
	m := New(Sources{})
	v1 := func(c *identity.Caller) {
		m.Observe(&audit.Event{Caller: c, Method: "GET", Version: audit.V1, Decision: audit.Allow})
	}
	v1(&identity.Caller{Exe: "/usr/bin/python3"})
	v1(&identity.Caller{Exe: "/usr/bin/python3"})
	v1(&identity.Caller{Class: identity.Container, Container: "abc", Workload: &workload.Workload{Runtime: "docker", Name: "web-1", Image: "registry.example:5000/app:1.2@sha256:00"}})
	v1(&identity.Caller{Class: identity.Container, Container: "abc", Workload: &workload.Workload{Runtime: "containerd", Name: "aws-node",
		Pod: &workload.Pod{Namespace: "kube-system", Name: "aws-node-x7k2p"}}})
	v1(&identity.Caller{Workload: &workload.Workload{Runtime: "containerd", Name: "aws-node", // hostNetwork: still its pod
		Pod: &workload.Pod{Namespace: "kube-system", Name: "aws-node-b2c4d"}}})
	v1(&identity.Caller{Class: identity.Container, Container: "abc", WorkloadUnknown: "docker unreachable"})
	m.Observe(&audit.Event{Caller: &identity.Caller{Exe: "/usr/bin/aws"}, Method: "GET", Version: audit.V2}) // not v1
	out := scrape(t, m)
	for _, want := range []string{
		`imdsguard_imdsv1_requests_by_workload_total{kind="exe",workload="/usr/bin/python3"} 2`,
		`imdsguard_imdsv1_requests_by_workload_total{kind="image",workload="registry.example:5000/app"} 1`,
		`imdsguard_imdsv1_requests_by_workload_total{kind="pod",workload="kube-system/aws-node"} 2`,
		`imdsguard_imdsv1_requests_by_workload_total{kind="container",workload="unknown"} 1`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	if strings.Contains(out, "/usr/bin/aws") {
		t.Error("an IMDSv2 caller was counted as an IMDSv1 user")
	}
}

// The series are bounded: past MaxV1Workloads, workloads count as other.
func TestV1ByWorkloadBounded(t *testing.T) {
	m := New(Sources{})
	for i := range MaxV1Workloads + 10 {
		m.Observe(&audit.Event{Caller: &identity.Caller{Exe: fmt.Sprintf("/opt/app%d", i)}, Version: audit.V1})
	}
	out := scrape(t, m)
	if n := strings.Count(out, "imdsguard_imdsv1_requests_by_workload_total{"); n != MaxV1Workloads+1 {
		t.Errorf("%d series, want %d and other", n, MaxV1Workloads)
	}
	if !strings.Contains(out, `imdsguard_imdsv1_requests_by_workload_total{kind="exe",workload="other"} 10`) {
		t.Error("no other series with the 10 late workloads")
	}
}
