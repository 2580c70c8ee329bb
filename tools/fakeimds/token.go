package fakeimds

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strconv"
	"time"
)

// MaxTTL is the largest token lifetime IMDS grants, in seconds.
const MaxTTL = 21600

// minter makes and checks stateless tokens: the expiry and an HMAC over it,
// so checking needs no lock and no memory, whatever the load.
type minter struct {
	key []byte
}

func newMinter() (*minter, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("read token key: %w", err)
	}
	return &minter{key: key}, nil
}

// parseTTL reads the X-aws-ec2-metadata-token-ttl-seconds value as IMDS does:
// an integer in 1..MaxTTL.
func parseTTL(v string) (int, bool) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > MaxTTL {
		return 0, false
	}
	return n, true
}

func (m *minter) mint(now time.Time, ttl int) string {
	buf := make([]byte, 8, 8+sha256.Size)
	binary.BigEndian.PutUint64(buf, uint64(now.Add(time.Duration(ttl)*time.Second).Unix()))
	return base64.RawURLEncoding.EncodeToString(m.sign(buf))
}

func (m *minter) valid(now time.Time, token string) bool {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(raw) != 8+sha256.Size {
		return false
	}
	if !hmac.Equal(m.sign(raw[:8:8]), raw) {
		return false
	}
	return now.Unix() < int64(binary.BigEndian.Uint64(raw[:8]))
}

// sign appends the HMAC of expiry to it.
func (m *minter) sign(expiry []byte) []byte {
	mac := hmac.New(sha256.New, m.key)
	mac.Write(expiry)
	return mac.Sum(expiry)
}
