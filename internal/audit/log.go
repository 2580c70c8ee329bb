package audit

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/imdsguard/imdsguard/internal/identity"
)

// Log writes the audit log off the request path. Every event that matters is
// written on its own line: every refusal, would-be denial, error and
// withheld answer, every IMDSv1 read, every credential read and every token
// minted. The rest, allowed IMDSv2 reads of other paths (and OPTIONS on the
// token path), is summarized: one line per caller, request and decision each
// interval, with a count.
//
// Record counts a routine event in its summary row at once (a map lookup
// under a lock) and only queues the others; one goroutine (Run) formats and
// writes every line. Routine reads are most of a busy host's, so they cost
// no hand-over to that goroutine. The queue is large; when it is full Record
// waits, so no line is ever lost.
type Log struct {
	l      *slog.Logger
	every  time.Duration // summary interval; 0: every event on its own line
	queue  chan Event    // events written on their own line
	tables chan map[sumKey]*sum

	mu   sync.Mutex
	sums map[sumKey]*sum // the summary rows being counted
}

// Queue and summary bounds.
const (
	queueLen = 1 << 12
	maxSums  = 4096 // distinct summary rows per interval; more flush early
)

// NewLog returns a Log writing to l that summarizes routine events every
// interval (0: writes every event on its own line). Run must be running for
// Record to make progress.
func NewLog(l *slog.Logger, every time.Duration) *Log {
	return &Log{l: l, every: every, queue: make(chan Event, queueLen), tables: make(chan map[sumKey]*sum, 1),
		sums: map[sumKey]*sum{}}
}

// Record logs ev: counted in its summary row when it is routine, else
// queued for its own line. ev is copied: the caller may reuse it.
func (a *Log) Record(ev *Event) {
	if a.every <= 0 || Matters(ev) {
		a.queue <- *ev
		return
	}
	k := sumKeyOf(ev)
	now := time.Now()
	a.mu.Lock()
	s := a.sums[k]
	if s == nil {
		if len(a.sums) >= maxSums {
			full := a.sums
			a.sums = map[sumKey]*sum{}
			a.mu.Unlock()
			a.tables <- full // written early: memory stays bounded
			a.mu.Lock()
		}
		if s = a.sums[k]; s == nil {
			s = &sum{ev: *ev, first: now}
			a.sums[k] = s
		}
	}
	s.count++
	s.last = now
	s.ev.Upstream += ev.Upstream
	a.mu.Unlock()
}

// take returns the summary rows counted so far and starts a new table.
func (a *Log) take() map[sumKey]*sum {
	a.mu.Lock()
	defer a.mu.Unlock()
	t := a.sums
	a.sums = map[sumKey]*sum{}
	return t
}

// Run writes queued events until ctx ends, then writes what is still queued
// and the pending summaries, and returns.
func (a *Log) Run(ctx context.Context) {
	var tick <-chan time.Time
	if a.every > 0 {
		t := time.NewTicker(a.every)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case ev := <-a.queue:
			ev.Log(a.l)
		case t := <-a.tables:
			a.flush(t)
		case <-tick:
			a.flush(a.take())
		case <-ctx.Done():
			// From now on this case is ready on every turn, and select
			// picks among ready cases at random: the loop goes on writing
			// what is queued until nothing is (a Record waiting on a full
			// channel leaves it full, so it is written too).
			if len(a.queue) == 0 && len(a.tables) == 0 {
				a.flush(a.take())
				return
			}
		}
	}
}

// flush writes one summary line per row of t.
func (a *Log) flush(t map[sumKey]*sum) {
	for _, s := range t {
		s.log(a.l)
	}
}

// Matters reports whether ev is written on its own line: anything but an
// allowed request, every IMDSv1 read, every credential read, every token
// minted (a caller authenticating is worth its line; SDKs do it once per
// token lifetime, not per read).
func Matters(ev *Event) bool {
	return ev.Decision != Allow || ev.Version == V1 || IsCredentialPath(ev.Path) ||
		ev.Token && ev.Method == http.MethodPut
}

// IsCredentialPath reports whether the canonical path reads credentials:
// a role's (iam/security-credentials) or the instance's own
// (identity-credentials). ASCII case is ignored, as the policy ignores it.
func IsCredentialPath(path string) bool {
	for _, p := range [...]string{"/meta-data/iam/security-credentials", "/meta-data/identity-credentials"} {
		if containsFold(path, p) {
			return true
		}
	}
	return false
}

func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}

// sumKey is what a summary line stands for: the caller as the usage table
// knows it, and the request and its outcome.
type sumKey struct {
	class     identity.Class
	uidKnown  bool
	uid       uint32
	comm, exe string
	container string
	source    netip.Addr // container and unattested callers only
	method    string
	path      string
	target    string
	version   Version
	decision  Decision
	rule      string
	status    int
	token     bool
}

func sumKeyOf(ev *Event) sumKey {
	k := sumKey{method: ev.Method, path: ev.Path, target: ev.Target, version: ev.Version,
		decision: ev.Decision, rule: ev.Rule, status: ev.Status, token: ev.Token}
	if c := ev.Caller; c != nil {
		k.class, k.uidKnown, k.uid, k.comm, k.exe, k.container = c.Class, c.UIDKnown, c.UID, c.Comm, c.Exe, c.Container
		if c.Class == identity.Container || !c.UIDKnown {
			k.source = c.Remote.Addr()
		}
	}
	return k
}

// sum is one summary row: the first event, counted.
type sum struct {
	ev          Event // the first event; Upstream adds up every event's
	count       int
	first, last time.Time
}

func (s *sum) log(l *slog.Logger) {
	ctx := context.Background()
	if !l.Enabled(ctx, slog.LevelInfo) {
		return
	}
	r := slog.NewRecord(s.last, slog.LevelInfo, "imds requests", 0)
	s.ev.attrs(&r)
	r.AddAttrs(slog.Int("count", s.count), slog.Time("first", s.first), slog.Time("last", s.last))
	l.Handler().Handle(ctx, r)
}
