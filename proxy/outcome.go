package proxy

import (
	"net/http"
	"time"

	"github.com/imdsguard/imdsguard/internal/audit"
	"github.com/imdsguard/imdsguard/policy"
)

// outcome is what the pipeline made of one request. Each step returns one;
// Proxy.answer alone turns it into the caller's answer and the audit event.
type outcome struct {
	resp     *http.Response // the answer; nil when withheld
	decision audit.Decision
	rule     string
	reason   string
	version  audit.Version
	upstream time.Duration // time waiting for IMDS (or the cache)
	cache    string        // how the cache answered ("hit", "miss", ...); "" without one
	// hop is the IP TTL (IPv6 hop limit) to send the answer with; 0 leaves
	// the system default.
	hop int
	// withheld: send nothing and abort the connection (resp is nil). The
	// caller is beyond the hop limit, and no reply is what IMDS's answer
	// would have come to.
	withheld bool
	// ruleRole is the applying rule's role: as written, for the role
	// step; role, session, roleReason and roleCache are what the event
	// says of the caller's role (roles.go).
	ruleRole   string
	role       string
	session    string
	roleReason string
	roleCache  string
}

// refuse is an answer refused by the protocol rather than by policy.
func refuse(r *http.Request, status int, reason string) outcome {
	return outcome{resp: errorResponse(r, status), decision: audit.Reject, reason: reason}
}

// verdict is the one place where a policy decision becomes the pipeline's:
// the audit decision, and the status of the refusal (0: the request is
// served, allowed or only logged in audit mode). The proxy and `policy
// explain` both use it.
func verdict(d policy.Decision) (audit.Decision, int) {
	switch {
	case d.Allow:
		return audit.Allow, 0
	case !d.Enforced:
		return audit.WouldDeny, 0
	}
	return audit.Deny, refusalStatus(d)
}

// refusalStatus is the status of a denial, when enforced: 401 for an IMDSv1
// request the rule rejects (as IMDS answers a tokenless request when tokens
// are required), 403 for a path the rule does not allow.
func refusalStatus(d policy.Decision) int {
	if d.RejectV1 {
		return http.StatusUnauthorized
	}
	return http.StatusForbidden
}

// enforce applies d: ok when the request is to be served, else the
// refusal. Either way the outcome carries the decision, rule and reason.
func enforce(r *http.Request, d policy.Decision) (o outcome, ok bool) {
	dec, status := verdict(d)
	o = outcome{decision: dec, rule: d.Rule, reason: d.Reason, ruleRole: d.Role}
	if status != 0 {
		o.resp = errorResponse(r, status)
		return o, false
	}
	return o, true
}
