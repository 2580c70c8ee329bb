package fakeimds

import (
	"bufio"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestHopLimit: a token answer leaves with IP TTL HopLimit, seen by the
// client's IP_MINTTL: with min TTL 2, an answer sent with TTL 1 is
// dropped by the client's kernel (no answer), one sent with TTL 2 arrives.
// Other answers keep the system default.
func TestHopLimit(t *testing.T) {
	for _, c := range []struct {
		hop    int
		answer bool
	}{{1, false}, {2, true}, {0, true}} {
		srv := httptest.NewServer(newOptServer(t, Options{HopLimit: c.hop}))
		status, err := putMinTTL(t, srv.Listener.Addr().String(), 2)
		srv.Close()
		if got := err == nil && status == 200; got != c.answer {
			t.Errorf("hop limit %d, min ttl 2: answered %v (%d, %v), want %v", c.hop, got, status, err, c.answer)
		}
	}
}

// putMinTTL sends a token PUT to addr on a connection that drops packets
// with a TTL below min, and waits 300 ms for the answer.
func putMinTTL(t *testing.T, addr string, min int) (int, error) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	raw, err := conn.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := raw.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, syscall.IP_MINTTL, min) }); err != nil || serr != nil {
		t.Fatalf("IP_MINTTL: %v %v", err, serr)
	}
	conn.SetDeadline(time.Now().Add(300 * time.Millisecond))
	req := "PUT " + TokenPath + " HTTP/1.1\r\nHost: x\r\nX-aws-ec2-metadata-token-ttl-seconds: 60\r\n\r\n"
	if _, err := conn.Write([]byte(req)); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if v := resp.Header.Get("X-aws-ec2-metadata-token-ttl-seconds"); v != "60" || !strings.Contains(resp.Header.Get("Server"), "EC2ws") {
		t.Errorf("token answer headers %v", resp.Header)
	}
	return resp.StatusCode, nil
}
