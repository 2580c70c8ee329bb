package testbed

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/imdsguard/imdsguard/internal/netnstest"
	"github.com/imdsguard/imdsguard/tools/fakests"
)

// A fake STS started each way answers the real SDK from where it runs,
// and its methods drive it: in this process here, in this process on a
// namespace's loopback, and as bin/fakests in a namespace.
func TestFakeSTS(t *testing.T) {
	cases := []struct {
		name      string
		namespace bool
		process   bool
	}{
		{"in process", false, false},
		{"in process in a namespace", true, false},
		{"process in a namespace", true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := New(t)
			var ns string
			if tc.namespace {
				ns = netnstest.New(t, "sts")
			}
			f := e.StartFakeSTS(FakeSTSOptions{NS: ns, Process: tc.process})
			if ns != "" {
				if c, err := net.DialTimeout("tcp", f.Addr, 200*time.Millisecond); err == nil {
					c.Close()
					t.Fatalf("%s reachable outside namespace %s", f.Addr, ns)
				}
			}
			c := sts.New(sts.Options{
				Region: "us-east-1", BaseEndpoint: aws.String(f.URL), RetryMaxAttempts: 1,
				Credentials: credentials.NewStaticCredentialsProvider(fakests.NodeKey.AccessKeyID,
					fakests.NodeKey.SecretAccessKey, fakests.NodeKey.SessionToken),
				HTTPClient: ClientIn(ns, 5*time.Second),
			})
			in := &sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::123456789012:role/app"), RoleSessionName: aws.String("ns.pod")}
			out, err := c.AssumeRole(context.Background(), in)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := aws.ToString(out.Credentials.AccessKeyId), fakests.Mint(*in.RoleArn, *in.RoleSessionName, 1).AccessKeyID; got != want {
				t.Errorf("AccessKeyId %s, want %s", got, want)
			}
			f.SetRoleFault("app", fakests.Fault{Code: fakests.Throttling})
			_, err = c.AssumeRole(context.Background(), in)
			var ae smithy.APIError
			if !errors.As(err, &ae) || ae.ErrorCode() != string(fakests.Throttling) {
				t.Fatalf("with a Throttling fault: %v", err)
			}
			f.ClearFaults()
			calls := f.Calls()
			if len(calls) != 2 || calls[0].Outcome != fakests.OK || calls[1].Outcome != string(fakests.Throttling) {
				t.Fatalf("calls %+v", calls)
			}
			f.ClearCalls()
			if calls := f.Calls(); len(calls) != 0 {
				t.Errorf("%d calls after ClearCalls", len(calls))
			}
			if f.Env() != "AWS_ENDPOINT_URL_STS="+f.URL {
				t.Errorf("Env() = %q", f.Env())
			}
		})
	}
}
