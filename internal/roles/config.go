// Package roles decides which IAM role a workload gets instead of the
// node's (SPEC section 10): the applying policy rule's `role:`, else its
// pod's kube2iam/kiam annotations as the runtime reports them, allowed per
// namespace by `roles.namespaces`. It says which role session that is (role
// ARN, session name, external id, session tags) and why, or why there is
// none. It does no I/O: the STS broker (internal/sts) turns a Session into
// credentials, and the proxy serves them.
package roles

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/imdsguard/imdsguard/internal/config/field"
)

// Config is the `roles:` section of the configuration file.
type Config struct {
	// BaseARN is prefixed to a role's short name ("ci-builder") in a
	// rule's role: and in a pod's annotation: "arn:aws:iam::123456789012:role/".
	// "" allows full ARNs only.
	BaseARN string `yaml:"base_arn"`
	// Namespaces maps a Kubernetes namespace to the role names its pods
	// may take through their annotations (globs: "*" is any run of
	// characters). A role under BaseARN is matched by its name below it
	// ("payments-api", "team/app"); any other by its full ARN. A namespace
	// not listed takes no role from annotations.
	Namespaces map[string][]string `yaml:"namespaces"`
	// SessionDuration is the lifetime asked of STS (900s..12h; default 1h;
	// a role's own maximum session duration must allow it).
	SessionDuration field.Duration `yaml:"session_duration"`
	// SessionTags passes EKS Pod Identity's session tags
	// (kubernetes-namespace, kubernetes-pod-name, kubernetes-pod-uid) with
	// a pod's AssumeRole, for ABAC; the role's trust policy must then allow
	// sts:TagSession. Default off.
	SessionTags bool `yaml:"session_tags"`
	// STSEndpoint is the STS endpoint URL ("https://sts.eu-west-1.amazonaws.com",
	// a VPC endpoint's); "" means the regional endpoint of the instance's
	// region, or AWS_ENDPOINT_URL_STS (then AWS_ENDPOINT_URL) from the
	// daemon's environment when set, as the AWS SDKs read them.
	STSEndpoint string `yaml:"sts_endpoint"`
	// STSRate bounds AssumeRole calls per second for the whole host (a
	// token bucket of STSBurst): pod churn never makes an STS storm.
	// Defaults 5/s, burst 20.
	STSRate  float64 `yaml:"sts_rate"`
	STSBurst int     `yaml:"sts_burst"`
}

// Bounds and defaults of the section.
const (
	MinSessionDuration     = 900 * time.Second
	MaxSessionDuration     = 12 * time.Hour
	DefaultSessionDuration = time.Hour
	DefaultSTSRate         = 5
	DefaultSTSBurst        = 20
	maxSTSRate             = 1000
	maxSTSBurst            = 10000
)

// DefaultConfig is the section when the file leaves it out: no base ARN,
// no namespace may take a role from annotations (rules' full-ARN roles
// still work), 1 h sessions, no tags, the regional endpoint.
func DefaultConfig() Config {
	return Config{
		Namespaces:      map[string][]string{}, // as `namespaces: {}` reads
		SessionDuration: field.Duration{Duration: DefaultSessionDuration},
		STSRate:         DefaultSTSRate,
		STSBurst:        DefaultSTSBurst,
	}
}

// Validate reports every invalid field, with paths relative to the section.
func (c Config) Validate() error {
	var errs []error
	if c.BaseARN != "" {
		if err := checkBaseARN(c.BaseARN); err != nil {
			errs = append(errs, field.Errorf("base_arn", "%v", err))
		}
	}
	for _, ns := range sortedKeys(c.Namespaces) {
		p := field.Join("namespaces", nsPath(ns))
		globs := c.Namespaces[ns]
		if ns == "" || strings.ContainsFunc(ns, isSpaceOrControl) {
			errs = append(errs, field.Errorf(p, "%q is not a namespace name", ns))
		}
		if len(globs) == 0 {
			errs = append(errs, field.Errorf(p, "empty list: list the roles its pods may take (\"*\" for any), or drop the namespace"))
		}
		for i, g := range globs {
			if g == "" || strings.ContainsFunc(g, isSpaceOrControl) {
				errs = append(errs, field.Errorf(field.Index(p, i), "%q is not a role glob (a role name, \"*\" any run of characters)", g))
			}
		}
	}
	if err := c.SessionDuration.Check("session_duration", MinSessionDuration, MaxSessionDuration); err != nil {
		errs = append(errs, err)
	}
	if c.STSEndpoint != "" {
		if err := CheckEndpoint(c.STSEndpoint); err != nil {
			errs = append(errs, field.Errorf("sts_endpoint", "%v", err))
		}
	}
	if !(c.STSRate > 0 && c.STSRate <= maxSTSRate) {
		errs = append(errs, field.Errorf("sts_rate", "%v is out of range (more than 0, at most %d calls a second)", c.STSRate, maxSTSRate))
	}
	if c.STSBurst < 1 || c.STSBurst > maxSTSBurst {
		errs = append(errs, field.Errorf("sts_burst", "%d is out of range (1..%d)", c.STSBurst, maxSTSBurst))
	}
	return errors.Join(errs...)
}

// CheckEndpoint accepts an http or https URL with a host and no query:
// what roles.sts_endpoint and AWS_ENDPOINT_URL_STS may say.
func CheckEndpoint(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return fmt.Errorf("%q is not a URL: %v", s, err)
	case u.Scheme != "https" && u.Scheme != "http":
		return fmt.Errorf("%q: write an https:// URL (http:// for a test endpoint)", s)
	case u.Host == "":
		return fmt.Errorf("%q has no host", s)
	case u.RawQuery != "" || u.Fragment != "":
		return fmt.Errorf("%q: an endpoint has no query or fragment", s)
	}
	return nil
}

// checkBaseARN accepts "arn:PARTITION:iam::ACCOUNT:role/" with an
// optional path ("role/k8s/"), ending in "/".
func checkBaseARN(s string) error {
	if !strings.HasSuffix(s, "/") {
		return fmt.Errorf("%q must end with \"/\": short names are appended to it (arn:aws:iam::123456789012:role/)", s)
	}
	if _, err := ParseARN(s + "x"); err != nil {
		return fmt.Errorf("%q is not a role ARN prefix: %v", s, err)
	}
	return nil
}

func isSpaceOrControl(r rune) bool { return r <= ' ' || r == 0x7f }

// nsPath is a namespace as a field path element, quoted when it is not
// plain letters, digits, "-" and "_", so the loader finds its line.
func nsPath(ns string) string {
	if ns == "" || strings.ContainsFunc(ns, func(r rune) bool {
		return !(r == '-' || r == '_' || '0' <= r && r <= '9' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z')
	}) {
		return "'" + ns + "'"
	}
	return ns
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
