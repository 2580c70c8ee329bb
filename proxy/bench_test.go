package proxy

import (
	"bytes"
	"context"
	"io"
	"net"
	"testing"
)

// BenchmarkServeCached is one cached IMDSv2 read through the whole daemon
// path on loopback: net/http's server, the pipeline, the policy, the cache,
// the answer and its event. The client is a plain keep-alive connection
// that allocates nothing, so allocs/op are the server's, and the test env's
// observer's copy of each event.
//
//	go test -run '^$' -bench ServeCached -benchmem ./proxy/
func BenchmarkServeCached(b *testing.B) {
	read := cachedReads(b, newEnv(&testing.T{}, withCache(&testing.T{})))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		read()
	}
}

// cachedReads serves e on the daemon's own server (Serve), takes an IMDSv2
// token on one keep-alive connection and reads instance-id with it once
// (a miss); read sends the same read again and reads its answer whole.
func cachedReads(tb testing.TB, e *env) (read func()) {
	lns, err := Listen([]string{"127.0.0.1:0"}, e.proxy.log)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	go Serve(ctx, e.proxy, lns)
	go func() {
		for range e.events {
		}
	}()
	c, err := net.Dial("tcp", lns[0].Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	io.WriteString(c, "PUT /latest/api/token HTTP/1.1\r\nHost: 169.254.169.254\r\nX-aws-ec2-metadata-token-ttl-seconds: 600\r\n\r\n")
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		tb.Fatal(err)
	}
	_, tok, _ := bytes.Cut(buf[:n], []byte("\r\n\r\n"))
	req := []byte("GET /latest/meta-data/instance-id HTTP/1.1\r\nHost: 169.254.169.254\r\nUser-Agent: bench\r\nX-aws-ec2-metadata-token: " + string(tok) + "\r\n\r\n")
	c.Write(req)
	size, err := c.Read(buf) // the first answer (a miss) sets the size of the rest
	if err != nil || !bytes.HasPrefix(buf, []byte("HTTP/1.1 200 ")) {
		tb.Fatalf("first answer: %v %q", err, buf[:size])
	}
	return func() {
		if _, err := c.Write(req); err != nil {
			tb.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf[:size]); err != nil {
			tb.Fatal(err)
		}
	}
}
