package main

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
)

// The floor of a Go proxy (-mode proxy): what a goroutine per connection
// costs when each request also goes upstream over at most -conns kept
// connections, as imdsguard's uncached path does (upstream.MaxConns),
// with nothing decided. Each head's target and X-aws-ec2-metadata-token
// are sent upstream in a GET of their own (the least an IMDS proxy
// sends); the answer is read with http.ReadResponse, as imdsguard reads
// it, and given back with its status, Content-Type and body. An upstream
// that fails answers 502 and the kept connection is dropped.

// upstreamPool hands out at most cap(slots) connections to one address.
type upstreamPool struct {
	addr  string
	slots chan *upConn // nil: a free slot with no connection yet
}

type upConn struct {
	c  net.Conn
	br *bufio.Reader
}

func newUpstreamPool(addr string, conns int) *upstreamPool {
	p := &upstreamPool{addr: addr, slots: make(chan *upConn, conns)}
	for range conns {
		p.slots <- nil
	}
	return p
}

func (p *upstreamPool) serveConn(c net.Conn) {
	defer c.Close()
	br := bufio.NewReaderSize(c, 4096)
	out := make([]byte, 0, 1024)
	for {
		target, token, ok := readHead(br)
		if !ok {
			return
		}
		status, ctype, body := p.forward(target, token)
		out = answerTo(out[:0], status, ctype, body)
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}

// readHead reads one request head and returns its target and the value of
// its X-aws-ec2-metadata-token header; ok is false when the connection
// ended or sent something other than a head of at most maxHead bytes.
func readHead(br *bufio.Reader) (target, token string, ok bool) {
	size := 0
	for first := true; ; first = false {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return "", "", false
		}
		if size += len(line); size > maxHead {
			return "", "", false
		}
		line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
		if bytes.IndexByte(line, '\r') >= 0 {
			return "", "", false // nothing a bare CR could smuggle upstream
		}
		if len(line) == 0 {
			return target, token, target != ""
		}
		if first {
			f := bytes.Fields(line)
			if len(f) != 3 {
				return "", "", false
			}
			target = string(f[1])
			continue
		}
		if k, v, ok := bytes.Cut(line, []byte(":")); ok && http.CanonicalHeaderKey(string(k)) == "X-Aws-Ec2-Metadata-Token" {
			token = string(bytes.TrimSpace(v))
		}
	}
}

// forward sends a GET of target with token upstream and returns the answer.
func (p *upstreamPool) forward(target, token string) (status int, ctype string, body []byte) {
	uc := <-p.slots
	defer func() { p.slots <- uc }()
	for attempt := 0; attempt < 2; attempt++ {
		reused := uc != nil
		if uc == nil {
			c, err := net.Dial("tcp", p.addr)
			if err != nil {
				return http.StatusBadGateway, "", nil
			}
			uc = &upConn{c: c, br: bufio.NewReaderSize(c, 4096)}
		}
		resp, err := uc.exchange(p.addr, target, token)
		if err != nil {
			uc.c.Close()
			uc = nil
			if reused {
				continue // the upstream closed a kept connection: once more on a new one
			}
			return http.StatusBadGateway, "", nil
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.Close {
			uc.c.Close()
			uc = nil
		}
		if err != nil {
			return http.StatusBadGateway, "", nil
		}
		return resp.StatusCode, resp.Header.Get("Content-Type"), b
	}
	return http.StatusBadGateway, "", nil
}

func (uc *upConn) exchange(host, target, token string) (*http.Response, error) {
	req := "GET " + target + " HTTP/1.1\r\nHost: " + host + "\r\nX-aws-ec2-metadata-token: " + token + "\r\n\r\n"
	if _, err := io.WriteString(uc.c, req); err != nil {
		return nil, err
	}
	return http.ReadResponse(uc.br, nil)
}
