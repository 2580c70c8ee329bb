package fakests

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	ststypes "github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/aws/smithy-go"
)

const (
	testRole    = "arn:aws:iam::123456789012:role/payments-api"
	otherRole   = "arn:aws:iam::123456789012:role/team/ci-builder"
	testSession = "payments.api-7d9f"
	testRegion  = "us-east-1"
)

// start serves s on loopback until the test ends and returns its URL.
func start(t *testing.T, s *Server) string {
	t.Helper()
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv.URL
}

// client is the real STS client of aws-sdk-go-v2, pointed at url, signing
// with key, one attempt per call (no retries of Throttling or 5xx).
func client(url string, key Key) *sts.Client {
	return sts.New(sts.Options{
		Region:           testRegion,
		BaseEndpoint:     aws.String(url),
		Credentials:      credentials.NewStaticCredentialsProvider(key.AccessKeyID, key.SecretAccessKey, key.SessionToken),
		RetryMaxAttempts: 1,
	})
}

func assume(c *sts.Client, role, session string) (*sts.AssumeRoleOutput, error) {
	return c.AssumeRole(context.Background(), &sts.AssumeRoleInput{RoleArn: aws.String(role), RoleSessionName: aws.String(session)})
}

// apiError returns the STS error code and HTTP status of err, failing the
// test when err is not an STS error answer.
func apiErr(t *testing.T, err error) (string, int) {
	t.Helper()
	var ae smithy.APIError
	var re *awshttp.ResponseError
	if !errors.As(err, &ae) || !errors.As(err, &re) {
		t.Fatalf("want an STS error answer, got %v", err)
	}
	return ae.ErrorCode(), re.HTTPStatusCode()
}

