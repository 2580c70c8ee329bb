package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/imdsguard/imdsguard/internal/identity"
)

func runLog(t *testing.T, every time.Duration, evs []Event) []map[string]any {
	t.Helper()
	var buf bytes.Buffer
	a := NewLog(slog.New(slog.NewJSONHandler(&buf, nil)), every)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }()
	for i := range evs {
		a.Record(&evs[i])
	}
	cancel()
	<-done
	var lines []map[string]any
	for _, l := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatalf("%v: %s", err, l)
		}
		lines = append(lines, m)
	}
	return lines
}

// Every event that matters gets its own line; routine ones one summary line
// per caller and request, with the count.
func TestLogSummarizesRoutineEvents(t *testing.T) {
	app := &identity.Caller{UIDKnown: true, UID: 1000, Comm: "app", Remote: netip.MustParseAddrPort("127.0.0.1:1000")}
	app2 := *app // the same program on another connection
	app2.Remote = netip.MustParseAddrPort("127.0.0.1:1001")
	cont := &identity.Caller{Class: identity.Container, Remote: netip.MustParseAddrPort("198.51.100.2:5")}
	v2 := func(c *identity.Caller, path string) Event {
		return Event{Caller: c, Method: "GET", Path: path, Version: V2, Decision: Allow, Status: 200}
	}
	var evs []Event
	for range 5 {
		evs = append(evs, v2(app, "/latest/meta-data/instance-id"), v2(&app2, "/latest/meta-data/instance-id"))
	}
	evs = append(evs,
		v2(cont, "/latest/meta-data/instance-id"),
		v2(app, "/latest/meta-data/iam/security-credentials/role"),                                                     // a credential read
		v2(app, "/latest/meta-data/IAM/Security-Credentials/role"),                                                     // in any case
		v2(app, "/latest/meta-data/identity-credentials/ec2/info"),                                                     // the instance's own
		Event{Caller: app, Method: "GET", Path: "/latest/meta-data/ami-id", Version: V1, Decision: Allow, Status: 200}, // IMDSv1
		Event{Caller: app, Method: "GET", Path: "/latest/user-data", Version: V2, Decision: Deny, Status: 403},
		Event{Caller: app, Method: "GET", Target: "/%zz", Decision: Reject, Status: 400},
		Event{Caller: app, Method: "PUT", Path: "/latest/api/token", Decision: Allow, Status: 200, Token: true},
		Event{Caller: app, Method: "OPTIONS", Path: "/latest/api/token", Decision: Allow, Status: 200, Token: true},
		Event{Caller: app, Method: "OPTIONS", Path: "/latest/api/token", Decision: Allow, Status: 200, Token: true},
	)
	lines := runLog(t, time.Hour, evs)
	single, summaries := map[string]int{}, map[string]float64{}
	for _, l := range lines {
		key := l["method"].(string) + " " + l["path"].(string) + " " + l["decision"].(string)
		switch l["msg"] {
		case "imds request":
			single[key]++
		case "imds requests":
			c := l["caller"].(map[string]any)
			summaries[key+" "+c["class"].(string)] += l["count"].(float64)
		default:
			t.Errorf("unexpected line %v", l)
		}
	}
	wantSingle := map[string]int{
		"GET /latest/meta-data/iam/security-credentials/role allow": 1,
		"GET /latest/meta-data/IAM/Security-Credentials/role allow": 1,
		"GET /latest/meta-data/identity-credentials/ec2/info allow": 1,
		"GET /latest/meta-data/ami-id allow":                        1,
		"GET /latest/user-data deny":                                1,
		"GET  reject":                                               1,
		"PUT /latest/api/token allow":                               1,
	}
	wantSum := map[string]float64{
		"GET /latest/meta-data/instance-id allow host":      10,
		"GET /latest/meta-data/instance-id allow container": 1,
		"OPTIONS /latest/api/token allow host":              2,
	}
	if len(single) != len(wantSingle) || len(summaries) != len(wantSum) {
		t.Fatalf("lines %v, summaries %v", single, summaries)
	}
	for k, n := range wantSingle {
		if single[k] != n {
			t.Errorf("own lines for %q: %d, want %d", k, single[k], n)
		}
	}
	for k, n := range wantSum {
		if summaries[k] != n {
			t.Errorf("summary count for %q: %v, want %v", k, summaries[k], n)
		}
	}
	// Host callers are summarized by program, not by connection: the 10
	// instance-id reads of app over two connections are one line.
	if n := len(lines); n != len(wantSingle)+len(wantSum) {
		t.Errorf("%d lines, want %d", n, len(wantSingle)+len(wantSum))
	}
}

// With no interval every event has its own line; past maxSums distinct rows
// the table is flushed early, so memory stays bounded and nothing is lost.
func TestLogEveryEventAndBound(t *testing.T) {
	c := &identity.Caller{UIDKnown: true, Remote: netip.MustParseAddrPort("127.0.0.1:1")}
	evs := make([]Event, 3)
	for i := range evs {
		evs[i] = Event{Caller: c, Method: "GET", Path: "/latest/meta-data/instance-id", Version: V2, Decision: Allow, Status: 200}
	}
	if n := len(runLog(t, 0, evs)); n != 3 {
		t.Errorf("interval 0: %d lines, want 3", n)
	}
	evs = make([]Event, maxSums+10)
	for i := range evs {
		evs[i] = Event{Caller: c, Method: "GET", Path: "/latest/meta-data/p" + string(rune('a'+i%26)) + time.Duration(i).String(), Version: V2, Decision: Allow, Status: 200}
	}
	total := 0.0
	for _, l := range runLog(t, time.Hour, evs) {
		total += l["count"].(float64)
	}
	if int(total) != len(evs) {
		t.Errorf("summaries count %v events, want %d", total, len(evs))
	}
}

// Routine events are summarized once per interval while the log runs, and
// what is queued when it stops is still written.
func TestLogSummaryEachInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf lockedBuffer
		a := NewLog(slog.New(slog.NewJSONHandler(&buf, nil)), time.Minute)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { a.Run(ctx); close(done) }()
		stop := sync.OnceFunc(func() { cancel(); <-done })
		defer stop()
		c := &identity.Caller{UIDKnown: true, Remote: netip.MustParseAddrPort("127.0.0.1:1")}
		routine := Event{Caller: c, Method: "GET", Path: "/latest/meta-data/instance-id", Version: V2, Decision: Allow, Status: 200}
		for range 3 {
			a.Record(&routine)
		}
		time.Sleep(time.Minute - time.Nanosecond)
		synctest.Wait()
		if n := buf.lines(); n != 0 {
			t.Fatalf("before the interval: %d lines, want none", n)
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		if n := buf.lines(); n != 1 {
			t.Fatalf("at the interval: %d lines, want the one summary", n)
		}
		v1 := routine
		v1.Version = V1 // matters: a line of its own
		for range 100 {
			a.Record(&v1)
		}
		a.Record(&routine)
		stop()
		if n := buf.lines(); n != 1+100+1 {
			t.Fatalf("after Run returned: %d lines, want 102 (the summary, 100 v1 reads, the last summary)", n)
		}
	})
}

// lockedBuffer is a log's output that a test reads while the log writes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) lines() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Count(b.buf.Bytes(), []byte("\n"))
}
