package roles

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"
)

// Session is one role session as STS is asked for it: the broker's cache
// key. Two workloads with the same Session share its credentials.
type Session struct {
	RoleARN    string
	RoleName   string // the ARN's last segment: what IMDS lists
	Name       string // RoleSessionName, already clean (CleanSessionName)
	ExternalID string // "" for none
	Tags       []Tag  // sorted by key; nil for none
}

// Tag is one session tag.
type Tag struct{ Key, Value string }

// Key is a string that identifies s: equal for equal sessions.
func (s Session) Key() string {
	var b strings.Builder
	b.WriteString(s.RoleARN)
	b.WriteByte(0)
	b.WriteString(s.Name)
	b.WriteByte(0)
	b.WriteString(s.ExternalID)
	for _, t := range s.Tags {
		b.WriteByte(0)
		b.WriteString(t.Key)
		b.WriteByte('=')
		b.WriteString(t.Value)
	}
	return b.String()
}

// Credentials are a role session's temporary credentials.
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	Expiration      time.Time
	LastUpdated     time.Time // when STS issued them (as IMDS says LastUpdated)
}

// Session-name bounds (STS RoleSessionName: 2..64 of [\w+=,.@-]).
const (
	MaxSessionName = 64
	minSessionName = 2
	hashLen        = 8 // hex characters of the suffix of a cut name
)

// CleanSessionName makes s a valid RoleSessionName, the same for the same
// s every time (refreshes keep their session name): every character
// outside [\w+=,.@-] becomes "-"; a name longer than 64 characters is cut
// and ends in "-" and 8 hex characters of a hash of the whole of s, so
// that two long names that share their first 55 characters stay apart; a
// name shorter than 2 characters is prefixed "imdsguard.".
func CleanSessionName(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r < 0x80 && isRoleChar(r) {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	out := b.String()
	if len(out) > MaxSessionName {
		sum := sha256.Sum256([]byte(s))
		out = out[:MaxSessionName-hashLen-1] + "-" + hex.EncodeToString(sum[:])[:hashLen]
	}
	if len(out) < minSessionName {
		out = "imdsguard." + out
	}
	return out
}