func TestAssumeRole(t *testing.T) {
	s := New(Options{})
	c := client(start(t, s), NodeKey)
	before := time.Now()
	out, err := c.AssumeRole(context.Background(), &sts.AssumeRoleInput{
		RoleArn: aws.String(testRole), RoleSessionName: aws.String(testSession), DurationSeconds: aws.Int32(7200),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := Mint(testRole, testSession, 1)
	got := Key{AccessKeyID: aws.ToString(out.Credentials.AccessKeyId), SecretAccessKey: aws.ToString(out.Credentials.SecretAccessKey),
		SessionToken: aws.ToString(out.Credentials.SessionToken)}
	if got != want {
		t.Errorf("credentials %+v, want Mint(role, session, 1) = %+v", got, want)
	}
	if !strings.HasPrefix(got.AccessKeyID, "ASIA") || len(got.AccessKeyID) != 20 {
		t.Errorf("AccessKeyId %q: want ASIA and 16 more characters", got.AccessKeyID)
	}
	if exp := *out.Credentials.Expiration; exp.Before(before.Add(2*time.Hour-time.Second)) || exp.After(time.Now().Add(2*time.Hour)) {
		t.Errorf("Expiration %v, want two hours from now", exp)
	}
	if arn := aws.ToString(out.AssumedRoleUser.Arn); arn != "arn:aws:sts::123456789012:assumed-role/payments-api/"+testSession {
		t.Errorf("AssumedRoleUser.Arn %q", arn)
	}
	if id := aws.ToString(out.AssumedRoleUser.AssumedRoleId); !strings.HasPrefix(id, "AROA") || !strings.HasSuffix(id, ":"+testSession) {
		t.Errorf("AssumedRoleId %q", id)
	}
	calls := s.Calls()
	if len(calls) != 1 {
		t.Fatalf("%d calls recorded, want 1: %+v", len(calls), calls)
	}
	cl := calls[0]
	if cl.Action != "AssumeRole" || cl.RoleARN != testRole || cl.RoleSessionName != testSession || cl.DurationSeconds != 7200 ||
		cl.SignerKeyID != NodeKey.AccessKeyID || cl.Region != testRegion || cl.Outcome != OK || cl.Status != 200 ||
		cl.AccessKeyID != want.AccessKeyID || !cl.Expiration.Equal(*out.Credentials.Expiration) || cl.Time.Before(before) {
		t.Errorf("call recorded as %+v", cl)
	}
}

// Every call mints new credentials: for the same role and session (the
// n-th call), and for another session or role.
func TestMintDistinct(t *testing.T) {
	s := New(Options{})
	c := client(start(t, s), NodeKey)
	seen := map[string]string{}
	for _, call := range []struct{ role, session string }{
		{testRole, testSession}, {testRole, testSession}, {testRole, "other-session"}, {otherRole, testSession},
	} {
		out, err := assume(c, call.role, call.session)
		if err != nil {
			t.Fatal(err)
		}
		id := aws.ToString(out.Credentials.AccessKeyId)
		if prev, ok := seen[id]; ok {
			t.Errorf("AccessKeyId %s minted twice: %s and %s/%s", id, prev, call.role, call.session)
		}
		seen[id] = call.role + "/" + call.session
	}
	if got, want := s.Calls()[1].AccessKeyID, Mint(testRole, testSession, 2).AccessKeyID; got != want {
		t.Errorf("second call minted %s, want Mint(..., 2) = %s", got, want)
	}
}

func TestTagsAndExternalID(t *testing.T) {
	s := New(Options{})
	c := client(start(t, s), NodeKey)
	tags := []ststypes.Tag{
		{Key: aws.String("kubernetes-namespace"), Value: aws.String("payments")},
		{Key: aws.String("kubernetes-pod-name"), Value: aws.String("api-7d9f")},
	}
	_, err := c.AssumeRole(context.Background(), &sts.AssumeRoleInput{
		RoleArn: aws.String(testRole), RoleSessionName: aws.String(testSession),
		ExternalId: aws.String("ext-42"), Tags: tags, TransitiveTagKeys: []string{"kubernetes-namespace"},
	})
	if err != nil {
		t.Fatal(err)
	}
	cl := s.Calls()[0]
	wantTags := []Tag{{"kubernetes-namespace", "payments"}, {"kubernetes-pod-name", "api-7d9f"}}
	if cl.ExternalID != "ext-42" || !slices.Equal(cl.Tags, wantTags) || !slices.Equal(cl.TransitiveTagKeys, []string{"kubernetes-namespace"}) {
		t.Errorf("recorded external id %q, tags %v, transitive %v", cl.ExternalID, cl.Tags, cl.TransitiveTagKeys)
	}
	if cl.DurationSeconds != 0 || cl.Expiration.Sub(cl.Time) > time.Hour+time.Second {
		t.Errorf("no DurationSeconds sent: recorded %d, expiration %v after the call: want STS's default of 1 h",
			cl.DurationSeconds, cl.Expiration.Sub(cl.Time))
	}
}

func TestFaults(t *testing.T) {
	cases := []struct {
		code   Code
		status int
	}{
		{Throttling, 400}, {AccessDenied, 403}, {InternalFailure, 500}, {ServiceUnavailable, 503},
	}
	for _, tc := range cases {
		t.Run(string(tc.code), func(t *testing.T) {
			s := New(Options{})
			c := client(start(t, s), NodeKey)
			if err := s.SetFault(Fault{Code: tc.code}); err != nil {
				t.Fatal(err)
			}
			for range 2 { // until changed
				_, err := assume(c, testRole, testSession)
				if code, status := apiErr(t, err); code != string(tc.code) || status != tc.status {
					t.Fatalf("got %s %d, want %s %d", code, status, tc.code, tc.status)
				}
			}
			s.ClearFaults()
			if _, err := assume(c, testRole, testSession); err != nil {
				t.Fatalf("after ClearFaults: %v", err)
			}
			calls := s.Calls()
			if got := []string{calls[0].Outcome, calls[1].Outcome, calls[2].Outcome}; !slices.Equal(got, []string{string(tc.code), string(tc.code), OK}) {
				t.Errorf("outcomes recorded %v", got)
			}
			if calls[2].AccessKeyID != Mint(testRole, testSession, 1).AccessKeyID {
				t.Errorf("the first success minted %s: failed calls must not count", calls[2].AccessKeyID)
			}
		})
	}
}

// A role's own fault, by ARN or by name, wins over the global one and
// leaves other roles alone; Times ends a fault by itself.
func TestRoleFaults(t *testing.T) {
	s := New(Options{})
	c := client(start(t, s), NodeKey)
	must(t, s.SetRoleFault("payments-api", Fault{Code: AccessDenied}))
	must(t, s.SetRoleFault(otherRole, Fault{Code: Throttling, Times: 1}))
	steps := []struct {
		role string
		want string
	}{
		{testRole, string(AccessDenied)},
		{otherRole, string(Throttling)},
		{otherRole, OK}, // Times: 1 used up
		{"arn:aws:iam::123456789012:role/unfaulted", OK},
	}
	for i, st := range steps {
		_, err := assume(c, st.role, testSession)
		got := OK
		if err != nil {
			got, _ = apiErr(t, err)
		}
		if got != st.want {
			t.Errorf("step %d, %s: got %s, want %s", i, st.role, got, st.want)
		}
	}
	must(t, s.SetFault(Fault{Code: InternalFailure}))
	_, err := assume(c, testRole, testSession)
	if code, _ := apiErr(t, err); code != string(AccessDenied) {
		t.Errorf("the role's own fault must win over the global one: got %s", code)
	}
	_, err = assume(c, otherRole, testSession)
	if code, _ := apiErr(t, err); code != string(InternalFailure) {
		t.Errorf("global fault: got %s", code)
	}
	if err := s.SetFault(Fault{Code: "NoSuchCode"}); err == nil {
		t.Error("a fault with an unknown code was taken")
	}
}

// A delay holds the answer (this test is about the clock: real time, short
// delays); a caller that gives up first is recorded as Canceled.
func TestDelay(t *testing.T) {
	s := New(Options{})
	c := client(start(t, s), NodeKey)
	const delay = 150 * time.Millisecond
	must(t, s.SetFault(Fault{Delay: delay}))
	t0 := time.Now()
	if _, err := assume(c, testRole, testSession); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d < delay {
		t.Errorf("answered after %v, want at least %v", d, delay)
	}
	must(t, s.SetFault(Fault{Delay: 10 * time.Second, Code: Throttling}))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(testRole), RoleSessionName: aws.String(testSession)})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want the caller's deadline, got %v", err)
	}
	waitOutcome(t, s, 1, Canceled)
}

