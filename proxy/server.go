package proxy

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"
)

// Limits on what a client may send or how slowly; the daemon keeps serving
// everyone else.
const (
	MaxHeaderBytes    = 8 << 10
	ReadHeaderTimeout = 5 * time.Second
	IdleTimeout       = 60 * time.Second
	ShutdownTimeout   = 5 * time.Second
)

// Serve serves p with net/http's server on the listeners (Admit's, in the
// daemon) until ctx ends, then shuts down gracefully: requests in flight
// finish, idle connections close, a withheld token answer ends at once.
func Serve(ctx context.Context, p *Proxy, lns []net.Listener) error {
	srv := &http.Server{
		Handler:           p,
		ConnContext:       p.ConnContext,
		ReadHeaderTimeout: ReadHeaderTimeout,
		WriteTimeout:      dropHold + 5*time.Second,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          log.New(slogWriter{p.log}, "", 0),
	}
	srv.RegisterOnShutdown(p.stopWithholding)
	errc := make(chan error, len(lns))
	for _, ln := range lns {
		go func() { errc <- srv.Serve(ln) }()
	}
	select {
	case err := <-errc:
		srv.Close()
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	// Shutdown can find no connection and return while a Serve loop still
	// holds one it accepted just before its listener closed (net/http
	// tracks a connection only after ConnContext, the identity lookup): the
	// process would then exit under it, an empty reply. Once every loop has
	// returned, every accepted connection is tracked; wait for those too.
	for range lns {
		<-errc
	}
	if err == nil {
		err = srv.Shutdown(sctx)
	}
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// Listen opens a TCP listener on each address (host:port; IPv6 in brackets).
// An IPv6 address on a host without IPv6 is skipped with a warning.
func Listen(addrs []string, logger *slog.Logger) ([]net.Listener, error) {
	var lns []net.Listener
	for _, a := range addrs {
		ln, err := ListenOne(a, logger)
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return nil, err
		}
		if ln != nil {
			lns = append(lns, ln)
		}
	}
	return lns, nil
}

// ListenOne opens a TCP listener on addr; (nil, nil) for an IPv6 address
// on a host without IPv6 (logged).
func ListenOne(addr string, logger *slog.Logger) (net.Listener, error) {
	network := "tcp4"
	if strings.HasPrefix(addr, "[") {
		network = "tcp6"
	}
	ln, err := net.Listen(network, addr)
	if err != nil && network == "tcp6" && noIPv6(err) {
		logger.Warn("no IPv6 listener", "addr", addr, "err", err)
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return ln, nil
}

// slogWriter turns the log.Logger output of net/http and goproxy into
// debug-level slog records.
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(b []byte) (int, error) {
	w.l.Debug(strings.TrimSpace(string(b)), "component", "http")
	return len(b), nil
}
