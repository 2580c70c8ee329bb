package proxy

import (
	"bytes"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"runtime/debug"
	"strconv"
	"testing"

	"github.com/imdsguard/imdsguard/internal/cache"
)

// TestConnectionStacksStaySmall: serving IMDSv2 reads, a connection's
// goroutine stays within a 4 KB stack, which is most of what 1,000 open
// connections cost (docs/BENCHMARKS.md). The frames on the way to a cached
// answer are kept small for it (Proxy.restoreTTL says how); a change that
// makes them deeper again doubles every connection's stack, and fails here.
// The GC is off meanwhile: it is what shrinks stacks, so with it off the
// stacks are as large as the requests made them. Each connection's first
// read checks its token's HMAC, the deepest step of a read.
func TestConnectionStacksStaySmall(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's frames are larger: stack sizes say nothing about a normal build")
	}
	// Each measure runs in a process of its own: stacks freed by other
	// tests would be reused, and hide what the connections take.
	for _, mode := range []string{"cached", "uncached"} {
		t.Run(mode, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestConnectionStacksMeasure$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), "IMDSGUARD_STACK_MEASURE="+mode)
			out, err := cmd.CombinedOutput()
			m := regexp.MustCompile(`(\d+) bytes of stack each`).FindSubmatch(out)
			if err != nil || m == nil {
				t.Fatalf("%v\n%s", err, out)
			}
			per, _ := strconv.Atoi(string(m[1]))
			t.Logf("%s: 200 connections, 3 reads each: %d bytes of stack each", mode, per)
			if per > 5<<10 {
				t.Errorf("each connection holds %d bytes of stack, want at most 4 KB (and a little of the test's own)", per)
			}
		})
	}
}

// TestConnectionStacksMeasure is TestConnectionStacksStaySmall's measure,
// run in a process of its own; it does nothing otherwise.
func TestConnectionStacksMeasure(t *testing.T) {
	switch os.Getenv("IMDSGUARD_STACK_MEASURE") {
	case "cached":
		connectionStacks(t, newEnv(t, withCache(t)))
	case "uncached":
		// Without the cache (there, but disabled, as the daemon has it)
		// every read waits for IMDS: the request to it runs on one of the
		// upstream client's workers (offstack.Pool), the caller's stack
		// stays as it is.
		connectionStacks(t, newEnv(t, func(o *Options) {
			c := cache.New(o.Upstream, cache.Options{Config: cache.Config{Enabled: false}})
			t.Cleanup(func() { c.Close() })
			o.Upstream = c
		}))
	}
}

// connectionStacks measures the stacks of connections to e's proxy.
func connectionStacks(t *testing.T, e *env) {
	addr := serve(t, e)
	go func() {
		for range e.events {
		}
	}()
	exchange := func(c net.Conn, req string) []byte {
		t.Helper()
		if _, err := io.WriteString(c, req); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4096)
		n, err := c.Read(buf)
		if err != nil || !bytes.HasPrefix(buf[:n], []byte("HTTP/1.1 200 ")) {
			t.Fatalf("%q: %v %q", req, err, buf[:n])
		}
		return buf[:n]
	}
	dial := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	_, tok, _ := bytes.Cut(exchange(dial(), "PUT /latest/api/token HTTP/1.1\r\nHost: 169.254.169.254\r\nX-aws-ec2-metadata-token-ttl-seconds: 600\r\n\r\n"), []byte("\r\n\r\n"))
	read := "GET /latest/meta-data/instance-id HTTP/1.1\r\nHost: 169.254.169.254\r\nUser-Agent: test\r\nX-aws-ec2-metadata-token: " + string(tok) + "\r\n\r\n"
	exchange(dial(), read) // the cache holds the answer from now on

	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	const conns = 200
	for range conns {
		c := dial()
		for range 3 {
			exchange(c, read)
		}
	}
	runtime.ReadMemStats(&after)
	per := (int64(after.StackInuse) - int64(before.StackInuse)) / conns
	t.Logf("%d bytes of stack each", per)
}
