package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imdsguard/imdsguard/internal/audit"
	"github.com/imdsguard/imdsguard/internal/cache"
	"github.com/imdsguard/imdsguard/internal/config/field"
	"github.com/imdsguard/imdsguard/internal/token"
	"github.com/imdsguard/imdsguard/internal/upstream"
	"github.com/imdsguard/imdsguard/policy"
)

// recordingIMDS is a tokens-required IMDS that records every request it
// receives, so tests can prove what reached it.
type recordingIMDS struct {
	mu   sync.Mutex
	reqs []*http.Request // clones, bodies dropped
	puts atomic.Int64
}

const upstreamToken = "UPSTREAM-SESSION-TOKEN"

func (f *recordingIMDS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.reqs = append(f.reqs, r.Clone(r.Context()))
	f.mu.Unlock()
	w.Header().Set("Server", "EC2ws")
	switch {
	case r.Method == http.MethodPut && r.URL.Path == "/latest/api/token":
		f.puts.Add(1)
		w.Header().Set("X-Aws-Ec2-Metadata-Token-Ttl-Seconds", r.Header.Get("X-Aws-Ec2-Metadata-Token-Ttl-Seconds"))
		io.WriteString(w, upstreamToken)
	case r.Header.Get("X-Aws-Ec2-Metadata-Token") != upstreamToken:
		w.WriteHeader(http.StatusUnauthorized)
	case r.URL.Path == "/latest/meta-data/iam":
		w.Header().Set("Location", "http://169.254.169.254/latest/meta-data/iam/")
		w.WriteHeader(http.StatusMovedPermanently)
	case strings.Contains(r.URL.Path, "security-credentials"):
		io.WriteString(w, `{"Code":"Success","AccessKeyId":"ASIASECRET"}`)
	default:
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "served:"+r.URL.Path)
	}
}

func (f *recordingIMDS) received() []*http.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*http.Request(nil), f.reqs...)
}

// env is a proxy in front of a recording IMDS, both on loopback.
type env struct {
	imds   *recordingIMDS
	proxy  *Proxy
	url    string // the proxy's base URL
	events chan *audit.Event
}

type envOpt func(*Options)

func withPolicy(t *testing.T, yml string) envOpt {
	return func(o *Options) { o.Policy = compilePolicy(t, yml) }
}

func strip(o *Options) { o.StripForwarded = true }

// withCache puts the metadata cache, as the daemon configures it by
// default, in front of the test's upstream.
func withCache(t *testing.T) envOpt {
	return func(o *Options) {
		c := cache.New(o.Upstream, cache.Options{Config: cache.DefaultConfig()})
		t.Cleanup(func() { c.Close() })
		o.Upstream = c
	}
}

func newEnv(t *testing.T, opts ...envOpt) *env {
	t.Helper()
	e := &env{imds: &recordingIMDS{}, events: make(chan *audit.Event, 4096)}
	imdsSrv := httptest.NewServer(e.imds)
	t.Cleanup(imdsSrv.Close)
	up, err := upstream.New(upstream.Options{Config: upstream.Config{URL: imdsSrv.URL, TokenTTL: field.Duration{Duration: time.Hour}}, UserAgent: "imdsguard-test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(up.Close)
	pol, _, err := policy.Compile(policy.DefaultConfig(), policy.SystemNames{})
	if err != nil {
		t.Fatal(err)
	}
	o := Options{
		Upstream: up,
		Minter:   token.NewMinter(bytes.Repeat([]byte{42}, token.KeyLen)),
		Policy:   pol,
		HopLimit: token.HopLimit{Host: 1, Container: 2},
		Observe:  func(ev *audit.Event) { c := *ev; e.events <- &c },
	}
	for _, opt := range opts {
		opt(&o)
	}
	e.proxy = New(o)
	srv := httptest.NewUnstartedServer(e.proxy)
	srv.Config.ConnContext = e.proxy.ConnContext
	srv.Start()
	t.Cleanup(srv.Close)
	e.url = srv.URL
	return e
}

func compilePolicy(t *testing.T, yml string) *policy.Policy {
	t.Helper()
	cfg := parsePolicyYAML(t, yml)
	pol, _, err := policy.Compile(cfg, policy.SystemNames{})
	if err != nil {
		t.Fatalf("compile policy: %v", err)
	}
	return pol
}

// raw sends a request byte for byte and returns the parsed answer.
func (e *env) raw(t *testing.T, method, target string, headers ...string) *http.Response {
	t.Helper()
	return rawRequest(t, strings.TrimPrefix(e.url, "http://"), method, target, headers...)
}

func rawRequest(t *testing.T, addr, method, target string, headers ...string) *http.Response {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	b.WriteString(method + " " + target + " HTTP/1.1\r\nHost: 169.254.169.254\r\n")
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("Connection: close\r\n\r\n")
	if _, err := io.WriteString(c, b.String()); err != nil {
		t.Fatal(err)
	}
	req := &http.Request{Method: method}
	resp, err := http.ReadResponse(bufio.NewReader(c), req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp
}

func bodyOf(resp *http.Response) string {
	b, _ := io.ReadAll(resp.Body)
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return string(b)
}

// mint gets a token from the proxy as the test process.
func (e *env) mint(t *testing.T) string {
	t.Helper()
	resp := e.raw(t, "PUT", "/latest/api/token", "X-aws-ec2-metadata-token-ttl-seconds: 60")
	if resp.StatusCode != 200 {
		t.Fatalf("token PUT: %d", resp.StatusCode)
	}
	return bodyOf(resp)
}
