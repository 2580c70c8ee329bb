package testbed

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/imdsguard/imdsguard/internal/netnstest"
)

// nsDials is how many dials of one DialerIn switch namespaces at a time:
// each holds a locked OS thread until it connects, so thousands of clients
// must not dial at once.
const nsDials = 8

// DialFunc is the DialContext of an http.Transport.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// DialerIn returns a DialFunc whose sockets are made inside network
// namespace ns ("" = this one), with timeout for each connect. Dials of one
// DialerIn queue behind each other beyond a few at a time; give clients
// that must not wait behind a crowd a DialerIn of their own.
func DialerIn(ns string, timeout time.Duration) DialFunc {
	d := &net.Dialer{Timeout: timeout}
	if ns == "" {
		return d.DialContext
	}
	sem := make(chan struct{}, nsDials)
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		defer func() { <-sem }()
		var c net.Conn
		err := netnstest.Do(ns, func() error {
			var err error
			c, err = d.DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
}

// KeepAliveTransport is a transport with at most one connection, kept
// alive, made by dial: one client of a load test.
func KeepAliveTransport(dial DialFunc) *http.Transport {
	return &http.Transport{
		DialContext:         dial,
		MaxConnsPerHost:     1,
		MaxIdleConnsPerHost: 1,
		IdleConnTimeout:     2 * time.Minute,
		DisableCompression:  true,
		Proxy:               nil,
	}
}
