package check

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// fake answers every probe as told.
type fake struct {
	rulesOK       bool
	rulesErr      error
	proxyStatus   int
	proxyErr      error
	directStatus  int
	directErr     error
	redirectCode  int
	redirectError error
}

func (f fake) Rules(context.Context) (bool, string, error) { return f.rulesOK, "detail", f.rulesErr }
func (f fake) Proxy(context.Context) (int, error)          { return f.proxyStatus, f.proxyErr }
func (f fake) Direct(context.Context, string) (int, string, error) {
	return f.directStatus, "i-0direct", f.directErr
}
func (f fake) Redirected(context.Context, string) (int, string, error) {
	return f.redirectCode, "i-0abc\n", f.redirectError
}

var healthy = fake{rulesOK: true, proxyStatus: 200, directStatus: 401, redirectCode: 200}

func TestRun(t *testing.T) {
	for _, c := range []struct {
		name  string
		f     fake
		ok    bool
		fails []string // substrings of the FAIL lines and fixes
	}{
		{"all in effect", healthy, true, nil},
		{"tokens optional", with(healthy, func(f *fake) { f.directStatus = 200 }), false,
			[]string{"FAIL  IMDS itself rejects", "fix: aws ec2 modify-instance-metadata-options --instance-id i-0abc --http-tokens required --http-put-response-hop-limit 1 --http-endpoint enabled", "aws lightsail update-instance-metadata-options"}},
		{"rules missing", with(healthy, func(f *fake) { f.rulesOK = false }), false, []string{"FAIL  redirect rules", "imdsguard rules install"}},
		{"rules unreadable", with(healthy, func(f *fake) { f.rulesErr = errors.New("permission denied") }), false, []string{"cannot read the rules: permission denied", "as root"}},
		{"daemon down", with(healthy, func(f *fake) {
			f.proxyErr, f.redirectError = errors.New("connection refused"), errors.New("connection refused")
		}), false, []string{"FAIL  imdsguard answers", "systemctl start imdsguard", "FAIL  an IMDSv1 request through the redirect"}},
		{"direct unreachable", with(healthy, func(f *fake) { f.directErr = errors.New("operation not permitted") }), false, []string{"cannot reach IMDS directly", "as root"}},
		{"instance id from the direct answer", with(healthy, func(f *fake) { f.directStatus, f.redirectCode = 200, 403 }), false, []string{"--instance-id i-0direct"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := Run(context.Background(), c.f)
			out := r.String()
			if r.OK() != c.ok || len(r) != 4 {
				t.Fatalf("OK() = %v with %d checks, want %v:\n%s", r.OK(), len(r), c.ok, out)
			}
			for _, want := range c.fails {
				if !strings.Contains(out, want) {
					t.Errorf("report lacks %q:\n%s", want, out)
				}
			}
			if c.ok && strings.Contains(out, "FAIL") {
				t.Errorf("healthy report has a FAIL:\n%s", out)
			}
		})
	}
}

func with(f fake, change func(*fake)) fake {
	change(&f)
	return f
}
