package check

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/imdsguard/imdsguard/internal/imds"
	"github.com/imdsguard/imdsguard/internal/redirect"
	"github.com/imdsguard/imdsguard/internal/upstream"
)

// Timeout bounds each probe.
const Timeout = 2 * time.Second

// ServedTimeout bounds a token OPTIONS through the redirect: imdsguard
// answers it from memory, in well under a millisecond.
const ServedTimeout = time.Second

// RuntimeTimeout bounds a runtime's answer: the daemon waits at most a
// tenth of that (workload.DefaultWait) before serving a caller unnamed.
const RuntimeTimeout = time.Second

// System probes the instance for real.
type System struct {
	RulesFor  *redirect.Rules // nil when the configuration turns the redirect off, or RulesErr
	RulesErr  error           // why the rules could not be opened
	ProxyAddr string          // 127.0.0.1:PORT
	Upstream  string          // upstream.url: IMDS itself
	Metadata  string          // the address callers use, e.g. http://169.254.169.254
	Mark      uint32          // the daemon's firewall mark
	// CiliumConfig is Cilium's datapath configuration file; "" means
	// CiliumNodeConfig.
	CiliumConfig string
	// Families are the metadata addresses of the families the
	// configuration redirects, as a process dials them (imds.Host,
	// imds.HostIPv6).
	Families []Family
	// RuntimeClients are the configured runtimes (runtimes:), each with
	// the client the daemon looks containers up with.
	RuntimeClients []RuntimeClient
	// TagsAllowedTo names who the policy lets read the instance's tags
	// (MetadataOptions.TagsAllowedTo).
	TagsAllowedTo []string
}

var _ Probes = System{}

// Family is one redirected family's metadata host, as in a URL.
type Family struct {
	Name string // "IPv4" or "IPv6"
	Host string // 169.254.169.254 or [fd00:ec2::254]
}

// RuntimeClient is one configured runtime and its version call.
type RuntimeClient struct {
	Name, Key, Socket string
	Version           func(context.Context) (string, error)
}

func (s System) Rules(ctx context.Context) (bool, string, error) {
	if s.RulesErr != nil {
		return false, "", s.RulesErr
	}
	if s.RulesFor == nil {
		return false, "redirect.ipv4 and redirect.ipv6 are off in the configuration: processes reach IMDS directly", nil
	}
	st, err := s.RulesFor.Status(ctx)
	if err != nil {
		return false, "", err
	}
	if !st.OK() {
		return false, fmt.Sprintf("%d of %d pieces missing (iptables %s)", len(st.Missing()), len(st.Items), st.Backend), nil
	}
	return true, fmt.Sprintf("%d pieces in place, each jump first in its chain or below rules that cannot touch metadata traffic (iptables %s)", len(st.Items), st.Backend), nil
}

func (s System) Containers(ctx context.Context) (Containers, error) {
	if s.RulesErr != nil {
		return Containers{}, s.RulesErr
	}
	if s.RulesFor == nil {
		return Containers{}, errors.New("redirect.ipv4 and redirect.ipv6 are off in the configuration")
	}
	cp, err := s.RulesFor.ContainerPath(ctx)
	if err != nil {
		return Containers{}, err
	}
	c := Containers{Patterns: cp.Patterns, Connections: cp.Connections, Counted: cp.Counted, Cilium: cp.Cilium}
	for _, a := range cp.Landing {
		c.Landing = append(c.Landing, a.String())
	}
	for _, it := range cp.Missing {
		c.Missing = append(c.Missing, it.Family+" "+it.Where()+" "+it.What)
	}
	for _, l := range cp.Links {
		in := Interface{Name: l.Name, Kind: l.KindName(), AddressLess: l.AddressLess(), Master: l.Master}
		for _, a := range l.Addrs {
			in.Addrs = append(in.Addrs, a.String())
		}
		c.Interfaces = append(c.Interfaces, in)
	}
	if c.Cilium {
		path := s.CiliumConfig
		if path == "" {
			path = CiliumNodeConfig
		}
		c.HostRouting = ciliumHostRouting(path)
	}
	return c, nil
}

func (s System) Landing(context.Context) ([]Landing, error) {
	if s.RulesErr != nil {
		return nil, s.RulesErr
	}
	if s.RulesFor == nil {
		return nil, nil
	}
	ls, err := s.RulesFor.Landing()
	if err != nil {
		return nil, err
	}
	out := make([]Landing, len(ls))
	for i, l := range ls {
		out[i] = Landing{Family: l.Family, Addr: l.Addr.String(), Present: l.Present, IPv6Off: l.IPv6Off}
	}
	return out, nil
}

