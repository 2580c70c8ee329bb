// Package audit holds the record of one metadata request, Event: who asked,
// for what, which IMDS version, what was decided and by which rule. The
// proxy produces Events; the audit log, the metrics and the IMDSv1 usage
// table consume them. It lives apart from package proxy so that those
// consumers need not import the pipeline (a child never imports its parent).
package audit

import (
	"context"
	"log/slog"
	"time"

	"github.com/imdsguard/imdsguard/internal/identity"
)

// Decision says what became of a request.
type Decision string

const (
	Allow     Decision = "allow"      // served
	Deny      Decision = "deny"       // refused by policy (403, or 401 for a rejected IMDSv1 request)
	WouldDeny Decision = "would-deny" // served in audit mode; enforce would have refused it
	Reject    Decision = "reject"     // refused by the protocol: bad target, method, token, relay headers
	Error     Decision = "error"      // IMDS failed or did not answer (502/504)
	Drop      Decision = "drop"       // token answer withheld: the caller is beyond the hop limit
)

// Version is the IMDS protocol version a metadata read used.
type Version uint8

const (
	// NoVersion: a token request, or a request refused before its token was
	// looked at.
	NoVersion Version = iota
	V1                // no token: an IMDSv1 read
	V2                // with a token: an IMDSv2 read
)

// String is "v1", "v2", or "" for NoVersion.
func (v Version) String() string {
	switch v {
	case V1:
		return "v1"
	case V2:
		return "v2"
	}
	return ""
}

// Event is the outcome of one request: the audit event, and what metrics
// and the IMDSv1 usage table count.
type Event struct {
	Caller   *identity.Caller
	Method   string
	Target   string // the target as sent, when it had no canonical path
	Path     string // the canonical path decided on and sent upstream
	Version  Version
	Decision Decision
	Rule     string // the policy rule that applied ("" = default, or not asked)
	Reason   string
	Status   int           // status sent to the caller; 0 when the answer was withheld
	Upstream time.Duration // time waiting for IMDS (or the cache); 0 when it was not asked
	Cache    string        // how the cache answered: hit, miss, coalesced, stale, bypass; "" without one
	Token    bool          // a token request (PUT or OPTIONS on the token path, or a refused method there)
	// A read of iam/ or identity-credentials/ says which role the caller
	// has (package roles): Role and Session of the role session served,
	// RoleReason why it has that role or none, RoleCache how the STS
	// broker answered (hit, miss, coalesced, stale, refused).
	Role       string
	Session    string
	RoleReason string
	RoleCache  string
}

// Log writes e as one structured audit line.
func (e *Event) Log(l *slog.Logger) {
	level := slog.LevelInfo
	if e.Decision != Allow {
		level = slog.LevelWarn
	}
	// The record is built by hand: Logger.LogAttrs would also capture the
	// caller's program counter, which the audit line never shows.
	ctx := context.Background()
	if !l.Enabled(ctx, level) {
		return
	}
	r := slog.NewRecord(time.Now(), level, "imds request", 0)
	e.attrs(&r)
	l.Handler().Handle(ctx, r)
}

// attrs adds the event's fields to r.
func (e *Event) attrs(r *slog.Record) {
	r.AddAttrs(
		slog.Any("caller", e.Caller),
		slog.String("method", e.Method),
		slog.String("path", e.Path),
		slog.String("version", e.Version.String()),
		slog.String("decision", string(e.Decision)),
		slog.String("rule", e.Rule),
		slog.String("reason", e.Reason),
		slog.Int("status", e.Status),
	)
	if e.Target != "" {
		r.AddAttrs(slog.String("target", e.Target))
	}
	if e.Upstream > 0 {
		r.AddAttrs(slog.Duration("upstream", e.Upstream))
	}
	if e.Cache != "" {
		r.AddAttrs(slog.String("cache", e.Cache))
	}
	if e.Role != "" {
		r.AddAttrs(slog.String("role", e.Role), slog.String("session", e.Session))
	}
	if e.RoleReason != "" {
		r.AddAttrs(slog.String("role_reason", e.RoleReason))
	}
	if e.RoleCache != "" {
		r.AddAttrs(slog.String("role_cache", e.RoleCache))
	}
}
