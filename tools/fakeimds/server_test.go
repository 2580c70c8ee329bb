package fakeimds

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// newTestServer returns a Server recording into rec (nil: not recording; a
// nil *bytes.Buffer must not become a non-nil io.Writer).
func newTestServer(t *testing.T, rec *bytes.Buffer) *Server {
	t.Helper()
	var w io.Writer
	if rec != nil {
		w = rec
	}
	s, err := New(w)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func do(s http.Handler, method, target string, header ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	return w
}

func token(t *testing.T, s http.Handler) string {
	t.Helper()
	w := do(s, "PUT", TokenPath, "X-aws-ec2-metadata-token-ttl-seconds", "60")
	if w.Code != 200 {
		t.Fatalf("token PUT: %d", w.Code)
	}
	return w.Body.String()
}

func TestToken(t *testing.T) {
	s := newTestServer(t, nil)
	cases := []struct {
		name, method, ttl string
		want              int
	}{
		{"ok", "PUT", "21600", 200},
		{"min", "PUT", "1", 200},
		{"zero", "PUT", "0", 400},
		{"too large", "PUT", "21601", 400},
		{"not a number", "PUT", "abc", 400},
		{"missing", "PUT", "", 400},
		{"GET", "GET", "60", 405},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := do(s, c.method, TokenPath, "X-aws-ec2-metadata-token-ttl-seconds", c.ttl)
			if w.Code != c.want {
				t.Fatalf("status %d, want %d", w.Code, c.want)
			}
			if got := w.Header().Get("Server"); got != "EC2ws" {
				t.Errorf("Server %q", got)
			}
			if c.want == 200 && w.Header().Get("X-aws-ec2-metadata-token-ttl-seconds") != c.ttl {
				t.Errorf("TTL header %q, want %q", w.Header().Get("X-aws-ec2-metadata-token-ttl-seconds"), c.ttl)
			}
			if c.want == 405 && w.Header().Get("Allow") != "OPTIONS, PUT" {
				t.Errorf("Allow %q", w.Header().Get("Allow"))
			}
		})
	}
}

func TestMetadata(t *testing.T) {
	s := newTestServer(t, nil)
	tok := token(t, s)
	cases := []struct {
		name, method, target, token string
		want                        int
		body, location              string
	}{
		{"instance-id", "GET", "/latest/meta-data/instance-id", tok, 200, InstanceID, ""},
		{"HEAD", "HEAD", "/latest/meta-data/instance-id", tok, 200, "", ""},
		{"az", "GET", "/latest/meta-data/placement/availability-zone", tok, 200, AvailabilityZone, ""},
		{"region", "GET", "/latest/meta-data/placement/region", tok, 200, Region, ""},
		{"role list", "GET", "/latest/meta-data/iam/security-credentials/", tok, 200, RoleName, ""},
		{"role", "GET", "/latest/meta-data/iam/security-credentials/" + RoleName, tok, 200, AccessKeyID, ""},
		{"dir without slash", "GET", "/latest/meta-data/placement", tok, 301, "", "/latest/meta-data/placement/"},
		{"unknown", "GET", "/latest/meta-data/nope", tok, 404, "", ""},
		{"dated version", "GET", "/2009-04-04/meta-data/instance-id", tok, 404, "", ""},
		{"no token", "GET", "/latest/meta-data/instance-id", "", 401, "401 - Unauthorized", ""},
		{"forged token", "GET", "/latest/meta-data/instance-id", "not-a-token", 401, "", ""},
		{"POST", "POST", "/latest/meta-data/instance-id", tok, 405, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := do(s, c.method, c.target, "X-aws-ec2-metadata-token", c.token)
			if w.Code != c.want {
				t.Fatalf("status %d, want %d: %s", w.Code, c.want, w.Body)
			}
			if !strings.Contains(w.Body.String(), c.body) {
				t.Errorf("body %q does not contain %q", w.Body, c.body)
			}
			if got := w.Header().Get("Location"); got != c.location {
				t.Errorf("Location %q, want %q", got, c.location)
			}
		})
	}
}

func TestStats(t *testing.T) {
	s := newTestServer(t, nil)
	tok := token(t, s)
	do(s, "GET", "/latest/meta-data/instance-id", "X-aws-ec2-metadata-token", tok)
	do(s, "GET", "/latest/meta-data/instance-id")
	w := do(s, "GET", StatsPath)
	var got Stats
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatalf("decode stats %q: %v", w.Body, err)
	}
	if want := (Stats{TokenPuts: 1, Gets: 2, Unauthorized: 1}); got != want {
		t.Fatalf("stats %+v, want %+v", got, want)
	}
}

func TestRecord(t *testing.T) {
	var buf bytes.Buffer
	s := newTestServer(t, &buf)
	do(s, "GET", "/latest/meta-data/a%2fb?x=1", "X-Forwarded-For", "203.0.113.7")
	do(s, "GET", StatsPath)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("recorded %d lines, want 1 (stats not recorded): %q", len(lines), lines)
	}
	var rec Record
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Method != "GET" || rec.Target != "/latest/meta-data/a%2fb?x=1" {
		t.Errorf("record %+v", rec)
	}
	if got := rec.Header["X-Forwarded-For"]; len(got) != 1 || got[0] != "203.0.113.7" {
		t.Errorf("X-Forwarded-For recorded as %q", got)
	}
}

func TestTokenExpiry(t *testing.T) {
	m, err := newMinter()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1000, 0)
	tok := m.mint(now, 1)
	if !m.valid(now, tok) {
		t.Fatal("fresh token invalid")
	}
	if m.valid(now.Add(time.Second), tok) {
		t.Fatal("expired token valid")
	}
	other, _ := newMinter()
	if other.valid(now, tok) {
		t.Fatal("token valid under another key")
	}
}
