package check

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/imdsguard/imdsguard/internal/imds"
	"github.com/imdsguard/imdsguard/internal/upstream"
)

// MetadataOptions asks IMDS directly, past the redirect (with the
// daemon's mark): a token PUT on each family (IPv6 whether redirected or
// not), then with the token the
// tags and the hop limit, each within DirectTimeout.
func (s System) MetadataOptions(ctx context.Context) MetadataOptions {
	o := MetadataOptions{TagsAllowedTo: s.TagsAllowedTo, IPv6Redirected: s.hasFamily("IPv6")}
	var wg sync.WaitGroup
	// Asked also when redirect.ipv6 is off (an answer then is a path to
	// IMDS that passes imdsguard by), but then only when upstream.url is
	// IMDS's own address: an upstream elsewhere (a test's, a relay's) says
	// nothing about [fd00:ec2::254].
	if o.IPv6Redirected || upstreamIsIMDS(s.Upstream) {
		wg.Go(func() { o.IPv6, _ = s.directToken(ctx, "http://"+imds.HostIPv6) })
	}
	var tok string
	o.Token, tok = s.directToken(ctx, s.Upstream)
	if tok != "" {
		wg.Go(func() { o.Tags = s.directTags(ctx, tok) })
		wg.Go(func() { o.Hop = s.hopProbe(ctx, o.Token.Took) })
	}
	wg.Wait()
	return o
}

// upstreamIsIMDS reports whether raw (upstream.url) is IMDS's IPv4 address.
func upstreamIsIMDS(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && u.Hostname() == imds.IPv4.String()
}

func (s System) hasFamily(name string) bool {
	for _, f := range s.Families {
		if f.Name == name {
			return true
		}
	}
	return false
}

// directToken PUTs for a token at base, straight to IMDS.
func (s System) directToken(ctx context.Context, base string) (DirectAnswer, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, base+imds.TokenURLPath, nil)
	if err != nil {
		return DirectAnswer{Err: err}, ""
	}
	req.Header.Set(imds.HeaderTokenTTL, "60")
	a := s.directDo(req)
	if a.answered() && a.Status == http.StatusOK {
		return a, a.Body
	}
	return a, ""
}

// directTags GETs the tags listing with tok.
func (s System) directTags(ctx context.Context, tok string) DirectAnswer {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.Upstream+"/latest/meta-data/tags/instance", nil)
	if err != nil {
		return DirectAnswer{Err: err}
	}
	req.Header.Set(imds.HeaderToken, tok)
	return s.directDo(req)
}

func (s System) directDo(req *http.Request) DirectAnswer {
	ctx, cancel := context.WithTimeout(req.Context(), DirectTimeout)
	defer cancel()
	tr := upstream.NewTransport(s.Mark)
	defer tr.CloseIdleConnections()
	start := time.Now()
	a := DirectAnswer{Sent: true}
	a.Status, a.Body, a.Err = do(tr, req.WithContext(ctx))
	a.Took = time.Since(start)
	return a
}

// hopProbe sends a token PUT on a marked connection that drops packets
// with a TTL below 2 (IP_MINTTL, IPV6_MINHOPCOUNT: set once connected, so
// the handshake is not judged) and waits for the answer: twenty times the
// plain PUT's round trip, at least 200 ms, at most DirectTimeout.
func (s System) hopProbe(ctx context.Context, rtt time.Duration) HopProbe {
	p := HopProbe{Sent: true, Waited: min(max(20*rtt, 200*time.Millisecond), DirectTimeout)}
	u, err := url.Parse(s.Upstream)
	if err != nil {
		p.Err = fmt.Errorf("hop limit probe: %w", err)
		return p
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	ctx, cancel := context.WithTimeout(ctx, DirectTimeout)
	defer cancel()
	conn, err := upstream.Dialer(s.Mark, DirectTimeout).DialContext(ctx, "tcp", addr)
	if err != nil {
		p.Err = fmt.Errorf("hop limit probe: %w", err)
		return p
	}
	defer conn.Close()
	if err := setMinTTL(conn, 2); err != nil {
		p.Err = err
		return p
	}
	before, berr := minTTLDrops()
	p.Answered = putAnswered(conn, u.Host, p.Waited)
	if after, aerr := minTTLDrops(); berr == nil && aerr == nil {
		p.Drops = after - before
	}
	return p
}

// putAnswered writes a token PUT on conn and reports whether an answer
// arrives within wait.
func putAnswered(conn net.Conn, host string, wait time.Duration) bool {
	_ = conn.SetDeadline(time.Now().Add(wait))
	req := "PUT " + imds.TokenURLPath + " HTTP/1.1\r\nHost: " + host + "\r\nUser-Agent: " + UserAgent +
		"\r\n" + imds.HeaderTokenTTL + ": 60\r\nConnection: close\r\n\r\n"
	if _, err := conn.Write([]byte(req)); err != nil {
		return false
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return true
}

// minTTLDrops reads TcpExt TCPMinTTLDrop, the packets this network
// namespace dropped for a TTL below a socket's minimum.
func minTTLDrops() (uint64, error) {
	b, err := os.ReadFile("/proc/net/netstat")
	if err != nil {
		return 0, fmt.Errorf("read TCPMinTTLDrop: %w", err)
	}
	return parseMinTTLDrops(string(b))
}

// parseMinTTLDrops finds TCPMinTTLDrop in /proc/net/netstat's text: a
// "TcpExt:" line of names followed by one of values.
func parseMinTTLDrops(text string) (uint64, error) {
	lines := strings.Split(text, "\n")
	for i := 0; i+1 < len(lines); i++ {
		names, values := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		if len(names) == 0 || names[0] != "TcpExt:" || len(values) != len(names) {
			continue
		}
		for j, n := range names {
			if n == "TCPMinTTLDrop" {
				return strconv.ParseUint(values[j], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("read TCPMinTTLDrop: not in /proc/net/netstat")
}
