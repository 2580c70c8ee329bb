package policy

import (
	"slices"

	"github.com/imdsguard/imdsguard/internal/config/field"
)

// Paths that stand for the secrets a rule may hand out: the node role's
// credentials and the instance's identity credentials.
const (
	probeRoleCredentials     = "/meta-data/iam/security-credentials/x"
	probeIdentityCredentials = "/meta-data/identity-credentials/ec2/security-credentials/ec2-instance"
)

// trustWarnings warns about a rule that gives credentials (iam/**,
// identity-credentials/**, or a role) to pods chosen by their names or
// labels but not their namespace. Whoever creates a pod chooses its name
// and labels; only the namespace is guarded by the cluster's RBAC, so
// such a rule hands its credentials to anyone who may create a pod
// anywhere on the node (docs/roles.md, trust model).
func trustWarnings(path string, rc *RuleConfig, r *rule) []string {
	ps := rc.Match.Pods
	if ps == nil || (ps.Names == nil && ps.Labels == nil) || pinsNamespace(ps.Namespaces) {
		return nil
	}
	var gives string
	switch {
	case rc.Role != "":
		gives = "role " + rc.Role
	case r.allows(probeRoleCredentials):
		gives = "the node role's credentials (iam/**)"
	case r.allows(probeIdentityCredentials):
		gives = "the instance's identity credentials (identity-credentials/**)"
	default:
		return nil
	}
	return []string{field.Join(path, "match.pods") + ": rule " + rc.Name + " gives " + gives +
		" to pods chosen by name or labels in any namespace: whoever may create a pod anywhere can choose those; add namespaces (the cluster's RBAC guards them)"}
}

// pinsNamespace reports whether a pods selector's namespaces name some
// rather than any ("*" matches every namespace).
func pinsNamespace(namespaces []string) bool {
	return len(namespaces) > 0 && !slices.Contains(namespaces, "*")
}

// allows reports whether the rule lets its callers read path.
func (ru *rule) allows(path string) bool {
	return ru.decidePath(Decision{}, path).Allow
}