// Runtimes asks every configured runtime at once, each for at most
// RuntimeTimeout: first whether its socket is there and takes a
// connection, then its version, through the daemon's own client.
func (s System) Runtimes(ctx context.Context) []Runtime {
	out := make([]Runtime, len(s.RuntimeClients))
	var wg sync.WaitGroup
	for i, c := range s.RuntimeClients {
		wg.Go(func() { out[i] = askRuntime(ctx, c) })
	}
	wg.Wait()
	return out
}

func askRuntime(ctx context.Context, c RuntimeClient) Runtime {
	rt := Runtime{Name: c.Name, Key: c.Key, Socket: c.Socket}
	st, err := os.Stat(c.Socket)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		rt.Absent = true
		return rt
	case err != nil:
		rt.Err = err
		return rt
	case st.Mode()&fs.ModeSocket == 0:
		rt.Err = fmt.Errorf("%s is not a socket", c.Socket)
		return rt
	}
	ctx, cancel := context.WithTimeout(ctx, RuntimeTimeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "unix", c.Socket)
	if err != nil {
		rt.Err = err // connection refused: nothing listens (a stale socket); permission denied
		return rt
	}
	conn.Close()
	rt.Answer, rt.Err = c.Version(ctx)
	return rt
}

// Served sends the families' OPTIONS at once.
func (s System) Served(ctx context.Context) []Answer {
	out := make([]Answer, len(s.Families))
	var wg sync.WaitGroup
	for i, f := range s.Families {
		wg.Go(func() { out[i] = options(ctx, f) })
	}
	wg.Wait()
	return out
}

// options sends a token OPTIONS to f's metadata address, without the
// daemon's mark: through the redirect, as any process's request goes.
func options(ctx context.Context, f Family) Answer {
	a := Answer{Family: f.Name, Addr: f.Host + ":80"}
	ctx, cancel := context.WithTimeout(ctx, ServedTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodOptions, "http://"+f.Host+imds.TokenURLPath, nil)
	if err != nil {
		a.Err = err
		return a
	}
	tr := upstream.NewTransport(0)
	defer tr.CloseIdleConnections()
	start := time.Now()
	a.Status, _, a.Err = do(tr, req)
	a.Took = time.Since(start)
	a.Refused = errors.Is(a.Err, syscall.ECONNREFUSED)
	a.NoRoute = errors.Is(a.Err, syscall.ENETUNREACH) || errors.Is(a.Err, syscall.EADDRNOTAVAIL)
	return a
}

func (s System) Proxy(ctx context.Context) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, "http://"+s.ProxyAddr+"/latest/api/token", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("X-aws-ec2-metadata-token-ttl-seconds", "60")
	status, _, err := do(upstream.NewTransport(0), req)
	return status, err
}

// Direct is bounded by DirectTimeout, as MetadataOptions' requests.
func (s System) Direct(ctx context.Context, path string) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, DirectTimeout)
	defer cancel()
	return get(ctx, upstream.NewTransport(s.Mark), s.Upstream+path)
}

// RedirectedWait bounds the answer to Redirected: past imdsguard's own
// wait for IMDS (upstream.FetchTimeout, then its 504), so that check sees
// what a caller gets when IMDS does not answer.
const RedirectedWait = 2*upstream.FetchTimeout + upstream.DialTimeout

func (s System) Redirected(ctx context.Context, path string) (int, string, error) {
	tr := upstream.NewTransport(0)
	tr.ResponseHeaderTimeout = RedirectedWait
	return get(ctx, tr, s.Metadata+path)
}

func get(ctx context.Context, tr http.RoundTripper, url string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	return do(tr, req)
}

// UserAgent names check's own requests, so that an IMDS log (or a test's
// mock) tells them from callers'.
const UserAgent = "imdsguard/check"

func do(tr http.RoundTripper, req *http.Request) (int, string, error) {
	req.Header.Set("User-Agent", UserAgent)
	ctx, cancel := context.WithTimeout(req.Context(), Timeout)
	defer cancel()
	resp, err := (&http.Client{Transport: tr}).Do(req.WithContext(ctx))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, strings.TrimSpace(string(b)), nil
}
