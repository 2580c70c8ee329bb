package proxy

import (
	"net/http"
	"strings"
	"testing"
)

// docs/operations.md's "What callers see" table, against a recording
// tokens-required IMDS, as the test process (a host caller; under the
// default policy it may read non-secret metadata).
func TestWhatCallersSee(t *testing.T) {
	e := newEnv(t)
	tok := e.mint(t)
	cases := []struct {
		name, method, target string
		headers              []string
		status               int
		body                 string // substring of the answer
	}{
		{"token PUT", "PUT", "/latest/api/token", []string{"X-aws-ec2-metadata-token-ttl-seconds: 21600"}, 200, ""},
		{"token TTL missing", "PUT", "/latest/api/token", nil, 400, "400 - Bad Request"},
		{"token TTL 0", "PUT", "/latest/api/token", []string{"X-aws-ec2-metadata-token-ttl-seconds: 0"}, 400, ""},
		{"token TTL too large", "PUT", "/latest/api/token", []string{"X-aws-ec2-metadata-token-ttl-seconds: 21601"}, 400, ""},
		{"token TTL not a number", "PUT", "/latest/api/token", []string{"X-aws-ec2-metadata-token-ttl-seconds: abc"}, 400, ""},
		{"token TTL signed", "PUT", "/latest/api/token", []string{"X-aws-ec2-metadata-token-ttl-seconds: +60"}, 400, ""},
		{"token TTL twice", "PUT", "/latest/api/token", []string{"X-aws-ec2-metadata-token-ttl-seconds: 60", "X-aws-ec2-metadata-token-ttl-seconds: 60"}, 400, ""},
		{"token PUT relayed", "PUT", "/latest/api/token", []string{"X-aws-ec2-metadata-token-ttl-seconds: 60", "X-Forwarded-For: 203.0.113.7"}, 403, ""},
		{"token PUT Forwarded", "PUT", "/latest/api/token", []string{"X-aws-ec2-metadata-token-ttl-seconds: 60", "Forwarded: for=203.0.113.7"}, 403, ""},
		{"GET token path", "GET", "/latest/api/token", nil, 405, ""},
		{"DELETE token path", "DELETE", "/latest/api/token", nil, 405, ""},
		{"v2 read", "GET", "/latest/meta-data/instance-id", []string{"X-aws-ec2-metadata-token: " + tok}, 200, "served:/latest/meta-data/instance-id"},
		{"v2 HEAD", "HEAD", "/latest/meta-data/instance-id", []string{"X-aws-ec2-metadata-token: " + tok}, 200, ""},
		{"forged token", "GET", "/latest/meta-data/instance-id", []string{"X-aws-ec2-metadata-token: not-a-token"}, 401, "401 - Unauthorized"},
		{"empty token", "GET", "/latest/meta-data/instance-id", []string{"X-aws-ec2-metadata-token: "}, 401, ""},
		{"upstream's kind of token", "GET", "/latest/meta-data/instance-id", []string{"X-aws-ec2-metadata-token: " + upstreamToken}, 401, ""},
		{"two tokens", "GET", "/latest/meta-data/instance-id", []string{"X-aws-ec2-metadata-token: " + tok, "X-aws-ec2-metadata-token: " + tok}, 401, ""},
		{"v1 upgraded", "GET", "/latest/meta-data/instance-id", nil, 200, "served:/latest/meta-data/instance-id"},
		{"v1 listing", "GET", "/latest/meta-data/", nil, 200, "served:/latest/meta-data/"},
		{"POST", "POST", "/latest/meta-data/instance-id", nil, 405, "405 - Method Not Allowed"},
		{"lower-case get", "get", "/latest/meta-data/instance-id", nil, 405, ""},
		{"OPTIONS metadata", "OPTIONS", "/latest/meta-data/instance-id", nil, 405, ""},
		{"denied path", "GET", "/latest/meta-data/iam/security-credentials/role", nil, 403, "403 - Forbidden"},
		{"denied path v2", "GET", "/latest/meta-data/iam/security-credentials/role", []string{"X-aws-ec2-metadata-token: " + tok}, 403, ""},
		{"denied user-data", "GET", "/latest/user-data", nil, 403, ""},
		{"XFF", "GET", "/latest/meta-data/instance-id", []string{"X-Forwarded-For: 203.0.113.7"}, 403, ""},
		{"xff lower", "GET", "/latest/meta-data/instance-id", []string{"x-forwarded-for: 203.0.113.7"}, 403, ""},
		{"XFF empty", "GET", "/latest/meta-data/instance-id", []string{"X-Forwarded-For: "}, 403, ""},
		{"XFF twice", "GET", "/latest/meta-data/instance-id", []string{"X-Forwarded-For: a", "X-Forwarded-For: b"}, 403, ""},
		{"XFF underscore", "GET", "/latest/meta-data/instance-id", []string{"X_Forwarded_For: 203.0.113.7"}, 403, ""},
		{"Forwarded", "GET", "/latest/meta-data/instance-id", []string{"Forwarded: for=203.0.113.7"}, 403, ""},
		{"FORWARDED", "GET", "/latest/meta-data/instance-id", []string{"FORWARDED: for=x"}, 403, ""},
		{"bad path", "GET", "/latest/meta-data/iam;x/info", nil, 400, "400 - Bad Request"},
		{"unknown version", "GET", "/foo/meta-data/", nil, 404, "404 - Not Found"},
		{"long target", "GET", "/latest/meta-data/" + strings.Repeat("a", 3000), nil, 414, ""},
		{"absolute-form", "GET", "http://169.254.169.254/latest/meta-data/instance-id", nil, 200, "served:/latest/meta-data/instance-id"},
		{"absolute-form other host", "GET", "http://example.com/latest/meta-data/instance-id", nil, 400, ""},
		{"directory redirect", "GET", "/latest/meta-data/iam", []string{"X-aws-ec2-metadata-token: " + tok}, 403, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp := e.raw(t, c.method, c.target, c.headers...)
			body := bodyOf(resp)
			if resp.StatusCode != c.status || !strings.Contains(body, c.body) {
				t.Fatalf("%s %s: %d %q, want %d containing %q", c.method, c.target, resp.StatusCode, body, c.status, c.body)
			}
			if c.method != "HEAD" && strings.Contains(body, "ASIASECRET") {
				t.Fatalf("credentials leaked: %q", body)
			}
			if got := resp.Header.Get("Server"); got != "EC2ws" {
				t.Errorf("Server header %q, want EC2ws", got)
			}
		})
	}
}

