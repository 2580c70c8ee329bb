package check

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/imdsguard/imdsguard/internal/redirect"
	"github.com/imdsguard/imdsguard/internal/upstream"
)

// Timeout bounds each probe.
const Timeout = 2 * time.Second

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
	return true, fmt.Sprintf("%d pieces in place, each jump first in its chain (iptables %s)", len(st.Items), st.Backend), nil
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

func (s System) Proxy(ctx context.Context) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, "http://"+s.ProxyAddr+"/latest/api/token", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("X-aws-ec2-metadata-token-ttl-seconds", "60")
	status, _, err := do(upstream.NewTransport(0), req)
	return status, err
}

func (s System) Direct(ctx context.Context, path string) (int, string, error) {
	return get(ctx, upstream.NewTransport(s.Mark), s.Upstream+path)
}

func (s System) Redirected(ctx context.Context, path string) (int, string, error) {
	return get(ctx, upstream.NewTransport(0), s.Metadata+path)
}

func get(ctx context.Context, tr http.RoundTripper, url string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	return do(tr, req)
}

func do(tr http.RoundTripper, req *http.Request) (int, string, error) {
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
