package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/imdsguard/imdsguard/internal/audit"
	"github.com/imdsguard/imdsguard/internal/roles"
	"github.com/imdsguard/imdsguard/internal/sts"
	"github.com/imdsguard/imdsguard/policy"
)

// RoleCredentials serves the credentials of a role session: the STS
// broker (sts.Broker). Its error is an *sts.Error or sts.ErrPending.
type RoleCredentials interface {
	Get(ctx context.Context, s roles.Session) (roles.Credentials, sts.Outcome, error)
}

// Paths a caller with a role of its own is answered for here, never by
// IMDS, relative to the version prefix and compared ignoring ASCII case
// (as the policy compares them).
const (
	iamDir        = "/meta-data/iam"
	credsDir      = "/meta-data/iam/security-credentials"
	identityCreds = "/meta-data/identity-credentials"
)

// roleScoped reports whether rel is one of the paths that reveal the
// node's role or credentials: iam/ and identity-credentials/.
func roleScoped(rel string) bool {
	return underFold(rel, iamDir) || underFold(rel, identityCreds)
}

// underFold reports whether rel is dir or below it, ignoring ASCII case.
func underFold(rel, dir string) bool {
	return len(rel) >= len(dir) && strings.EqualFold(rel[:len(dir)], dir) && (len(rel) == len(dir) || rel[len(dir)] == '/')
}

// serveRole is the role step (SPEC section 10), for a read the policy
// allowed: when the caller has a role of its own and the path is under
// iam/ or identity-credentials/, it completes o with the answer made
// here from that role's credentials, and reports true; the node's
// answer from IMDS (or the cache) is never asked for. A caller without a
// role is left to fetch.
//
//   - iam/security-credentials/ lists the caller's role alone;
//   - iam/security-credentials/ROLE is its credentials in IMDS's JSON,
//     from the STS broker (waiting for the first at most the broker's
//     bound), or 503 (500 when STS denied the session); any other name 404;
//   - iam/ lists security-credentials/ only; iam/info is 404: the info
//     document names the node's instance profile, which is not the
//     caller's, and an SDK needs only security-credentials/;
//   - identity-credentials/ are the instance's own: 404.
func (p *Proxy) serveRole(r *http.Request, cs *connState, rt Route, o *outcome) bool {
	res := p.roles.Load()
	if res == nil || !roleScoped(rt.Path.Rel) {
		return false
	}
	a := res.Resolve(SubjectOf(&cs.policy, o.rule, o.ruleRole))
	o.roleReason = a.Reason
	if !a.HasRole() {
		return false
	}
	o.role, o.session = a.Session.RoleARN, a.Session.Name
	switch kind, status := roleRoute(rt.Path.Rel, &a); kind {
	case roleBroken:
		o.resp, o.decision, o.reason = errorResponse(r, status), audit.Error, a.Reason
	case roleRefused:
		o.resp, o.decision, o.reason = errorResponse(r, status), audit.Deny, a.Reason
	case roleList:
		o.resp = response(r, status, "text/plain", a.Session.RoleName)
	case roleIAMList:
		o.resp = response(r, status, "text/plain", "security-credentials/")
	case roleCredentials:
		p.serveCredentials(r, a.Session, o)
	default:
		o.resp = errorResponse(r, status)
	}
	return true
}

// roleAnswer is what a role-scoped path is for a caller with a role.
type roleAnswer uint8

const (
	roleNotFound    roleAnswer = iota // 404: the node's, or no such role
	roleBroken                        // 500: the role cannot be used
	roleRefused                       // 403: the pod asked for a role it may not take
	roleList                          // security-credentials/: the role's name
	roleIAMList                       // iam/: security-credentials/ only
	roleCredentials                   // security-credentials/ROLE: from STS
)

// roleRoute says how the role-scoped path rel is answered for a caller
// with the role a, and its status (that of success for credentials).
// The proxy and `policy explain` both use it.
func roleRoute(rel string, a *roles.Assignment) (roleAnswer, int) {
	switch {
	case a.Broken:
		return roleBroken, http.StatusInternalServerError
	case a.Refused:
		return roleRefused, http.StatusForbidden
	case strings.EqualFold(rel, credsDir):
		return roleList, http.StatusOK
	case strings.EqualFold(rel, iamDir):
		return roleIAMList, http.StatusOK
	case rel == credsDir+"/"+a.Session.RoleName:
		return roleCredentials, http.StatusOK
	}
	return roleNotFound, http.StatusNotFound
}

// SubjectOf is what the role resolver needs of a caller whose applying
// rule is rule, with role: ruleRole.
func SubjectOf(c *policy.Caller, rule, ruleRole string) roles.Subject {
	s := roles.Subject{Rule: rule, RuleRole: ruleRole, Workload: c.Workload, Container: c.Container, Source: c.Source}
	if !c.Container {
		s.UIDKnown, s.UID = c.UIDKnown, c.UID
	}
	return s
}

// serveCredentials completes o with the session's credentials from the
// broker, or an IMDS-style error: 503 while they are being fetched or STS
// fails, 500 when STS refused the session.
func (p *Proxy) serveCredentials(r *http.Request, s roles.Session, o *outcome) {
	if p.creds == nil {
		o.resp, o.decision, o.reason = errorResponse(r, http.StatusInternalServerError), audit.Error, "roles are configured but no STS broker is"
		return
	}
	c, how, err := p.creds.Get(r.Context(), s)
	o.roleCache = how.String()
	if err != nil {
		status := http.StatusServiceUnavailable
		if !errors.Is(err, sts.ErrPending) && sts.KindOf(err) == sts.Denied {
			status = http.StatusInternalServerError
		}
		o.resp, o.decision, o.reason = errorResponse(r, status), audit.Error, "credentials of "+s.RoleARN+": "+err.Error()
		return
	}
	o.resp = response(r, http.StatusOK, "text/plain", credentialsJSON(c))
}

// credentialsJSON is the credentials document as IMDS writes it.
func credentialsJSON(c roles.Credentials) string {
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	ts := func(t time.Time) string { return q(t.UTC().Format(time.RFC3339)) }
	return "{\n" +
		`  "Code" : "Success",` + "\n" +
		`  "LastUpdated" : ` + ts(c.LastUpdated) + ",\n" +
		`  "Type" : "AWS-HMAC",` + "\n" +
		`  "AccessKeyId" : ` + q(c.AccessKeyID) + ",\n" +
		`  "SecretAccessKey" : ` + q(c.SecretAccessKey) + ",\n" +
		`  "Token" : ` + q(c.SessionToken) + ",\n" +
		`  "Expiration" : ` + ts(c.Expiration) + "\n" +
		"}"
}