func waitOutcome(t *testing.T, s *Server, i int, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		calls := s.Calls()
		if len(calls) > i && calls[i].Outcome == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("call %d never recorded as %s: %+v", i, want, calls)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Only the expected node credentials are taken: another key id, a wrong
// secret, a wrong or missing session token are refused as STS refuses
// them, and recorded with the key that signed.
func TestSignerRefused(t *testing.T) {
	cases := []struct {
		name string
		key  Key
		want Code
	}{
		{"other key id", Key{"AKIAOTHER0000000000", "secret", ""}, InvalidClientTokenID},
		{"wrong secret", Key{NodeKey.AccessKeyID, "not-the-secret", NodeKey.SessionToken}, SignatureDoesNotMatch},
		{"wrong token", Key{NodeKey.AccessKeyID, NodeKey.SecretAccessKey, "forged"}, InvalidClientTokenID},
		{"no token", Key{NodeKey.AccessKeyID, NodeKey.SecretAccessKey, ""}, InvalidClientTokenID},
		{"minted credentials", Mint(testRole, testSession, 1), InvalidClientTokenID},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := New(Options{})
			_, err := assume(client(start(t, s), tc.key), testRole, testSession)
			if code, status := apiErr(t, err); code != string(tc.want) || status != 403 {
				t.Fatalf("got %s %d, want %s 403", code, status, tc.want)
			}
			if cl := s.Calls()[0]; cl.SignerKeyID != tc.key.AccessKeyID || cl.Outcome != string(tc.want) || cl.AccessKeyID != "" {
				t.Errorf("recorded %+v", cl)
			}
		})
	}
}

