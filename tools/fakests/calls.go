package fakests

import (
	"fmt"
	"sync"
	"time"
)

// Call is one request the fake received at its STS endpoint, as it was
// sent and as it was answered. Refused requests are calls too: a test can
// show that nothing was signed with another key.
type Call struct {
	Time      time.Time `json:"time"`       // received, by the fake's clock
	RequestID string    `json:"request_id"` // the answer's RequestId
	Action    string    `json:"action"`     // "AssumeRole" unless the caller sent another
	RoleARN   string    `json:"role_arn"`
	// RoleSessionName, ExternalID, DurationSeconds (0: not sent), Tags
	// and TransitiveTagKeys are AssumeRole's parameters as sent.
	RoleSessionName   string   `json:"role_session_name"`
	ExternalID        string   `json:"external_id,omitempty"`
	DurationSeconds   int      `json:"duration_seconds,omitempty"`
	Tags              []Tag    `json:"tags,omitempty"`
	TransitiveTagKeys []string `json:"transitive_tag_keys,omitempty"`
	// SignerKeyID and Region are the access key id and the region of the
	// signature's credential scope ("" when unsigned or unreadable).
	SignerKeyID string `json:"signer_key_id"`
	Region      string `json:"region"`
	// Outcome is "" while the call is being answered (a Fault's Delay),
	// then OK, the error code answered (Code), or Canceled when the caller
	// went away first; Status is the HTTP status sent (0 if none was).
	Outcome string `json:"outcome"`
	Status  int    `json:"status,omitempty"`
	// AccessKeyID and Expiration are those of the credentials minted (OK).
	AccessKeyID string    `json:"access_key_id,omitempty"`
	Expiration  time.Time `json:"expiration,omitzero"`
}

// Outcomes that are not error codes.
const (
	OK       = "OK"
	Canceled = "Canceled"
)

// Tag is a session tag.
type Tag struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// callLog holds every call, in the order received; a call is added when it
// arrives and completed when answered.
type callLog struct {
	mu    sync.Mutex
	calls []*Call
	n     int // requests ever received: RequestIds stay unique across clear
}

// add records c and returns it, to be finished later; it sets c.RequestID.
func (l *callLog) add(c *Call) *Call {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n++
	c.RequestID = requestID(l.n)
	l.calls = append(l.calls, c)
	return c
}

// finish sets c's outcome under the lock (Calls may be copying it).
func (l *callLog) finish(c *Call, f func(*Call)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f(c)
}

func (l *callLog) snapshot() []Call {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Call, len(l.calls))
	for i, c := range l.calls {
		out[i] = *c
		out[i].Tags = append([]Tag(nil), c.Tags...)
		out[i].TransitiveTagKeys = append([]string(nil), c.TransitiveTagKeys...)
	}
	return out
}

func (l *callLog) clear() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = nil
}

// requestID is a request id in the shape of STS's (a UUID), numbered.
func requestID(n int) string {
	return fmt.Sprintf("fa4e5735-0000-4000-8000-%012x", n)
}
