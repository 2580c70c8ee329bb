package proxy

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/imdsguard/imdsguard/internal/audit"
	"github.com/imdsguard/imdsguard/internal/canon"
	"github.com/imdsguard/imdsguard/policy"
)

// pessimisticIMDS is an Upstream that reads paths as loosely as any server
// might (case-insensitive, decoding again, backslash as slash) and answers
// SECRET for anything that could be credentials, user data or signatures.
type pessimisticIMDS struct {
	mu      sync.Mutex
	fetched []string
}

func (u *pessimisticIMDS) Fetch(_ context.Context, method, path string) (*http.Response, error) {
	u.mu.Lock()
	u.fetched = append(u.fetched, path)
	u.mu.Unlock()
	body := "ordinary"
	if looselySecret(path) {
		body = "SECRET"
	}
	return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body))}, nil
}

// looselySecret reads path the way a lax server might (case folded,
// backslashes as slashes, decoded again, dot segments and empty segments
// resolved, ";" parameters dropped) and reports whether that names
// credentials, user data or an identity signature under any version.
func looselySecret(path string) bool {
	p := strings.ToLower(strings.ReplaceAll(path, `\`, "/"))
	if d, err := url.PathUnescape(p); err == nil {
		p = d
	}
	var segs []string
	for _, s := range strings.Split(p, "/") {
		s, _, _ = strings.Cut(s, ";")
		switch s {
		case "", ".":
		case "..":
			if len(segs) > 0 {
				segs = segs[:len(segs)-1]
			}
		default:
			segs = append(segs, s)
		}
	}
	if len(segs) < 2 {
		return false
	}
	rel := strings.Join(segs[1:], "/") + "/"
	for _, secret := range []string{"meta-data/iam/", "meta-data/identity-credentials/", "user-data/",
		"dynamic/instance-identity/signature/", "dynamic/instance-identity/pkcs7/", "dynamic/instance-identity/rsa2048/"} {
		if strings.HasPrefix(rel, secret) {
			return true
		}
	}
	return false
}

func (u *pessimisticIMDS) take() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	f := u.fetched
	u.fetched = nil
	return f
}

// FuzzPipeline: for any request target, the proxy refuses it, or it fetches
// exactly the canonical path it decided on; and a caller the default policy
// keeps from secrets never receives one.
func FuzzPipeline(f *testing.F) {
	for _, c := range []string{
		"/latest/meta-data/iam/security-credentials/", "//latest/meta-data/placement/../iam/info",
		"/latest/meta-data/%69am/info", "/latest/meta-data/IAM/info", "http://169.254.169.254/latest/user-data",
		"/latest/meta-data/placement/%2e%2e/iam/", "/2009-04-04/dynamic/instance-identity/signature",
		"/latest/meta-data/instance-id", "/", "/latest", "/latest/api/token",
	} {
		f.Add("GET", c)
	}
	up := &pessimisticIMDS{}
	var events []*audit.Event
	pol, _, err := policy.Compile(policy.DefaultConfig(), nil) // no names resolve: the caller is nobody special
	if err != nil {
		f.Fatal(err)
	}
	p := New(Options{Upstream: up, Policy: pol, Minter: nil, Observe: func(e *audit.Event) { c := *e; events = append(events, &c) }})
	f.Fuzz(func(t *testing.T, method, target string) {
		events = events[:0]
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(method + " " + target + " HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n")))
		if err != nil {
			return // net/http would have answered 400 before the pipeline
		}
		req.RemoteAddr = "127.0.0.1:40000"
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, req)
		fetched := up.take()
		if strings.Contains(rec.Body.String(), "SECRET") {
			t.Fatalf("%s %q served a secret to a caller the policy denies it (fetched %q)", method, target, fetched)
		}
		if len(fetched) == 0 {
			return
		}
		want, err := canon.Parse(req.RequestURI)
		if err != nil || len(fetched) != 1 || fetched[0] != want.String() {
			t.Fatalf("%s %q fetched %q, decided on %q (%v)", method, target, fetched, want.String(), err)
		}
		if len(events) != 1 || events[0].Path != fetched[0] {
			t.Fatalf("%s %q: event %+v does not name the fetched path %q", method, target, events, fetched[0])
		}
	})
}
