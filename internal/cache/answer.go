package cache

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"

	protocol "github.com/imdsguard/imdsguard/internal/imds"
)

// Bounds on what is read from IMDS. IMDS's largest answer is user data
// (16 KB); an answer up to MaxEntryBody is held, a larger one up to
// ReadLimit is served to the callers that waited for it and not held, and
// a larger one still is refused (502): IMDS never sends one.
const (
	MaxEntryBody = 64 << 10
	ReadLimit    = protocol.MaxAnswer
)

// answer is one answer of IMDS, immutable once built: every caller gets a
// fresh *http.Response reading the same bytes, with the same header map.
type answer struct {
	status int
	line   string      // the status line's text, "200 OK"
	header http.Header // the headers callers may see; Content-Length is the body's
	body   []byte
	size   int64 // bytes accounted for it

	fresh time.Duration // a hit until (monotonic)
	stale time.Duration // served instead of an error until
	keyID string        // AccessKeyId of a credentials document
}

// passed are the response headers of IMDS that callers see. Date is left
// to the server (a held answer would carry an old one); hop-by-hop headers
// belong to the upstream connection; anything else IMDS might add (its
// token TTL on GETs, say) is about imdsguard's session, not the caller's.
var passed = []string{"Content-Type", "Server", "Location", "Last-Modified", "Etag", "Accept-Ranges", "Cache-Control", "Expires"}

// readAnswer reads IMDS's answer whole, within ReadLimit, and closes it.
func readAnswer(resp *http.Response) (*answer, error) {
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, ReadLimit+1))
	if err != nil {
		return nil, fmt.Errorf("read IMDS answer: %w", err)
	}
	if len(body) > ReadLimit {
		return nil, fmt.Errorf("IMDS answer larger than %d bytes", ReadLimit)
	}
	a := &answer{status: resp.StatusCode, line: resp.Status, body: bytes.Clone(body)}
	if a.line == "" {
		a.line = strconv.Itoa(a.status) + " " + http.StatusText(a.status)
	}
	a.header = make(http.Header, len(passed)+1)
	for _, name := range passed {
		if v := resp.Header[name]; len(v) > 0 {
			a.header[name] = slices.Clip(slices.Clone(v)) // len == cap: an append copies
		}
	}
	a.header["Content-Length"] = []string{strconv.Itoa(len(a.body))}
	a.size = int64(len(a.body))
	for name, values := range a.header {
		a.size += int64(len(name))
		for _, v := range values {
			a.size += int64(len(v))
		}
	}
	return a, nil
}

// response is a new *http.Response for a; a HEAD gets the headers (with
// the GET's Content-Length, as IMDS sends them) and no body. Its Header is
// a's own map, shared by every response of a, so it is read, never
// changed (Cache.FetchOutcome).
func (a *answer) response(head bool) *http.Response {
	resp := &http.Response{
		Status:        a.line,
		StatusCode:    a.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        a.header,
		ContentLength: int64(len(a.body)),
		Body:          http.NoBody,
	}
	if !head {
		resp.Body = io.NopCloser(bytes.NewReader(a.body))
	}
	return resp
}
