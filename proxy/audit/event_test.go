package audit

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/imdsguard/imdsguard/proxy/identity"
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
