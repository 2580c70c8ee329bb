package policy

import "strings"

// String renders the facts of d for `imdsguard policy explain`, one a
// line: the rule, the pattern that decided (if any) and the reason. What
// the proxy answers for d is the proxy's to say (proxy.ExplainDecision adds
// it): the policy knows nothing of HTTP.
//
//	rule:     legacy-app
//	pattern:  /meta-data/iam/**
//	reason:   denied by rule legacy-app: the path matches deny pattern /meta-data/iam/**
func (d Decision) String() string {
	var b strings.Builder
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