func TestTokenAnswerLikeIMDS(t *testing.T) {
	e := newEnv(t)
	resp := e.raw(t, "PUT", "/latest/api/token", "X-aws-ec2-metadata-token-ttl-seconds: 21600")
	if got := resp.Header.Get("X-Aws-Ec2-Metadata-Token-Ttl-Seconds"); got != "21600" {
		t.Fatalf("TTL echo %q, want 21600", got)
	}
	if got := resp.Header.Get("Content-Type"); got != "text/plain" {
		t.Errorf("Content-Type %q", got)
	}
	resp = e.raw(t, "GET", "/latest/api/token")
	if got := resp.Header.Get("Allow"); got != "OPTIONS, PUT" {
		t.Fatalf("Allow %q on 405, want \"OPTIONS, PUT\"", got)
	}
	if n := len(e.imds.received()); n != 0 {
		t.Fatalf("token requests reached IMDS %d times; they are answered locally", n)
	}
}

func TestUpstreamHeadersPassThrough(t *testing.T) {
	e := newEnv(t)
	resp := e.raw(t, "GET", "/latest/meta-data/instance-id")
	if resp.Header.Get("Content-Type") != "text/plain" || resp.Header.Get("Server") != "EC2ws" {
		t.Fatalf("headers %v", resp.Header)
	}
	e2 := newEnv(t, withPolicy(t, "rules: [{name: all, match: {}, allow: ['/**']}]"))
	resp = e2.raw(t, "GET", "/latest/meta-data/iam")
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "http://169.254.169.254/latest/meta-data/iam/" {
		t.Fatalf("directory without slash: %d Location %q, want IMDS's 301 as it is", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// The upstream session token never reaches a caller, and callers' tokens
// never reach IMDS.
func TestTokensStayApart(t *testing.T) {
	e := newEnv(t)
	tok := e.mint(t)
	if tok == upstreamToken {
		t.Fatal("the proxy handed out the upstream token")
	}
	e.raw(t, "GET", "/latest/meta-data/instance-id", "X-aws-ec2-metadata-token: "+tok)
	for _, r := range e.imds.received() {
		if got := r.Header.Get("X-Aws-Ec2-Metadata-Token"); r.Method == "GET" && got != upstreamToken {
			t.Fatalf("IMDS received token %q, want the session token", got)
		}
	}
}

func TestStripMode(t *testing.T) {
	e := newEnv(t, strip)
	resp := e.raw(t, "GET", "/latest/meta-data/instance-id", "X-Forwarded-For: 203.0.113.7", "Forwarded: for=x")
	if resp.StatusCode != 200 {
		t.Fatalf("strip mode: %d, want 200", resp.StatusCode)
	}
	resp = e.raw(t, "PUT", "/latest/api/token", "X-aws-ec2-metadata-token-ttl-seconds: 60", "X-Forwarded-For: 203.0.113.7")
	if resp.StatusCode != 403 {
		t.Fatalf("strip mode token PUT with XFF: %d, want 403 as IMDS answers", resp.StatusCode)
	}
}

func TestConnectRefused(t *testing.T) {
	e := newEnv(t)
	resp := e.raw(t, "CONNECT", "169.254.169.254:80")
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("CONNECT: %d, want 405", resp.StatusCode)
	}
	resp = e.raw(t, "CONNECT", "example.com:443")
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("CONNECT: %d, want 405", resp.StatusCode)
	}
	if n := len(e.imds.received()); n != 0 {
		t.Fatalf("IMDS received %d requests", n)
	}
}
