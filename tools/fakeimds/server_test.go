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

func newOptServer(t *testing.T, o Options) *Server {
	t.Helper()
	s, err := NewWithOptions(nil, o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestEndpointDisabled: every request, the token PUT too, is answered 403
// with IMDS's error body.
func TestEndpointDisabled(t *testing.T) {
	s := newOptServer(t, Options{Endpoint: EndpointDisabled})
	for _, c := range []struct{ method, target string }{
		{"PUT", TokenPath}, {"GET", "/latest/meta-data/instance-id"}, {"GET", "/"},
	} {
		w := do(s, c.method, c.target, "X-aws-ec2-metadata-token-ttl-seconds", "60")
		if w.Code != 403 || !strings.Contains(w.Body.String(), "403 - Forbidden") {
			t.Errorf("%s %s: %d %q, want 403", c.method, c.target, w.Code, w.Body)
		}
	}
}

// TestEndpointSilent: the request is held until the client gives up.
func TestEndpointSilent(t *testing.T) {
	srv := httptest.NewServer(newOptServer(t, Options{Endpoint: EndpointSilent}))
	defer srv.Close()
	c := &http.Client{Timeout: 200 * time.Millisecond}
	resp, err := c.Get(srv.URL + "/latest/meta-data/instance-id")
	if err == nil {
		resp.Body.Close()
		t.Fatalf("silent endpoint answered %s", resp.Status)
	}
}

func TestTags(t *testing.T) {
	for _, on := range []bool{false, true} {
		s := newOptServer(t, Options{Tags: on})
		tok := token(t, s)
		want, wantName := 404, 404
		if on {
			want, wantName = 200, 200
		}
		dir := 404 // a directory asked without its slash: 301 when there
		if on {
			dir = 301
		}
		if w := do(s, "GET", "/latest/meta-data/tags/instance", "X-aws-ec2-metadata-token", tok); w.Code != dir {
			t.Errorf("tags %v: tags/instance %d, want %d", on, w.Code, dir)
		}
		if w := do(s, "GET", "/latest/meta-data/tags/instance/", "X-aws-ec2-metadata-token", tok); w.Code != want ||
			on && w.Body.String() != "Environment\nName" {
			t.Errorf("tags %v: tags/instance/ %d %q, want %d", on, w.Code, w.Body, want)
		}
		if w := do(s, "GET", "/latest/meta-data/tags/instance/Name", "X-aws-ec2-metadata-token", tok); w.Code != wantName ||
			on && w.Body.String() != Tags["Name"] {
			t.Errorf("tags %v: Name %d %q", on, w.Code, w.Body)
		}
		listing := do(s, "GET", "/latest/meta-data/", "X-aws-ec2-metadata-token", tok).Body.String()
		if strings.Contains(listing, "tags/") != on {
			t.Errorf("tags %v: meta-data/ lists %q", on, listing)
		}
	}
	if _, err := NewWithOptions(nil, Options{HopLimit: 65}); err == nil {
		t.Error("hop limit 65 accepted")
	}
	if _, err := NewWithOptions(nil, Options{Endpoint: "off"}); err == nil {
		t.Error("endpoint \"off\" accepted")
	}
}
