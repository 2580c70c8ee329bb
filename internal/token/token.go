// Package token mints and checks the IMDSv2 session tokens imdsguard hands
// to its callers. Tokens are stateless: an HMAC over the caller's binding
// (its uid, or its network namespace and address; see identity.Caller) and
// the expiry, so they survive a daemon restart and are worthless to any
// other caller. The upstream IMDS token never leaves the daemon.
package token

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"time"
)

const (
	version = 1
	macLen  = 16
	rawLen  = 1 + 8 + macLen
	// Len is the length of a token as sent to callers.
	Len = (rawLen*8 + 5) / 6
)

// Errors returned by Verify; the proxy answers all of them with 401.
var (
	ErrMalformed = errors.New("token malformed")
	ErrExpired   = errors.New("token expired")
	ErrForged    = errors.New("token not minted for this caller")
)

var enc = base64.RawURLEncoding

// Minter mints and verifies tokens with one key.
type Minter struct {
	key []byte
}

// NewMinter returns a Minter using key (see LoadKey).
func NewMinter(key []byte) *Minter {
	return &Minter{key: key}
}

// Mint returns a token for binding that expires after ttl.
func (m *Minter) Mint(binding string, ttl time.Duration) string {
	var raw [rawLen]byte
	raw[0] = version
	binary.BigEndian.PutUint64(raw[1:9], uint64(time.Now().Add(ttl).Unix()))
	copy(raw[9:], m.mac(raw[:9], binding))
	return enc.EncodeToString(raw[:])
}

// Verify checks that tok was minted by this key for binding and has not
// expired.
func (m *Minter) Verify(tok, binding string) error {
	_, err := m.Check(tok, binding)
	return err
}

// Check is Verify that also returns when tok expires: a caller that keeps
// a verified token (one connection does) need only compare the time.
func (m *Minter) Check(tok, binding string) (expires time.Time, err error) {
	var raw [rawLen]byte
	if len(tok) != Len {
		return time.Time{}, ErrMalformed
	}
	if n, err := enc.Decode(raw[:], []byte(tok)); err != nil || n != rawLen || raw[0] != version {
		return time.Time{}, ErrMalformed
	}
	if !hmac.Equal(raw[9:], m.mac(raw[:9], binding)) {
		return time.Time{}, ErrForged
	}
	exp := int64(binary.BigEndian.Uint64(raw[1:9]))
	if time.Now().Unix() >= exp {
		return time.Time{}, ErrExpired
	}
	return time.Unix(exp, 0), nil
}

func (m *Minter) mac(head []byte, binding string) []byte {
	h := hmac.New(sha256.New, m.key)
	h.Write([]byte("imdsguard token\x00"))
	h.Write(head)
	h.Write([]byte(binding))
	return h.Sum(nil)[:macLen]
}
