package h1

import (
	"bufio"
	"bytes"
	"net/http"
	"net/textproto"
	"reflect"
	"strings"
	"testing"
)

// What metadata clients send: each takes parseCommon's path.
var commonHeads = []string{
	// aws-sdk-go-v2, a token and then a read with it
	"PUT /latest/api/token HTTP/1.1\r\nHost: 169.254.169.254\r\nUser-Agent: aws-sdk-go-v2/1.36.3 ua/2.1 os/linux lang/go#1.26.8 md/GOOS#linux md/GOARCH#amd64 api/imds#1.16.30\r\nX-Aws-Ec2-Metadata-Token-Ttl-Seconds: 21600\r\nAmz-Sdk-Invocation-Id: 0b5ad7a8-3a2b-4d6c-9f5e-2c4b1f0f3c11\r\nAmz-Sdk-Request: attempt=1; max=3\r\nAccept-Encoding: gzip\r\n\r\n",
	"GET /latest/meta-data/iam/security-credentials/ HTTP/1.1\r\nHost: 169.254.169.254\r\nUser-Agent: aws-sdk-go-v2/1.36.3\r\nX-Aws-Ec2-Metadata-Token: AQAEAGx0dGVzdA==\r\nAccept-Encoding: gzip\r\n\r\n",
	// botocore
	"GET /latest/meta-data/placement/availability-zone HTTP/1.1\r\nHost: 169.254.169.254\r\nAccept-Encoding: identity\r\nUser-Agent: Botocore/1.34.0\r\nx-aws-ec2-metadata-token: AQAEAGx0dGVzdA==\r\n\r\n",
	// curl, IMDSv1, and HEAD
	"GET /latest/meta-data/instance-id HTTP/1.1\r\nHost: 169.254.169.254\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n",
	"HEAD /latest/user-data HTTP/1.1\r\nHost: 169.254.169.254\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n",
	// wrk, as the benchmarks send it
	"GET /latest/meta-data/instance-id HTTP/1.1\r\nHost: 127.0.0.1:8989\r\nX-aws-ec2-metadata-token: AQAEAGx0dGVzdA==\r\n\r\n",
	// repeated headers, values with spaces and tabs, no Host (refused later by check)
	"GET /latest/meta-data/ HTTP/1.1\r\nHost: a\r\nAccept: a\r\naccept: b\r\nX-Odd:  \t spaced\tvalue \t\r\n\r\n",
	"GET /latest/meta-data/ HTTP/1.1\r\nUser-Agent: x\r\n\r\n",
	// targets that are not plain paths go through url.ParseRequestURI
	"GET /latest/meta-data/iam/security-credentials/a%2Fb HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /latest/%6deta-data/ HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /a!$&'()*+,;=:@b HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET //latest/meta-data HTTP/1.1\r\nHost: a\r\n\r\n",
	// names in other cases, and more header lines than a request holds inline
	"PUT /latest/api/token HTTP/1.1\r\nHOST: a\r\nX-AWS-EC2-METADATA-TOKEN-TTL-SECONDS: 60\r\nuser-agent: u\r\naccept-ENCODING: gzip\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\nF: 6\r\nG: 7\r\nH: 8\r\nI: 9\r\nA: 10\r\n\r\n",
}

func TestCanonicalKeyAsTextproto(t *testing.T) {
	for _, k := range knownKeys {
		for _, v := range []string{k, strings.ToLower(k), strings.ToUpper(k), "X" + k[1:] + "x", k[:len(k)-1]} {
			if got, want := canonicalKey(v), textproto.CanonicalMIMEHeaderKey(v); got != want {
				t.Errorf("canonicalKey(%q) = %q, textproto says %q", v, got, want)
			}
		}
	}
}

// Heads parseCommon leaves to http.ReadRequest.
var uncommonHeads = []string{
	"GET /latest/meta-data/ HTTP/1.0\r\nHost: a\r\n\r\n",
	"GET http://169.254.169.254/latest/meta-data/ HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /latest/meta-data/?x=1 HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /latest/meta-data/#f HTTP/1.1\r\nHost: a\r\n\r\n",
	"POST /latest/meta-data/ HTTP/1.1\r\nHost: a\r\n\r\n",
	"OPTIONS /latest/api/token HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET  /latest/meta-data/ HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /latest/meta-data/ HTTP/1.1\nHost: a\n\n",
	"GET /latest/meta-data/ HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
	"GET /latest/meta-data/ HTTP/1.1\r\nHost : a\r\n\r\n",
	"GET /latest/meta-data/ HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",
	"GET /latest/meta-data/ HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9\r\n\r\n",
	"PUT /latest/api/token HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
	"PUT /latest/api/token HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
	"GET /latest/meta-data/ HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
	"GET /latest/meta-data/ HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n",
	"GET /latest/meta-data/ HTTP/1.1\r\nHost: a\r\nPragma: no-cache\r\n\r\n",
	"GET /latest/meta-data/ HTTP/1.1\r\nHost: a\r\nX-Forwarded-For\r\n\r\n",
}

