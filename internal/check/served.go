package check

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Answer is what a token OPTIONS through the redirect got.
type Answer struct {
	Family string // "IPv4" or "IPv6"
	Addr   string // where it was sent: 169.254.169.254:80
	Status int
	Took   time.Duration
	Err    error
	// Refused: connection refused (the rules sent it to imdsguard's port
	// and nothing listens there). NoRoute: this node has no route to the
	// address, so nothing on it reaches IMDS that way.
	Refused, NoRoute bool
}

const servedName = "imdsguard answers metadata requests through the redirect (token OPTIONS, answered without IMDS)"

// served: a token OPTIONS to each redirected family's metadata address,
// sent as any process sends it, is answered 200. imdsguard answers OPTIONS
// itself, so this needs no IMDS; with the rules complete (rulesOK: the
// rules check passed), a 200 can only come from imdsguard. Without them
// the request is not sent: it could reach IMDS itself (a probe before the
// daemon starts would), and IMDS's answer would prove nothing.
func served(ctx context.Context, p Probes, rulesOK bool) Result {
	r := Result{Name: servedName, Pass: true}
	if !rulesOK {
		r.Pass = false
		r.Detail = "not sent: the redirect rules are not complete, so it could reach IMDS itself rather than imdsguard"
		r.Fix = "see the rules check"
		return r
	}
	as := p.Served(ctx)
	if len(as) == 0 {
		r.Pass = false
		r.Detail = "no family is redirected (redirect.ipv4 and redirect.ipv6 are false): nothing is served through a redirect"
		r.Fix = "set redirect.ipv4 (and redirect.ipv6) to true"
		return r
	}
	var lines, short []string
	for _, a := range as {
		line, ok := a.line()
		lines = append(lines, line)
		if !ok {
			r.Pass = false
		} else if a.Err == nil {
			short = append(short, fmt.Sprintf("%s in %s", a.Family, roundTook(a.Took)))
		}
	}
	r.Detail = strings.Join(lines, "\n")
	r.Short = "token OPTIONS through the redirect answered (" + strings.Join(short, ", ") + ")"
	if !r.Pass {
		r.Fix = "systemctl start imdsguard (Kubernetes: kubectl -n imdsguard logs ds/imdsguard says why it is not serving); imdsguard rules status"
	}
	return r
}

// line describes a, and says whether it counts as served.
func (a Answer) line() (string, bool) {
	to := a.Family + ": OPTIONS to " + a.Addr
	switch {
	case a.Err == nil && a.Status == http.StatusOK:
		return fmt.Sprintf("%s answered 200 in %s", to, roundTook(a.Took)), true
	case a.Err == nil:
		return fmt.Sprintf("%s answered %d, want 200 (imdsguard answers OPTIONS on the token path itself)", to, a.Status), false
	case a.NoRoute && a.Family == "IPv6":
		return to + ": no route on this node (" + a.Err.Error() + "): nothing here reaches IMDS over IPv6", true
	case a.Refused:
		return to + ": connection refused: the rules send it to imdsguard's port and nothing listens there (the daemon is not running; metadata stays refused meanwhile)", false
	}
	return to + ": " + a.Err.Error(), false
}

// roundTook rounds a duration for a report: 1.2ms, 350µs.
func roundTook(d time.Duration) time.Duration {
	if d >= time.Millisecond {
		return d.Round(100 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}
