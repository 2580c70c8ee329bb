package roles

import (
	"errors"
	"fmt"
	"strings"
)

// MaxRoleName is IAM's limit on a role's name (without its path).
const MaxRoleName = 64

// ARN is a parsed IAM role ARN: arn:PARTITION:iam::ACCOUNT:role/PATH/NAME.
type ARN struct {
	Full string // as written
	Name string // the role's name, the last segment: what IMDS lists
}

// ParseARN parses a role ARN.
func ParseARN(s string) (ARN, error) {
	parts := strings.SplitN(s, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" {
		return ARN{}, errors.New("not an ARN (arn:aws:iam::123456789012:role/NAME)")
	}
	partition, service, region, account, resource := parts[1], parts[2], parts[3], parts[4], parts[5]
	switch {
	case partition == "" || strings.Trim(partition, "abcdefghijklmnopqrstuvwxyz-") != "":
		return ARN{}, fmt.Errorf("partition %q is not one (aws, aws-cn, aws-us-gov, ...)", partition)
	case service != "iam" || region != "":
		return ARN{}, errors.New("not an IAM ARN (arn:PARTITION:iam::ACCOUNT:role/NAME)")
	case len(account) != 12 || strings.Trim(account, "0123456789") != "":
		return ARN{}, fmt.Errorf("account %q is not 12 digits", account)
	case !strings.HasPrefix(resource, "role/"):
		return ARN{}, errors.New("not a role ARN (its resource must start with role/)")
	}
	name, err := checkRolePath(strings.TrimPrefix(resource, "role/"))
	if err != nil {
		return ARN{}, err
	}
	return ARN{Full: s, Name: name}, nil
}

// checkRolePath checks "NAME" or "PATH/NAME" below role/ and returns NAME.
func checkRolePath(p string) (string, error) {
	segs := strings.Split(p, "/")
	for _, s := range segs {
		if s == "" {
			return "", fmt.Errorf("role %q has an empty path segment", p)
		}
		if i := strings.IndexFunc(s, func(r rune) bool { return !isRoleChar(r) }); i >= 0 {
			return "", fmt.Errorf("role %q: %q is not allowed in a role name (letters, digits and +=,.@_-)", p, s[i:i+1])
		}
	}
	name := segs[len(segs)-1]
	if len(name) > MaxRoleName {
		return "", fmt.Errorf("role name %q is longer than %d characters", name, MaxRoleName)
	}
	return name, nil
}

// isRoleChar: IAM's [\w+=,.@-].
func isRoleChar(r rune) bool {
	return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune("_+=,.@-", r)
}

// IsARN reports whether ref is written as an ARN rather than a short name.
func IsARN(ref string) bool { return strings.HasPrefix(ref, "arn:") }

// CheckRef checks a role as a rule's role: or an annotation writes it: a
// full role ARN, or a short name ("ci-builder", "team/ci-builder") to be
// put under roles.base_arn.
func CheckRef(ref string) error {
	if IsARN(ref) {
		_, err := ParseARN(ref)
		return err
	}
	if ref == "" {
		return errors.New("empty role")
	}
	_, err := checkRolePath(ref)
	return err
}

// Expand returns the ARN of ref under base: ref itself when it is an ARN,
// base+ref for a short name. A short name without a base is an error.
func Expand(base, ref string) (ARN, error) {
	if IsARN(ref) {
		return ParseARN(ref)
	}
	if err := CheckRef(ref); err != nil {
		return ARN{}, err
	}
	if base == "" {
		return ARN{}, fmt.Errorf("role %q is a short name and roles.base_arn is not set: write the full ARN or set roles.base_arn", ref)
	}
	return ParseARN(base + ref)
}
