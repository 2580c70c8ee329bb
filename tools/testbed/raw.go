package testbed

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/imdsguard/imdsguard/internal/netnstest"
)

// RawTimeout bounds a whole raw exchange: connect, write, read.
const RawTimeout = 3 * time.Second

// RawHost is the Host header of raw requests: what clients of IMDS send.
const RawHost = "169.254.169.254"

// RawResponse is what came back for a raw request.
type RawResponse struct {
	StatusLine string // e.g. "HTTP/1.1 403 Forbidden"
	Status     int
	Header     http.Header
	Body       []byte
}

// RawRequest sends, over a fresh TCP connection to addr, exactly
//
//	METHOD TARGET HTTP/1.1\r\nHost: 169.254.169.254\r\n HEADERS \r\n
//
// with each of headers ("Name: value") on its own line, byte for byte (no
// cleaning of the target, the method or the header names), and reads one
// response. Everything happens within RawTimeout.
func RawRequest(addr, method, target string, headers []string) (*RawResponse, error) {
	conn, err := net.DialTimeout("tcp", addr, RawTimeout)
	if err != nil {
		return nil, fmt.Errorf("raw %s %s: dial %s: %w", method, target, addr, err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(RawTimeout)); err != nil {
		return nil, fmt.Errorf("raw %s %s: set deadline: %w", method, target, err)
	}
	if _, err := io.WriteString(conn, rawBytes(method, target, headers)); err != nil {
		return nil, fmt.Errorf("raw %s %s: write: %w", method, target, err)
	}
	return readRaw(bufio.NewReader(conn), method, target)
}

func rawBytes(method, target string, headers []string) string {
	var b strings.Builder
	b.WriteString(method + " " + target + " HTTP/1.1\r\nHost: " + RawHost + "\r\n")
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

func readRaw(br *bufio.Reader, method, target string) (*RawResponse, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		return nil, fmt.Errorf("raw %s %s: read status line (got %q): %w", method, target, line, err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(io.MultiReader(strings.NewReader(line), br)),
		&http.Request{Method: strings.ToUpper(method)})
	if err != nil {
		return nil, fmt.Errorf("raw %s %s: parse response %q: %w", method, target, line, err)
	}
	defer resp.Body.Close()
	r := &RawResponse{StatusLine: strings.TrimRight(line, "\r\n"), Status: resp.StatusCode, Header: resp.Header}
	r.Body, err = io.ReadAll(resp.Body)
	if err != nil {
		return r, fmt.Errorf("raw %s %s: read body after %q: %w", method, target, r.StatusLine, err)
	}
	return r, nil
}

// Raw is RawRequest that fails the test on error.
func Raw(t TB, addr, method, target string, headers []string) *RawResponse {
	t.Helper()
	r, err := RawRequest(addr, method, target, headers)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// RawRequestIn is RawRequest from inside network namespace ns ("" = this
// one): the socket is made there, so 169.254.169.254 means that namespace's
// address or redirect.
func RawRequestIn(ns, addr, method, target string, headers []string) (*RawResponse, error) {
	if ns == "" {
		return RawRequest(addr, method, target, headers)
	}
	var r *RawResponse
	err := netnstest.Do(ns, func() error {
		var err error
		r, err = RawRequest(addr, method, target, headers)
		return err
	})
	return r, err
}
