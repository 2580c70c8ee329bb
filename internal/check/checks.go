package check

import (
	"context"
	"fmt"
	"net/http"
	"strings"
)

func rules(ctx context.Context, p Probes) Result {
	r := Result{Name: "redirect rules installed (IPv4 and IPv6)"}
	ok, detail, err := p.Rules(ctx)
	switch {
	case err != nil:
		r.Detail = "cannot read the rules: " + err.Error()
		r.Fix = "run imdsguard check as root"
	case !ok:
		r.Detail = detail
		r.Fix = "systemctl start imdsguard (or: imdsguard rules install); see imdsguard rules status"
	default:
		r.Pass, r.Detail, r.Short = true, detail, "rules: "+detail
	}
	return r
}

func proxyAnswers(ctx context.Context, p Probes) Result {
	r := Result{Name: "imdsguard answers on its port"}
	status, err := p.Proxy(ctx)
	switch {
	case err != nil:
		r.Detail = err.Error()
		r.Fix = "systemctl start imdsguard; journalctl -u imdsguard shows why it is not running"
	case status != http.StatusOK:
		r.Detail = fmt.Sprintf("a token request got %d", status)
		r.Fix = "journalctl -u imdsguard; imdsguard policy explain PUT /latest/api/token"
	default:
		r.Pass, r.Detail = true, "a token request was answered"
	}
	return r
}

// tokensRequired: IMDS itself must answer an unauthenticated IMDSv1 GET
// with 401; otherwise anything that gets around imdsguard reads IMDS freely.
// It returns IMDS's status too (0 when it did not answer) and the
// instance id it saw.
func tokensRequired(ctx context.Context, p Probes, instanceID string) (redirectedResult, int) {
	var rr redirectedResult
	r := &rr.Result
	r.Name = "IMDS itself rejects IMDSv1 without a token (http-tokens required)"
	status, body, err := p.Direct(ctx, instanceIDPath)
	switch {
	case err != nil && (DirectAnswer{Sent: true, Err: err}).timedOut():
		r.Detail = fmt.Sprintf("IMDS did not answer an IMDSv1 GET within %s: whether it requires tokens cannot be seen", DirectTimeout)
		r.Fix = "see the endpoint check"
	case err != nil:
		r.Detail = "cannot reach IMDS directly: " + err.Error()
		r.Fix = "run imdsguard check as root (the direct probe needs the daemon's firewall mark); check upstream.url"
	case status == http.StatusUnauthorized:
		r.Pass, r.Detail = true, "IMDS answered 401"
	case status == http.StatusOK:
		if instanceID == "" {
			instanceID = strings.TrimSpace(body)
		}
		rr.instanceID = instanceID
		r.Detail = "IMDS answered 200: the instance still serves IMDSv1 (http-tokens optional)"
		r.Fix = fixTokens(instanceID)
	case status == http.StatusForbidden:
		r.Detail = "IMDS answered 403: it refuses every request (its endpoint is disabled, see that check), so whether it requires tokens cannot be seen"
		r.Fix = fixTokens(instanceID)
	default:
		r.Detail = fmt.Sprintf("IMDS answered %d, not 401", status)
		r.Fix = fixTokens(instanceID)
	}
	return rr, status
}

func fixTokens(instanceID string) string {
	if instanceID == "" {
		instanceID = "INSTANCE_ID"
	}
	return "aws ec2 modify-instance-metadata-options --instance-id " + instanceID +
		" --http-tokens required --http-put-response-hop-limit 1 --http-endpoint enabled" +
		"  (Lightsail: aws lightsail update-instance-metadata-options --instance-name NAME --http-tokens required)"
}

type redirectedResult struct {
	Result
	instanceID string
}

func redirectedV1(ctx context.Context, p Probes) redirectedResult {
	r := redirectedResult{Result: Result{Name: "an IMDSv1 request through the redirect is served"}}
	status, body, err := p.Redirected(ctx, instanceIDPath)
	switch {
	case err != nil:
		r.Detail = err.Error()
		r.Fix = "systemctl start imdsguard; imdsguard rules status"
	case status != http.StatusOK:
		r.Detail = fmt.Sprintf("answered %d", status)
		r.Fix = "imdsguard policy explain --uid 0 --v1 GET " + instanceIDPath + "; journalctl -u imdsguard"
	default:
		r.instanceID = strings.TrimSpace(body)
		r.Pass, r.Detail = true, "served: instance "+r.instanceID
	}
	return r
}
