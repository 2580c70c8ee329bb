package audit

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/imdsguard/imdsguard/internal/identity"
	"github.com/imdsguard/imdsguard/internal/workload"
)

func TestEventLog(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewJSONHandler(&buf, nil)).With("log", "audit")
	ev := Event{
		Caller: &identity.Caller{Remote: netip.MustParseAddrPort("127.0.0.1:4242"), UIDKnown: true, UID: 33, User: "www-data",
			PID: 99, Comm: "php-fpm", Exe: "/usr/sbin/php-fpm"},
		Method: "GET", Path: "/latest/meta-data/iam/info", Version: V1, Decision: Deny,
		Rule: "others", Reason: "denied", Status: 403, Upstream: time.Millisecond,
	}
	ev.Log(l)
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("%v: %s", err, buf.Bytes())
	}
	caller, _ := got["caller"].(map[string]any)
	for k, want := range map[string]any{"log": "audit", "level": "WARN", "msg": "imds request", "method": "GET",
		"path": "/latest/meta-data/iam/info", "version": "v1", "decision": "deny", "rule": "others", "status": 403.0} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v", k, got[k], want)
		}
	}
	for k, want := range map[string]any{"uid": 33.0, "user": "www-data", "pid": 99.0, "comm": "php-fpm", "source": "127.0.0.1", "class": "host"} {
		if caller[k] != want {
			t.Errorf("caller.%s = %v, want %v", k, caller[k], want)
		}
	}
	buf.Reset()
	quiet := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelError}))
	ev.Log(quiet)
	if buf.Len() != 0 {
		t.Fatalf("logged below the handler's level: %s", buf.Bytes())
	}
}

// A container caller's event shows its workload, or why it has none.
func TestEventLogWorkload(t *testing.T) {
	for _, tc := range []struct {
		name   string
		caller identity.Caller
		want   map[string]any // under caller
	}{
		{"pod", identity.Caller{Class: identity.Container, Container: "abc", Workload: &workload.Workload{
			Runtime: "containerd", Name: "app", Image: "registry.example/app:1",
			Pod: &workload.Pod{Namespace: "prod", Name: "billing-1"}}},
			map[string]any{"runtime": "containerd", "container_name": "app", "image": "registry.example/app:1", "pod_namespace": "prod", "pod_name": "billing-1"}},
		{"runtime down", identity.Caller{Class: identity.Container, Container: "abc", WorkloadUnknown: "docker unreachable: connection refused"},
			map[string]any{"workload_unknown": "docker unreachable: connection refused"}},
	} {
		var buf bytes.Buffer
		ev := Event{Caller: &tc.caller, Method: "GET", Decision: Allow}
		ev.Log(slog.New(slog.NewJSONHandler(&buf, nil)))
		var got struct {
			Caller map[string]any `json:"caller"`
		}
		if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		flat := map[string]any{}
		for k, v := range got.Caller {
			flat[k] = v
		}
		if w, ok := got.Caller["workload"].(map[string]any); ok {
			for k, v := range w {
				flat[k] = v
			}
		}
		for k, v := range tc.want {
			if flat[k] != v {
				t.Errorf("%s: %s = %v, want %v (%s)", tc.name, k, flat[k], v, buf.Bytes())
			}
		}
	}
}
