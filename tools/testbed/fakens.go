package testbed

import (
	"net/http"
	"time"
)

// StartFakeIMDSIn starts bin/fakeimds on addr inside network namespace ns
// and waits until it listens there; its Stats are asked from inside ns.
func (e *Env) StartFakeIMDSIn(ns, addr string) *FakeIMDS {
	e.T.Helper()
	e.RequireBins("fakeimds")
	f := &FakeIMDS{Addr: addr, URL: "http://" + addr,
		client: &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DialContext: DialerIn(ns, time.Second)}}}
	f.Proc = StartProc(e.T, ProcSpec{Name: "fakeimds", Path: e.Bin("fakeimds"), NS: ns, Args: []string{"-listen", addr}})
	WaitListening(e.T, f.Proc, ns, addr)
	return f
}

// ClientIn is an HTTP client whose connections are made inside ns, each
// request bounded by timeout.
func ClientIn(ns string, timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{DialContext: DialerIn(ns, timeout), Proxy: nil}}
}
