package testbed

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"time"
)

// RawRequestOn is RawRequest on a connection the caller made (and closes):
// for a socket opened under one identity and used under another.
func RawRequestOn(conn net.Conn, method, target string, headers []string) (*RawResponse, error) {
	if err := conn.SetDeadline(time.Now().Add(RawTimeout)); err != nil {
		return nil, fmt.Errorf("raw %s %s: set deadline: %w", method, target, err)
	}
	if _, err := io.WriteString(conn, rawBytes(method, target, headers)); err != nil {
		return nil, fmt.Errorf("raw %s %s: write: %w", method, target, err)
	}
	return readRaw(bufio.NewReader(conn), method, target)
}