// Keys other than NodeKey, and a change of keys while running.
func TestKeys(t *testing.T) {
	rotated := Key{"ASIANODEROTATED00001", "rotated/secret", "rotated-token"}
	s := New(Options{Keys: []Key{rotated}})
	url := start(t, s)
	if _, err := assume(client(url, NodeKey), testRole, testSession); err == nil {
		t.Error("NodeKey taken by a fake told to expect another key")
	}
	if _, err := assume(client(url, rotated), testRole, testSession); err != nil {
		t.Errorf("the expected key: %v", err)
	}
	s.SetKeys(NodeKey)
	if _, err := assume(client(url, rotated), testRole, testSession); err == nil {
		t.Error("a key no longer expected was taken")
	}
}

// STS's constraints on the parameters, which the SDK does not check.
func TestValidation(t *testing.T) {
	long := strings.Repeat("s", 65)
	cases := []struct {
		name string
		in   sts.AssumeRoleInput
	}{
		{"not a role ARN", sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::123456789012:user/bob"), RoleSessionName: aws.String(testSession)}},
		{"session name too long", sts.AssumeRoleInput{RoleArn: aws.String(testRole), RoleSessionName: aws.String(long)}},
		{"session name characters", sts.AssumeRoleInput{RoleArn: aws.String(testRole), RoleSessionName: aws.String("ns/pod")}},
		{"duration too short", sts.AssumeRoleInput{RoleArn: aws.String(testRole), RoleSessionName: aws.String(testSession), DurationSeconds: aws.Int32(899)}},
		{"duration beyond the role's maximum", sts.AssumeRoleInput{RoleArn: aws.String(testRole), RoleSessionName: aws.String(testSession), DurationSeconds: aws.Int32(43201)}},
		{"external id too short", sts.AssumeRoleInput{RoleArn: aws.String(testRole), RoleSessionName: aws.String(testSession), ExternalId: aws.String("x")}},
		{"duplicate tag keys", sts.AssumeRoleInput{RoleArn: aws.String(testRole), RoleSessionName: aws.String(testSession),
			Tags: []ststypes.Tag{{Key: aws.String("team"), Value: aws.String("a")}, {Key: aws.String("Team"), Value: aws.String("b")}}}},
	}
	s := New(Options{})
	c := client(start(t, s), NodeKey)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.AssumeRole(context.Background(), &tc.in)
			if code, status := apiErr(t, err); code != string(ValidationError) || status != 400 {
				t.Fatalf("got %s %d, want ValidationError 400", code, status)
			}
		})
	}
	if _, err := c.AssumeRole(context.Background(), &sts.AssumeRoleInput{RoleArn: aws.String(testRole),
		RoleSessionName: aws.String(strings.Repeat("s", 64)), DurationSeconds: aws.Int32(43200)}); err != nil {
		t.Errorf("64-character session name, 12 h: %v", err)
	}
}

// Another operation is InvalidAction; GetCallerIdentity is signed like
// AssumeRole, so the signature passes and the action does not.
func TestOtherAction(t *testing.T) {
	s := New(Options{})
	_, err := client(start(t, s), NodeKey).GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	if code, status := apiErr(t, err); code != string(InvalidAction) || status != 400 {
		t.Fatalf("got %s %d, want InvalidAction 400", code, status)
	}
	if cl := s.Calls()[0]; cl.Action != "GetCallerIdentity" || cl.Outcome != string(InvalidAction) {
		t.Errorf("recorded %+v", cl)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

var _ http.Handler = (*Server)(nil)
