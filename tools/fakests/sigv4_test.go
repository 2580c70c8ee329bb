package fakests

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

const assumeForm = "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fpayments-api&RoleSessionName=s1"

// signed is a form POST to url signed with key at t for service, as the
// SDK signs it.
func signed(t *testing.T, url, body string, key Key, service string, at time.Time) *http.Request {
	t.Helper()
	r, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	sum := sha256.Sum256([]byte(body))
	creds := aws.Credentials{AccessKeyID: key.AccessKeyID, SecretAccessKey: key.SecretAccessKey, SessionToken: key.SessionToken}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, r, hex.EncodeToString(sum[:]), service, testRegion, at); err != nil {
		t.Fatal(err)
	}
	return r
}

// send sends r and returns the status and the error code of the answer
// ("" for an AssumeRoleResponse).
func send(t *testing.T, r *http.Request) (int, Code) {
	t.Helper()
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK {
		if !strings.Contains(string(body), "<AssumeRoleResponse") {
			t.Errorf("200 without an AssumeRoleResponse: %s", body)
		}
		return resp.StatusCode, ""
	}
	var e errorResponse
	if err := xml.Unmarshal(body, &e); err != nil {
		t.Fatalf("%d: not an ErrorResponse: %s", resp.StatusCode, body)
	}
	if e.ID == "" || resp.Header.Get("X-Amzn-Requestid") != e.ID {
		t.Errorf("RequestId %q, header %q", e.ID, resp.Header.Get("X-Amzn-Requestid"))
	}
	return resp.StatusCode, e.Code
}

// Requests the SDK would never send, byte for byte: each is refused as STS
// refuses it.
func TestSignatureChecks(t *testing.T) {
	base := start(t, New(Options{}))
	now := time.Now()
	cases := []struct {
		name   string
		req    func() *http.Request
		status int
		code   Code
	}{
		{"as signed", func() *http.Request { return signed(t, base, assumeForm, NodeKey, "sts", now) }, 200, ""},
		{"body changed after signing", func() *http.Request {
			r := signed(t, base, assumeForm, NodeKey, "sts", now)
			tampered := strings.Replace(assumeForm, "payments-api", "admin-role00", 1)
			r.Body, r.ContentLength = io.NopCloser(strings.NewReader(tampered)), int64(len(tampered))
			return r
		}, 403, SignatureDoesNotMatch},
		{"signed header changed", func() *http.Request {
			r := signed(t, base, assumeForm, NodeKey, "sts", now)
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return r
		}, 403, SignatureDoesNotMatch},
		{"signed for another service", func() *http.Request { return signed(t, base, assumeForm, NodeKey, "iam", now) }, 403, SignatureDoesNotMatch},
		{"signed 20 minutes ago", func() *http.Request { return signed(t, base, assumeForm, NodeKey, "sts", now.Add(-20*time.Minute)) }, 403, SignatureDoesNotMatch},
		{"signed 20 minutes ahead", func() *http.Request { return signed(t, base, assumeForm, NodeKey, "sts", now.Add(20*time.Minute)) }, 403, SignatureDoesNotMatch},
		{"unsigned", func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, base, strings.NewReader(assumeForm))
			return r
		}, 403, MissingAuthenticationToken},
		{"malformed Authorization", func() *http.Request {
			r := signed(t, base, assumeForm, NodeKey, "sts", now)
			r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=12345678901")
			return r
		}, 400, IncompleteSignature},
		{"no Action", func() *http.Request { return signed(t, base, "Version=2011-06-15", NodeKey, "sts", now) }, 400, MissingAction},
		{"another Version", func() *http.Request {
			return signed(t, base, strings.Replace(assumeForm, "2011-06-15", "2010-01-01", 1), NodeKey, "sts", now)
		}, 400, InvalidAction},
		{"GET", func() *http.Request {
			r := signed(t, base+"/?"+assumeForm, "", NodeKey, "sts", now)
			r.Method = http.MethodGet
			return r
		}, 400, InvalidAction},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if status, code := send(t, tc.req()); status != tc.status || code != tc.code {
				t.Errorf("got %d %q, want %d %q", status, code, tc.status, tc.code)
			}
		})
	}
}

func TestParseAuthorization(t *testing.T) {
	a, ok := parseAuthorization("AWS4-HMAC-SHA256 Credential=AKID/20240102/eu-west-1/sts/aws4_request, SignedHeaders=host;x-amz-date, Signature=abcd")
	want := authorization{keyID: "AKID", date: "20240102", region: "eu-west-1", service: "sts", terminator: "aws4_request",
		signedHeaders: "host;x-amz-date", signature: "abcd"}
	if !ok || a != want {
		t.Errorf("got %+v %t, want %+v", a, ok, want)
	}
	for _, bad := range []string{"", "AWS4-HMAC-SHA256", "Basic dXNlcjpwYXNz", "AWS4-HMAC-SHA256 Credential=A/B/C, SignedHeaders=host, Signature=ab"} {
		if _, ok := parseAuthorization(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}
