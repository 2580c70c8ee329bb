package fakests

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/aws/amazon-ec2-metadata-mock/pkg/config/defaults"
)

// The control API does what the Go methods do, for a fake in another
// process: faults set and cleared, calls read and forgotten, keys replaced.
func TestControl(t *testing.T) {
	s := New(Options{})
	url := start(t, s)
	ctl := Client{URL: url}
	c := client(url, NodeKey)

	must(t, ctl.SetRoleFault("payments-api", Fault{Code: Throttling, Delay: time.Millisecond, Times: 1}))
	_, err := assume(c, testRole, testSession)
	if code, _ := apiErr(t, err); code != string(Throttling) {
		t.Fatalf("fault set through the control API: got %s", code)
	}
	must(t, ctl.SetRoleFault("", Fault{Code: AccessDenied}))
	_, err = assume(c, testRole, testSession)
	if code, _ := apiErr(t, err); code != string(AccessDenied) {
		t.Fatalf("global fault: got %s", code)
	}
	must(t, ctl.ClearFaults())
	if _, err := assume(c, testRole, testSession); err != nil {
		t.Fatalf("after ClearFaults: %v", err)
	}
	calls, err := ctl.Calls()
	must(t, err)
	if len(calls) != 3 || calls[2].Outcome != OK || calls[2].AccessKeyID != s.Calls()[2].AccessKeyID || calls[0].SignerKeyID != NodeKey.AccessKeyID {
		t.Errorf("calls through the control API: %+v", calls)
	}
	must(t, ctl.ClearCalls())
	if calls, _ := ctl.Calls(); len(calls) != 0 {
		t.Errorf("%d calls after ClearCalls", len(calls))
	}
	must(t, ctl.SetKeys(Key{AccessKeyID: "AKIDONLY", SecretAccessKey: "x"}))
	if _, err := assume(c, testRole, testSession); err == nil {
		t.Error("NodeKey taken after the keys were replaced through the control API")
	}
	if err := ctl.SetRoleFault("", Fault{Code: "Nope"}); err == nil {
		t.Error("an unknown fault code was taken")
	}
}

// NodeKey is what amazon-ec2-metadata-mock serves by default as the
// instance role's credentials: read from its own embedded defaults, so
// that an upgrade of the mock that changes them fails here.
func TestNodeKeyIsAEMMs(t *testing.T) {
	var d struct {
		Metadata struct {
			Values struct {
				Creds struct {
					AccessKeyID     string `json:"AccessKeyId"`
					SecretAccessKey string `json:"SecretAccessKey"`
					Token           string `json:"Token"`
				} `json:"iam-security-credentials"`
			} `json:"values"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(defaults.GetDefaultValues(), &d); err != nil {
		t.Fatal(err)
	}
	c := d.Metadata.Values.Creds
	if got := (Key{c.AccessKeyID, c.SecretAccessKey, c.Token}); got != NodeKey {
		t.Errorf("AEMM serves %+v, NodeKey is %+v", got, NodeKey)
	}
}
