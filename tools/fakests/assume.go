package fakests

import (
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// STS's constraints on AssumeRole's parameters (its API reference).
var (
	roleARNPattern    = regexp.MustCompile(`^arn:(aws[a-z-]*):iam::(\d{12}):role/([\w+=,.@/-]+)$`)
	sessionPattern    = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)
	externalIDPattern = regexp.MustCompile(`^[\w+=,.@:/-]+$`) // and 2..1224 long
	tagKeyPattern     = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]{1,128}$`)
	tagValuePattern   = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]{0,256}$`)
)

const (
	minDuration     = 900 * time.Second
	defaultDuration = time.Hour
	maxTags         = 50
)

// assumeRoleInput is an AssumeRole call's parameters, as sent.
type assumeRoleInput struct {
	roleARN, session, externalID string
	hasExternalID                bool
	durationSeconds              int // 0: not sent
	durationText                 string
	tags                         []Tag
	transitive                   []string
}

// parseAssumeRole reads AssumeRole's parameters from form, without
// judging them (every call is recorded, a refused one too).
func parseAssumeRole(form url.Values) assumeRoleInput {
	in := assumeRoleInput{
		roleARN:      form.Get("RoleArn"),
		session:      form.Get("RoleSessionName"),
		externalID:   form.Get("ExternalId"),
		durationText: form.Get("DurationSeconds"),
	}
	in.hasExternalID = form.Has("ExternalId")
	in.durationSeconds, _ = strconv.Atoi(in.durationText)
	for n := 1; form.Has(member("Tags", n, ".Key")); n++ {
		in.tags = append(in.tags, Tag{Key: form.Get(member("Tags", n, ".Key")), Value: form.Get(member("Tags", n, ".Value"))})
	}
	for n := 1; form.Has(member("TransitiveTagKeys", n, "")); n++ {
		in.transitive = append(in.transitive, form.Get(member("TransitiveTagKeys", n, "")))
	}
	return in
}

func member(list string, n int, field string) string {
	return list + ".member." + strconv.Itoa(n) + field
}

// validate checks in against STS's constraints and maxDuration (the role's
// MaxSessionDuration), returning nil or the ValidationError to answer.
func (in assumeRoleInput) validate(maxDuration time.Duration) *apiError {
	bad := func(format string, args ...any) *apiError {
		return sender(http.StatusBadRequest, ValidationError, format, args...)
	}
	switch {
	case !roleARNPattern.MatchString(in.roleARN) || len(in.roleARN) > 2048:
		return bad("%q is invalid for roleArn: want arn:aws:iam::ACCOUNT:role/NAME", in.roleARN)
	case !sessionPattern.MatchString(in.session):
		return bad("Value %q at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]* and have length 2..64", in.session)
	case in.hasExternalID && (!externalIDPattern.MatchString(in.externalID) || len(in.externalID) < 2 || len(in.externalID) > 1224):
		return bad("Value %q at 'externalId' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@:/-]* and have length 2..1224", in.externalID)
	case in.durationText != "" && (in.durationSeconds < int(minDuration/time.Second) || in.durationText != strconv.Itoa(in.durationSeconds)):
		return bad("Value %q at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900", in.durationText)
	case in.duration() > maxDuration:
		return bad("The requested DurationSeconds exceeds the MaxSessionDuration set for this role.")
	}
	return validateTags(in.tags)
}

func validateTags(tags []Tag) *apiError {
	if len(tags) > maxTags {
		return sender(http.StatusBadRequest, ValidationError, "Value at 'tags' failed to satisfy constraint: Member must have length less than or equal to %d", maxTags)
	}
	seen := map[string]bool{}
	for _, t := range tags {
		if !tagKeyPattern.MatchString(t.Key) || !tagValuePattern.MatchString(t.Value) {
			return sender(http.StatusBadRequest, ValidationError, "Tag %q=%q does not satisfy the tag key or value constraints", t.Key, t.Value)
		}
		k := strings.ToLower(t.Key)
		if seen[k] {
			return sender(http.StatusBadRequest, ValidationError, "Duplicate tag keys found. Please note that Tag keys are case insensitive.")
		}
		seen[k] = true
	}
	return nil
}

// duration is the session's lifetime: DurationSeconds, else STS's default
// of an hour.
func (in assumeRoleInput) duration() time.Duration {
	if in.durationSeconds == 0 {
		return defaultDuration
	}
	return time.Duration(in.durationSeconds) * time.Second
}

// assumedRoleARN is the session's ARN:
// arn:PARTITION:sts::ACCOUNT:assumed-role/ROLE-NAME/SESSION (the role's
// name without its path).
func (in assumeRoleInput) assumedRoleARN() string {
	m := roleARNPattern.FindStringSubmatch(in.roleARN)
	if m == nil {
		return ""
	}
	return "arn:" + m[1] + ":sts::" + m[2] + ":assumed-role/" + roleName(in.roleARN) + "/" + in.session
}

// roleName is the last segment of a role ARN's path: the role's name.
func roleName(roleARN string) string {
	return roleARN[strings.LastIndexByte(roleARN, '/')+1:]
}
