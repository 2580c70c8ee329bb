package e2e

import (
	"strings"
	"testing"

	"github.com/imdsguard/imdsguard/tools/testbed"
)

// clientCase is one client run and what it must show.
type clientCase struct {
	name   string
	cmd    testbed.Cmd
	wantOK bool   // exit status 0
	want   string // substring of stdout on success, of stdout+stderr on failure
}

// runClients runs each case as a subtest, one after the other (AEMM crashes
// under concurrent token PUTs).
func runClients(t *testing.T, e *testbed.Env, cases []clientCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			checkClient(t, e.Run(c.cmd), c.wantOK, c.want)
		})
	}
}

func checkClient(t *testing.T, r testbed.Result, wantOK bool, want string) {
	t.Helper()
	switch {
	case wantOK && r.Err != nil:
		t.Fatalf("want success, got %v", r)
	case !wantOK && r.Err == nil:
		t.Fatalf("want failure, got success: %v", r)
	case wantOK && !strings.Contains(r.Stdout, want):
		t.Fatalf("stdout lacks %q: %v", want, r)
	case !wantOK && !strings.Contains(r.Stdout+r.Stderr, want):
		t.Fatalf("output lacks %q: %v", want, r)
	}
}

// endpointMode starts AEMM (tokens required) and imdsguard in front of it,
// without kernel rules: clients are pointed at the proxy's port.
func endpointMode(t *testing.T, extraConfig string) (*testbed.Env, *testbed.AEMM, *testbed.Guard) {
	t.Helper()
	e := testbed.New(t)
	e.RequireBins("aemm", "imdsguard", "imdsclient")
	a := e.StartAEMM(testbed.AEMMOptions{})
	g := e.StartGuard(testbed.GuardConfig{UpstreamURL: a.URL, Extra: extraConfig}, testbed.GuardOptions{})
	return e, a, g
}