func TestParseCommonTakesCommonHeads(t *testing.T) {
	for _, h := range commonHeads {
		if parseCommon([]byte(h), new(common)) == nil {
			t.Errorf("%q: left to ReadRequest, want parsed", h)
		}
		sameAsReadRequest(t, []byte(h))
	}
	for _, h := range uncommonHeads {
		if parseCommon([]byte(h), new(common)) != nil {
			t.Errorf("%q: parsed, want it left to ReadRequest", h)
		}
	}
}

// A connection that sends the same head again (a keep-alive client
// reading one path with one token) has it parsed without an allocation; a
// head that differs in one byte gets a copy of its own, and what was
// parsed before keeps its values.
func TestParseCommonReusesARepeatedHead(t *testing.T) {
	a := []byte(commonHeads[1])
	m := new(common)
	first := parseCommon(a, m)
	if first == nil {
		t.Fatalf("%q: not parsed", a)
	}
	uri, tok := first.RequestURI, first.Header.Get("X-Aws-Ec2-Metadata-Token")
	if n := testing.AllocsPerRun(100, func() { parseCommon(a, m) }); n != 0 {
		t.Errorf("the same head again: %v allocations, want 0", n)
	}
	b := bytes.Replace(a, []byte("AQAEAGx0dGVzdA=="), []byte("AQAEAGx0dGVzdB=="), 1)
	b = bytes.Replace(b, []byte("credentials/"), []byte("credentials/x"), 1)
	got := parseCommon(b, m)
	if got == nil {
		t.Fatalf("%q: not parsed", b)
	}
	if got.RequestURI != "/latest/meta-data/iam/security-credentials/x" || got.URL.Path != got.RequestURI ||
		got.Header.Get("X-Aws-Ec2-Metadata-Token") != "AQAEAGx0dGVzdB==" {
		t.Errorf("a head unlike the last: parsed as %s %q", got.RequestURI, got.Header)
	}
	if uri != "/latest/meta-data/iam/security-credentials/" || tok != "AQAEAGx0dGVzdA==" {
		t.Errorf("strings of the request before changed: %q, %q", uri, tok)
	}
	sameAsReadRequest(t, b)
}

// FuzzCommonSameAsReadRequest: whatever head parseCommon accepts,
// http.ReadRequest accepts too and makes the same request of it.
func FuzzCommonSameAsReadRequest(f *testing.F) {
	for _, h := range append(append([]string{}, commonHeads...), uncommonHeads...) {
		f.Add([]byte(h))
	}
	for _, h := range sameCases {
		f.Add([]byte(h))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if n := headLen(b); n > 0 {
			sameAsReadRequest(t, b[:n])
		}
	})
}

// dirtyHead fills every part of a common: a connection's last request,
// done with, which the next is parsed over.
const dirtyHead = "GET /latest/%6deta-data/a%2Fb HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\nF: 6\r\nG: 7\r\nH: 8\r\nI: 9\r\nX-Aws-Ec2-Metadata-Token: t\r\n\r\n"

// sameAsReadRequest fails t when parseCommon makes of head something other
// than http.ReadRequest does, parsing it as a connection does: over the
// memory of the request before it.
func sameAsReadRequest(t *testing.T, head []byte) {
	t.Helper()
	m := new(common)
	if parseCommon([]byte(dirtyHead), m) == nil {
		t.Fatalf("%q: not parsed", dirtyHead)
	}
	got := parseCommon(head, m)
	if got == nil {
		return
	}
	br := bufio.NewReader(bytes.NewReader(head))
	want, err := http.ReadRequest(br)
	if err != nil {
		t.Fatalf("%q: parseCommon took it, ReadRequest refused it: %v", head, err)
	}
	if br.Buffered() != 0 {
		t.Fatalf("%q: ReadRequest left %d bytes of the head", head, br.Buffered())
	}
	type seen struct {
		Method, Proto, Host, RequestURI string
		Major, Minor                    int
		URL                             string
		URLParts                        [8]string
		Header                          http.Header
		ContentLength                   int64
		TransferEncoding                []string
		Close                           bool
		Trailer                         http.Header
		NoBody                          bool
	}
	view := func(r *http.Request) seen {
		u := r.URL
		return seen{r.Method, r.Proto, r.Host, r.RequestURI, r.ProtoMajor, r.ProtoMinor, u.String(),
			[8]string{u.Scheme, u.Opaque, u.Host, u.Path, u.RawPath, u.RawQuery, u.Fragment, u.RawFragment},
			r.Header, r.ContentLength, r.TransferEncoding, r.Close, r.Trailer, r.Body == http.NoBody}
	}
	if g, w := view(got), view(want); !reflect.DeepEqual(g, w) {
		t.Fatalf("%q:\nparseCommon %+v\nReadRequest %+v", head, g, w)
	}
	if u := *got.URL; u.User != nil || u.ForceQuery || u.OmitHost || !reflect.DeepEqual(u, *want.URL) {
		t.Fatalf("%q: URL %#v, ReadRequest's %#v", head, u, *want.URL)
	}
	if strings.Contains(string(head), "\r\n\r\n") && got.Header == nil {
		t.Fatalf("%q: no header map", head)
	}
}
