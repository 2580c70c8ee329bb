package proxy

import (
	"context"
	"log/slog"
	"time"

	"github.com/imdsguard/imdsguard/proxy/identity"
)

// Decision says what became of a request.
type Decision string

const (
	Allow     Decision = "allow"      // served
	Deny      Decision = "deny"       // refused by policy (403, or 401 for a rejected IMDSv1 request)
	WouldDeny Decision = "would-deny" // served in audit mode; enforce would have refused it
	Reject    Decision = "reject"     // refused by the protocol: bad target, method, token, relay headers
	Fail      Decision = "error"      // IMDS failed or did not answer (502/504)
	Drop      Decision = "drop"       // token answer withheld: the caller is beyond the hop limit
)

// Event is the outcome of one request: the audit event, and what metrics
// and the IMDSv1 usage table count.
type Event struct {
	Caller   *identity.Caller
	Method   string
	Target   string // the target as sent, when it had no canonical path
	Path     string // the canonical path decided on and sent upstream
	Version  string // "v1" (no token) or "v2" (token); "" for token requests and early refusals
	Decision Decision
	Rule     string // the policy rule that applied ("" = default, or not asked)
	Reason   string
	Status   int           // status sent to the caller; 0 when the answer was withheld
	Upstream time.Duration // time waiting for IMDS; 0 when it was not asked
	Token    bool          // a token PUT
}

// Log writes e as one structured audit line.
func (e *Event) Log(l *slog.Logger) {
	level := slog.LevelInfo
	if e.Decision != Allow {
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{
		slog.Any("caller", e.Caller),
		slog.String("method", e.Method),
		slog.String("path", e.Path),
		slog.String("version", e.Version),
		slog.String("decision", string(e.Decision)),
		slog.String("rule", e.Rule),
		slog.String("reason", e.Reason),
		slog.Int("status", e.Status),
	}
	if e.Target != "" {
		attrs = append(attrs, slog.String("target", e.Target))
	}
	if e.Upstream > 0 {
		attrs = append(attrs, slog.Duration("upstream", e.Upstream))
	}
	// The record is built by hand: Logger.LogAttrs would also capture the
	// caller's program counter, which the audit line never shows.
	ctx := context.Background()
	if !l.Enabled(ctx, level) {
		return
	}
	r := slog.NewRecord(time.Now(), level, "imds request", 0)
	r.AddAttrs(attrs...)
	l.Handler().Handle(ctx, r)
}
