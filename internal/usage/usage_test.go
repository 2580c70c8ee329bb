package usage

import (
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/imdsguard/imdsguard/internal/audit"
	"github.com/imdsguard/imdsguard/internal/identity"
	"github.com/imdsguard/imdsguard/internal/workload"
)

func event(c *identity.Caller, method string, version audit.Version, token bool) *audit.Event {
	return &audit.Event{Caller: c, Method: method, Version: version, Token: token}
}

func TestRecord(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tab := New()
		app := &identity.Caller{UIDKnown: true, UID: 1000, User: "app", Comm: "python3", Exe: "/usr/bin/python3", PID: 10, Remote: netip.MustParseAddrPort("127.0.0.1:1")}
		agent := &identity.Caller{UIDKnown: true, UID: 1001, User: "agent", Comm: "agent", Exe: "/opt/agent", PID: 20}
		cont := &identity.Caller{Class: identity.Container, UIDKnown: true, UID: 0, Comm: "curl", Container: "abc123", Remote: netip.MustParseAddrPort("198.51.100.2:5")}
		unknown := &identity.Caller{Remote: netip.MustParseAddrPort("127.0.0.1:9"), Unknown: "gone"}
		tab.Record(event(app, "GET", audit.V1, false))
		tab.Record(event(app, "GET", audit.V1, false))
		time.Sleep(time.Minute)
		now := time.Now()
		app2 := *app
		app2.PID = 11 // the same program, restarted
		tab.Record(event(&app2, "HEAD", audit.V1, false))
		tab.Record(event(agent, "PUT", audit.NoVersion, true))
		tab.Record(event(agent, "GET", audit.V2, false))
		tab.Record(event(cont, "GET", audit.V1, false))
		tab.Record(event(unknown, "GET", audit.V2, false))
		tab.Record(event(agent, "OPTIONS", audit.NoVersion, true)) // not a metadata request
		tab.Record(event(agent, "POST", audit.NoVersion, false))   // refused before the token check

		s := tab.Snapshot()
		if len(s.Callers) != 4 {
			t.Fatalf("%d callers: %+v", len(s.Callers), s.Callers)
		}
		first := s.Callers[0]
		if first.User != "app" || first.V1 != 3 || first.V2 != 0 || first.PID != 11 || !first.LastV1.Equal(now) {
			t.Fatalf("first row %+v, want app with 3 v1 requests, pid 11", first)
		}
		byUser := map[string]Row{}
		for _, r := range s.Callers {
			byUser[r.Comm] = r
		}
		if r := byUser["agent"]; r.V1 != 0 || r.V2 != 2 || !r.LastV1.IsZero() {
			t.Errorf("agent %+v, want 2 v2 (token PUT + GET)", r)
		}
		if r := byUser["curl"]; r.Container != "abc123" || r.Source.String() != "198.51.100.2" || r.V1 != 1 {
			t.Errorf("container %+v", r)
		}
		if r := byUser[""]; r.UIDKnown || r.Source.String() != "127.0.0.1" || r.V2 != 1 {
			t.Errorf("unknown caller %+v", r)
		}
	})
}

func TestBounded(t *testing.T) {
	tab := New()
	for i := range MaxCallers + 10 {
		tab.Record(event(&identity.Caller{UIDKnown: true, UID: uint32(i)}, "GET", audit.V1, false))
	}
	if n := len(tab.Snapshot().Callers); n != MaxCallers {
		t.Fatalf("%d rows, want the bound %d", n, MaxCallers)
	}
}

// A container caller's row carries what its runtime said.
func TestRecordWorkload(t *testing.T) {
	tab := New()
	pod := &identity.Caller{Class: identity.Container, UIDKnown: true, Comm: "python3", Container: "abc", Remote: netip.MustParseAddrPort("10.0.0.7:5"),
		Workload: &workload.Workload{Runtime: "containerd", Name: "app", Image: "registry.example/app:1",
			Pod: &workload.Pod{Namespace: "prod", Name: "billing-1"}}}
	tab.Record(event(pod, "GET", audit.V1, false))
	r := tab.Snapshot().Callers[0]
	want := Key{UIDKnown: true, Comm: "python3", Container: "abc", Source: netip.MustParseAddr("10.0.0.7"),
		Runtime: "containerd", ContainerName: "app", Image: "registry.example/app:1", PodNamespace: "prod", PodName: "billing-1"}
	if r.Key != want || r.V1 != 1 {
		t.Errorf("row %+v, want %+v", r.Key, want)
	}
}
