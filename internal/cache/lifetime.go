package cache

import (
	"encoding/json"
	"math"
	"net/http"
	"time"
)

// Lifetimes of IMDS's answers; docs/CACHE.md gives the reason for each.
const (
	StaticTTL   = time.Hour       // Static: fixed for the boot; the hour bounds a misclassification
	DynamicTTL  = 5 * time.Second // Dynamic: a changed address or attached interface shows within seconds
	EventTTL    = time.Second     // Event: 200 and 404 alike; pollers ask every few seconds
	NotFoundTTL = 5 * time.Second // any other 404: a role attached or tags enabled show within seconds
	EventStale  = 5 * time.Second // the most stale an event answer may be served
	MinTTL      = time.Second     // an answer that would live shorter is still held this long, to coalesce
	refreshPart = 4               // a Static or Dynamic hit refreshes in the background after 3/4 of the TTL

	CredMargin     = 5 * time.Minute  // credentials are fresh until Expiration - CredMargin
	CredAhead      = 15 * time.Minute // and refreshed in the background from Expiration - CredAhead
	CredRevalidate = 5 * time.Minute  // and revalidated this often, so a replaced role shows
	credRetry      = 15 * time.Second // IMDS has not rotated yet: retry after this, doubling,
	credRetryMax   = 2 * time.Minute  // up to this, jittered
)

const never = time.Duration(math.MaxInt64)

// cacheable are the statuses whose answers are kept: IMDS's facts, its
// directory redirects, and its "no such path".
func cacheable(status int) bool {
	return status == http.StatusOK || status == http.StatusMovedPermanently || status == http.StatusNotFound
}

// failed are the answers that say IMDS could not answer, not what the path
// holds: our session token refused, throttling, server errors. They are
// never kept; a held answer is served instead while within its grace.
func failed(status int) bool {
	return status == http.StatusUnauthorized || status == http.StatusTooManyRequests || status >= 500
}

// setLifetimes fills in a's fresh and stale limits for slot s and returns
// when a hit should start s's next background refresh (never: no refresh).
// c.mu is held.
func (c *Cache) setLifetimes(s *slot, a *answer, wall time.Time, now time.Duration) (next time.Duration) {
	grace := c.grace
	switch {
	case s.class == Event:
		a.fresh, a.stale = now+EventTTL, now+EventTTL+min(grace, EventStale)
		return never
	case a.status == http.StatusNotFound:
		a.fresh, a.stale = now+NotFoundTTL, now+NotFoundTTL+grace
		return never
	case s.class == Credentials:
		return c.credentialLifetimes(s, a, wall, now)
	}
	ttl := DynamicTTL
	if s.class == Static {
		ttl = StaticTTL
	}
	a.fresh, a.stale = now+ttl, now+ttl+grace
	return now + ttl - ttl/refreshPart
}

// credentials is what the cache reads of a credentials document; the
// document itself is served byte for byte.
type credentials struct {
	Code        string
	AccessKeyID string `json:"AccessKeyId"`
	Expiration  time.Time
}

// credentialLifetimes: fresh until shortly before Expiration, revalidated
// every CredRevalidate, refreshed ahead of Expiration; a refresh inside the
// refresh window that finds IMDS has not rotated them yet backs off with
// jitter. Never served, even stale, past their Expiration. A document that
// is not a successful one is held MinTTL, to coalesce, and not served stale.
func (c *Cache) credentialLifetimes(s *slot, a *answer, wall time.Time, now time.Duration) time.Duration {
	var cr credentials
	if a.status != http.StatusOK || json.Unmarshal(a.body, &cr) != nil || cr.Code != "Success" ||
		cr.AccessKeyID == "" || cr.Expiration.IsZero() {
		a.fresh, a.stale = now+MinTTL, now+MinTTL
		return never
	}
	expires := now + cr.Expiration.Sub(wall)
	a.keyID = cr.AccessKeyID
	a.fresh = max(expires-CredMargin, now+MinTTL)
	a.stale = max(min(a.fresh+c.grace, expires), a.fresh)
	next := min(now+CredRevalidate, expires-CredAhead)
	if next > now {
		s.unrotated = 0
		return next
	}
	// Inside the refresh window, and IMDS still gives these credentials.
	s.unrotated++
	wait := jitter(backoff(s.unrotated, credRetry, credRetryMax))
	c.log.Debug("credentials not rotated yet; asking again later", "path", s.path,
		"same_access_key", s.held() != nil && s.held().keyID == a.keyID,
		"expires_in", cr.Expiration.Sub(wall).Round(time.Second), "retry_in", wait)
	return now + wait
}
