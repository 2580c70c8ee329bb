package sts

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imdsguard/imdsguard/internal/roles"
)

// stsStandIn is a minimal STS: a form POST Action=AssumeRole answered
// with AssumeRoleResponse XML, or ErrorResponse XML with the status and
// code the test sets. It keeps every request's form and Authorization.
type stsStandIn struct {
	mu     sync.Mutex
	status int
	code   string
	forms  []map[string][]string
	auths  []string
}

func (s *stsStandIn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	s.mu.Lock()
	s.forms = append(s.forms, r.PostForm)
	s.auths = append(s.auths, r.Header.Get("Authorization"))
	status, code := s.status, s.code
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/xml")
	if r.Method != http.MethodPost || r.PostForm.Get("Action") != "AssumeRole" {
		status, code = 400, "InvalidAction"
	}
	if status != 0 {
		w.WriteHeader(status)
		fmt.Fprintf(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>%s</Code><Message>stand-in says %s</Message></Error><RequestId>r-1</RequestId></ErrorResponse>`, code, code)
		return
	}
	exp := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	fmt.Fprintf(w, `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>
<AssumedRoleUser><AssumedRoleId>AROAEXAMPLE:%[1]s</AssumedRoleId><Arn>arn:aws:sts::123456789012:assumed-role/a/%[1]s</Arn></AssumedRoleUser>
<Credentials><AccessKeyId>ASIAROLE</AccessKeyId><SecretAccessKey>rolesecret</SecretAccessKey><SessionToken>roletoken</SessionToken><Expiration>%[2]s</Expiration></Credentials>
</AssumeRoleResult><ResponseMetadata><RequestId>r-2</RequestId></ResponseMetadata></AssumeRoleResponse>`, r.PostForm.Get("RoleSessionName"), exp)
}

// imdsStandIn answers the node's role list, its credentials and region.
type imdsStandIn struct{ paths map[string]string }

func (f imdsStandIn) Fetch(_ context.Context, _, path string) (*http.Response, error) {
	body, ok := f.paths[path]
	status := http.StatusOK
	if !ok {
		status, body = http.StatusNotFound, "not found"
	}
	return &http.Response{StatusCode: status, Body: io.NopCloser(strings.NewReader(body))}, nil
}

var nodeIMDS = imdsStandIn{paths: map[string]string{
	"/latest/meta-data/iam/security-credentials/":          "node-role\n",
	"/latest/meta-data/iam/security-credentials/node-role": `{"Code":"Success","Type":"AWS-HMAC","AccessKeyId":"ASIANODE","SecretAccessKey":"nodesecret","Token":"nodetoken","Expiration":"` + time.Now().Add(6*time.Hour).UTC().Format(time.RFC3339) + `"}`,
	"/latest/meta-data/placement/region":                   "eu-west-1",
}}

func newTestClient(t *testing.T, s *stsStandIn) *Client {
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return NewClient(ClientOptions{Endpoint: srv.URL, Region: NodeRegion(nodeIMDS), Credentials: NodeCredentials{IMDS: nodeIMDS}, MaxAttempts: 1})
}

// AssumeRole goes out as the awsquery form, signed with the node's
// credentials for the instance's region, and its answer is the role's
// credentials.
func TestClientAssumeRole(t *testing.T) {
	t.Setenv("AWS_REGION", "")
	s := &stsStandIn{}
	c := newTestClient(t, s)
	sess := roles.Session{RoleARN: "arn:aws:iam::123456789012:role/a", RoleName: "a", Name: "payments.api-1", ExternalID: "xid",
		Tags: []roles.Tag{{Key: roles.TagNamespace, Value: "payments"}}}
	cr, err := c.AssumeRole(context.Background(), sess, 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if cr.AccessKeyID != "ASIAROLE" || cr.SecretAccessKey != "rolesecret" || cr.SessionToken != "roletoken" ||
		cr.Expiration.Location() != time.UTC || time.Until(cr.Expiration) < 59*time.Minute || cr.LastUpdated.IsZero() {
		t.Errorf("credentials %+v", cr)
	}
	f := s.forms[0]
	for k, v := range map[string]string{"Action": "AssumeRole", "Version": "2011-06-15", "RoleArn": sess.RoleARN, "RoleSessionName": sess.Name,
		"DurationSeconds": "7200", "ExternalId": "xid", "Tags.member.1.Key": roles.TagNamespace, "Tags.member.1.Value": "payments"} {
		if got := strings.Join(f[k], ","); got != v {
			t.Errorf("form %s = %q, want %q", k, got, v)
		}
	}
	if a := s.auths[0]; !strings.HasPrefix(a, "AWS4-HMAC-SHA256 Credential=ASIANODE/") || !strings.Contains(a, "/eu-west-1/sts/aws4_request") {
		t.Errorf("Authorization %q: want SigV4 with the node's key for eu-west-1", a)
	}
}

// STS's errors become the Kinds the broker acts on, in one attempt each.
func TestClientErrors(t *testing.T) {
	for _, c := range []struct {
		status int
		code   string
		kind   Kind
	}{
		{400, "Throttling", Throttled},
		{429, "TooManyRequests", Throttled},
		{500, "InternalFailure", ServerError},
		{503, "ServiceUnavailable", ServerError},
		{403, "AccessDenied", Denied},
		{400, "RegionDisabledException", Denied},
	} {
		s := &stsStandIn{status: c.status, code: c.code}
		cl := newTestClient(t, s)
		_, err := cl.AssumeRole(context.Background(), roles.Session{RoleARN: "arn:aws:iam::123456789012:role/a", Name: "x1"}, time.Hour)
		if KindOf(err) != c.kind || !strings.Contains(err.Error(), c.code) || len(s.forms) != 1 {
			t.Errorf("%d %s: %v (kind %s), %d requests; want %s in 1", c.status, c.code, err, KindOf(err), len(s.forms), c.kind)
		}
	}
	// STS not there: Failed.
	cl := NewClient(ClientOptions{Endpoint: "http://127.0.0.1:1", Region: NodeRegion(nodeIMDS), Credentials: NodeCredentials{IMDS: nodeIMDS}, MaxAttempts: 1})
	if _, err := cl.AssumeRole(context.Background(), roles.Session{RoleARN: "arn:aws:iam::123456789012:role/a", Name: "x1"}, time.Hour); KindOf(err) != Failed {
		t.Errorf("no STS: %v", err)
	}
	// No node role: Failed, and nothing is sent.
	s := &stsStandIn{}
	srv := httptest.NewServer(s)
	defer srv.Close()
	empty := imdsStandIn{paths: map[string]string{"/latest/meta-data/placement/region": "eu-west-1"}}
	cl = NewClient(ClientOptions{Endpoint: srv.URL, Region: NodeRegion(empty), Credentials: NodeCredentials{IMDS: empty}, MaxAttempts: 1})
	if _, err := cl.AssumeRole(context.Background(), roles.Session{RoleARN: "arn:aws:iam::123456789012:role/a", Name: "x1"}, time.Hour); KindOf(err) != Failed || len(s.forms) != 0 {
		t.Errorf("no node role: %v, %d requests", err, len(s.forms))
	}
}

// The endpoint: the configuration's, else the SDKs' environment variables.
func TestEndpoint(t *testing.T) {
	t.Setenv("AWS_ENDPOINT_URL_STS", "")
	t.Setenv("AWS_ENDPOINT_URL", "")
	if e, err := Endpoint(""); e != "" || err != nil {
		t.Errorf("none: %q, %v", e, err)
	}
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000")
	if e, _ := Endpoint(""); e != "http://127.0.0.1:9000" {
		t.Errorf("AWS_ENDPOINT_URL: %q", e)
	}
	t.Setenv("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:9001")
	if e, _ := Endpoint(""); e != "http://127.0.0.1:9001" {
		t.Errorf("AWS_ENDPOINT_URL_STS: %q", e)
	}
	if e, _ := Endpoint("https://vpce.example"); e != "https://vpce.example" {
		t.Errorf("configured: %q", e)
	}
	t.Setenv("AWS_ENDPOINT_URL_STS", "nonsense")
	if _, err := Endpoint(""); err == nil || !strings.Contains(err.Error(), "AWS_ENDPOINT_URL_STS") {
		t.Errorf("bad env: %v", err)
	}
}
