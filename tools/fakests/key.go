package fakests

import (
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"strconv"

	"github.com/imdsguard/imdsguard/tools/fakeimds"
)

// Key is a set of AWS credentials: those a request may be signed with, or
// those the fake mints.
type Key struct {
	AccessKeyID     string `json:"access_key_id"`
	SecretAccessKey string `json:"secret_access_key"`
	SessionToken    string `json:"session_token,omitempty"`
}

// NodeKey is the node's credentials as the tests' IMDS stand-ins serve them
// at iam/security-credentials/baskinc-role: amazon-ec2-metadata-mock's
// defaults, which fakeimds copies. A daemon that signs its STS calls with
// the credentials it read from either is accepted by a fake with default
// Options. (AEMM's Expiration is in 2020; the fake does not look at it.)
var NodeKey = Key{
	AccessKeyID:     fakeimds.AccessKeyID,
	SecretAccessKey: fakeimds.SecretAccessKey,
	SessionToken:    fakeimds.Token,
}

// Mint returns the credentials the fake issues on the n-th successful
// AssumeRole (from 1) of roleARN with session name session: the same for
// the same three values, different for any other. The AccessKeyId is
// "ASIA" and 16 characters of a hash, as long as a real one; the
// SessionToken starts with "fakests/".
func Mint(roleARN, session string, n int) Key {
	return Key{
		AccessKeyID:     "ASIA" + digest("akid", roleARN, session, n)[:16],
		SecretAccessKey: base64.StdEncoding.EncodeToString(rawDigest("secret", roleARN, session, n)[:30]),
		SessionToken:    "fakests/" + base64.StdEncoding.EncodeToString(rawDigest("token", roleARN, session, n)),
	}
}

// assumedRoleID is the AssumedRoleId of a session: "AROA" and a hash of the
// role (a role's unique id), then ":" and the session name.
func assumedRoleID(roleARN, session string) string {
	return "AROA" + digest("role", roleARN, "", 0)[:17] + ":" + session
}

// digest is the unpadded base32 (A-Z, 2-7: the alphabet of access key ids)
// of rawDigest.
func digest(purpose, roleARN, session string, n int) string {
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(rawDigest(purpose, roleARN, session, n))
}

func rawDigest(purpose, roleARN, session string, n int) []byte {
	h := sha256.New()
	for _, s := range []string{purpose, roleARN, session, strconv.Itoa(n)} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return h.Sum(nil)
}
