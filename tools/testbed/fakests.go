package testbed

import (
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/imdsguard/imdsguard/internal/netnstest"
	"github.com/imdsguard/imdsguard/tools/fakests"
)

// EndpointEnvSTS is the SDKs' variable for STS's endpoint, which the daemon
// reads (as every AWS SDK does): FakeSTS.Env sets it.
const EndpointEnvSTS = "AWS_ENDPOINT_URL_STS"

// FakeSTSOptions say where a fake STS runs.
type FakeSTSOptions struct {
	// NS is the network namespace on whose loopback it listens ("" = the
	// test's own): where the daemon that calls it runs.
	NS string
	// Process runs bin/fakests (in NS) instead of serving from the test
	// process; the methods then go through its control API.
	Process bool
	// Keys are the credentials calls may be signed with; nil:
	// fakests.NodeKey, the credentials AEMM and fakeimds serve.
	Keys []fakests.Key
	// Addr is where it listens; "" = 127.0.0.1 and a free port.
	Addr string
	// Now is the fake's clock (fakests.Options.Now), served from the test
	// process only; nil: time.Now. A clock a few minutes behind mints
	// credentials that expire sooner (signatures stay within STS's 15 min).
	Now func() time.Time
}

// FakeSTS is a running fake STS. Its methods drive it wherever it runs
// and fail the test when they cannot.
type FakeSTS struct {
	URL    string          // its endpoint (http://127.0.0.1:PORT), reachable inside NS
	Addr   string          // host:port
	NS     string          // where it listens; "" = the test's namespace
	Server *fakests.Server // served from the test process; nil with Process
	Proc   *Proc           // bin/fakests with Process; nil otherwise
	ctl    fakests.Client
	t      TB
}

// StartFakeSTS starts a fake STS where o says and returns once it accepts
// connections; it stops when the test ends. Give the daemon f.Env() in its
// environment (GuardOptions.Env) to point its STS client at it.
func (e *Env) StartFakeSTS(o FakeSTSOptions) *FakeSTS {
	e.T.Helper()
	f := &FakeSTS{NS: o.NS, t: e.T}
	if o.Process {
		f.startProc(e, o)
	} else {
		f.serve(o)
	}
	f.URL = "http://" + f.Addr
	f.ctl = fakests.Client{URL: f.URL, HTTP: ClientIn(o.NS, 5*time.Second)}
	return f
}

// StartFakeSTS starts a fake STS in the test process, on loopback of the
// Host's host namespace, where its imdsguard runs.
func (h *Host) StartFakeSTS() *FakeSTS {
	h.e.T.Helper()
	return h.e.StartFakeSTS(FakeSTSOptions{NS: h.HostNS})
}

// serve listens inside o.NS (the socket stays there) and serves a
// fakests.Server from this process.
func (f *FakeSTS) serve(o FakeSTSOptions) {
	f.t.Helper()
	addr := o.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := listenIn(o.NS, addr)
	if err != nil {
		f.t.Fatalf("fake STS: listen on %s in %q: %v", addr, o.NS, err)
	}
	f.Addr = ln.Addr().String()
	f.Server = fakests.New(fakests.Options{Keys: o.Keys, Now: o.Now})
	srv := &http.Server{Handler: f.Server, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	f.t.Cleanup(func() {
		_ = srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			f.t.Errorf("fake STS on %s: %v", f.Addr, err)
		}
	})
}

// listenIn listens on addr inside network namespace ns ("" = this one).
func listenIn(ns, addr string) (net.Listener, error) {
	if ns == "" {
		return net.Listen("tcp", addr)
	}
	var ln net.Listener
	err := netnstest.Do(ns, func() (err error) {
		ln, err = net.Listen("tcp", addr)
		return err
	})
	return ln, err
}

// startProc runs bin/fakests in o.NS.
func (f *FakeSTS) startProc(e *Env, o FakeSTSOptions) {
	e.T.Helper()
	e.RequireBins("fakests")
	f.Addr = o.Addr
	if f.Addr == "" {
		f.Addr = HostPort("127.0.0.1", FreePort(e.T))
	}
	args := []string{"-listen", f.Addr}
	for _, k := range o.Keys {
		args = append(args, "-key", k.AccessKeyID+","+k.SecretAccessKey+","+k.SessionToken)
	}
	f.Proc = StartProc(e.T, ProcSpec{Name: "fakests", Path: e.Bin("fakests"), NS: o.NS, Args: args})
	WaitListening(e.T, f.Proc, o.NS, f.Addr)
}

// Env is the environment variable that points an SDK's (the daemon's) STS
// client at the fake.
func (f *FakeSTS) Env() string { return EndpointEnvSTS + "=" + f.URL }

// Calls returns every call the fake received so far.
func (f *FakeSTS) Calls() []fakests.Call {
	f.t.Helper()
	if f.Server != nil {
		return f.Server.Calls()
	}
	calls, err := f.ctl.Calls()
	f.check(err)
	return calls
}

// ClearCalls makes it forget the calls so far.
func (f *FakeSTS) ClearCalls() {
	f.t.Helper()
	if f.Server != nil {
		f.Server.ClearCalls()
		return
	}
	f.check(f.ctl.ClearCalls())
}

// SetFault sets the fault for every role (the zero Fault: none).
func (f *FakeSTS) SetFault(fault fakests.Fault) {
	f.t.Helper()
	f.SetRoleFault("", fault)
}

// SetRoleFault sets the fault for role, an ARN or a role's name.
func (f *FakeSTS) SetRoleFault(role string, fault fakests.Fault) {
	f.t.Helper()
	if f.Server != nil {
		f.check(f.Server.SetRoleFault(role, fault))
		return
	}
	f.check(f.ctl.SetRoleFault(role, fault))
}

// ClearFaults removes every fault.
func (f *FakeSTS) ClearFaults() {
	f.t.Helper()
	if f.Server != nil {
		f.Server.ClearFaults()
		return
	}
	f.check(f.ctl.ClearFaults())
}

// SetKeys replaces the credentials calls may be signed with.
func (f *FakeSTS) SetKeys(keys ...fakests.Key) {
	f.t.Helper()
	if f.Server != nil {
		f.Server.SetKeys(keys...)
		return
	}
	f.check(f.ctl.SetKeys(keys...))
}

func (f *FakeSTS) check(err error) {
	f.t.Helper()
	if err != nil {
		f.t.Fatalf("fake STS on %s: %v", f.Addr, err)
	}
}
