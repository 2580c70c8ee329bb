package policy

import "strings"

// String renders d for `imdsguard policy explain`, one fact a line:
//
//	decision: deny (403)
//	rule:     legacy-app
//	pattern:  /meta-data/iam/**
//	reason:   denied by rule legacy-app: the path matches deny pattern /meta-data/iam/**
func (d Decision) String() string {
	var b strings.Builder
	b.WriteString("decision: " + d.verdict() + "\n")
	rule := d.Rule
	if rule == "" {
		rule = "(none)"
	}
	b.WriteString("rule:     " + rule + "\n")
	if d.Pattern != "" {
		b.WriteString("pattern:  " + d.Pattern + "\n")
	}
	b.WriteString("reason:   " + d.Reason + "\n")
	return b.String()
}

// verdict says what the proxy does with the request.
func (d Decision) verdict() string {
	var v string
	switch {
	case d.Allow:
		return "allow"
	case d.RejectV1:
		v = "reject IMDSv1 (401)"
	default:
		v = "deny (403)"
	}
	if !d.Enforced {
		v += ", not enforced (audit mode: served anyway, logged as a would-be denial)"
	}
	return v
}
