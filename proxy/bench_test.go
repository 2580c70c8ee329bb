package proxy

import (
	"bytes"
	"context"
	"io"
	"net"
	"testing"
)

// BenchmarkServeCached is one cached IMDSv2 read through the whole daemon
// path on loopback: h1's loop, the pipeline, the policy, the cache, the
// answer and its event. The client is a plain keep-alive connection that
// allocates nothing, so allocs/op are the server's.
//
//	go test -run '^$' -bench ServeCached -benchmem ./proxy/
func BenchmarkServeCached(b *testing.B) {
	t := &testing.T{}
	e := newEnv(t, withCache(t))
	lns, err := Listen([]string{"127.0.0.1:0"}, e.proxy.log)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go Serve(ctx, e.proxy, lns)
	go func() {
		for range e.events {
		}
	}()
	c, err := net.Dial("tcp", lns[0].Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "PUT /latest/api/token HTTP/1.1\r\nHost: 169.254.169.254\r\nX-aws-ec2-metadata-token-ttl-seconds: 600\r\n\r\n")
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		b.Fatal(err)
	}
	_, tok, _ := bytes.Cut(buf[:n], []byte("\r\n\r\n"))
	req := []byte("GET /latest/meta-data/instance-id HTTP/1.1\r\nHost: 169.254.169.254\r\nUser-Agent: bench\r\nX-aws-ec2-metadata-token: " + string(tok) + "\r\n\r\n")
	c.Write(req)
	size, err := c.Read(buf) // the first answer (a miss) sets the size of the rest
	if err != nil || !bytes.HasPrefix(buf, []byte("HTTP/1.1 200 ")) {
		b.Fatalf("first answer: %v %q", err, buf[:size])
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf[:size]); err != nil {
			b.Fatal(err)
		}
	}
}
