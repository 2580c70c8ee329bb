package policy

import (
	"github.com/imdsguard/imdsguard/internal/imds"
)

// Config is the `policy:` section of the configuration file.
//
// Rules are tried in order; the first whose Match fits the caller applies.
// Default says what happens to a caller no rule matches.
type Config struct {
	Mode    string       `yaml:"mode"`    // "enforce" (default) | "audit"
	Default string       `yaml:"default"` // "deny" (default) | "allow": for callers no rule matches
	Rules   []RuleConfig `yaml:"rules"`
}

// RuleConfig is one entry of `policy.rules`.
//
// Within the rule a path is allowed when some Allow pattern matches it and no
// Deny pattern does: deny wins. A rule without Allow patterns denies every
// path (Compile warns about it) but still lets its callers mint tokens.
type RuleConfig struct {
	Name   string       `yaml:"name"`    // required, unique
	Match  *MatchConfig `yaml:"match"`   // required; `match: {}` matches every caller
	Allow  []string     `yaml:"allow"`   // path patterns, e.g. "/meta-data/**"
	Deny   []string     `yaml:"deny"`    // path patterns, e.g. "/meta-data/iam/**"
	IMDSv1 string       `yaml:"imds_v1"` // "upgrade" (default) | "reject"
	// Role gives the rule's callers an IAM role of their own instead of
	// the node's (SPEC section 10): a full role ARN, or a short name under
	// roles.base_arn. It wins over a pod's kube2iam annotation. The allow
	// and deny patterns still decide whether iam/ may be read at all.
	Role string `yaml:"role"`
}

// MatchConfig says which callers a rule applies to. A caller matches when it
// fits ANY listed entry: one of the users, OR one of the groups, OR one of the
// sources, OR one of the interfaces, OR the containers selector, OR the pods
// selector.
//
// `match: {}` (no field written) matches every caller, including one whose
// user the kernel could not attest. A field written as an empty list
// (`users: []`) is refused by Validate: it reads like "nobody" but would
// otherwise mean "everybody".
type MatchConfig struct {
	// Users are user names or uids ("root", "0"); an entry of digits only is
	// a uid. Names are resolved at Compile. They match host callers only: a
	// caller whose uid the kernel could not attest, or a container caller,
	// matches no entry.
	Users []string `yaml:"users"`
	// Groups are group names or gids (digits only), matched against a host
	// caller's primary and supplementary groups; a caller whose uid the kernel
	// could not attest, or a container caller, matches none.
	Groups []string `yaml:"groups"`
	// Sources are CIDRs ("172.17.0.0/16"); a bare address means /32 or /128.
	// They match container callers only (traffic through PREROUTING): a host
	// process's address says nothing, since any local user can bind the
	// host's bridge address.
	Sources []string `yaml:"sources"`
	// Interfaces are ingress interface patterns, as in
	// redirect.container_interfaces (package ifname): a name, a prefix with a
	// trailing "+" ("veth+"), or "+" for every interface. They match
	// container callers only; host processes have none, and a container
	// caller whose interface is unknown fits none.
	Interfaces []string `yaml:"interfaces"`
	// Containers selects containers by what their runtime says (names,
	// images, labels); Pods selects Kubernetes containers by their pod
	// (namespace, name, labels). A caller whose runtime did not answer
	// fits neither; so does a plain host process. Processes in the host's
	// network namespace whose cgroup names a container (hostNetwork pods,
	// `--network=host`) fit them and stay host processes for users and
	// groups.
	Containers *ContainerSelector `yaml:"containers"`
	Pods       *PodSelector       `yaml:"pods"`
}

// Values of the string fields. The empty string means the default.
const (
	modeEnforce  = "enforce"
	modeAudit    = "audit"
	defaultDeny  = "deny"
	defaultAllow = "allow"
	v1Upgrade    = "upgrade"
	v1Reject     = "reject"
	tokenPath    = imds.TokenPath
)

// empty reports whether no criterion is listed: the match fits every caller.
func (m *MatchConfig) empty() bool {
	return len(m.Users) == 0 && len(m.Groups) == 0 && len(m.Sources) == 0 && len(m.Interfaces) == 0 &&
		m.Containers == nil && m.Pods == nil
}
