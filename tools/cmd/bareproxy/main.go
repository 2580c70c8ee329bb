// Command bareproxy is the baseline for benchmarks: a plain
// httputil.ReverseProxy from -listen to -upstream and nothing else, so the
// cost a hardening proxy adds can be read as a ratio to it. Its transport
// keeps enough idle upstream connections that the baseline does not measure
// connection churn (-max-idle-per-host).
//
//	bareproxy -listen 127.0.0.1:8991 -upstream http://127.0.0.1:8990
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8991", "address to serve on")
	upstream := flag.String("upstream", "", "upstream base URL, e.g. http://127.0.0.1:8990")
	idle := flag.Int("max-idle-per-host", 256, "idle upstream connections kept")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, *listen, *upstream, *idle); err != nil {
		fmt.Fprintln(os.Stderr, "bareproxy:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, listen, upstream string, idle int) error {
	u, err := url.Parse(upstream)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return fmt.Errorf("parse -upstream %q: want an absolute URL (%v)", upstream, err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = idle
	rp.Transport = tr
	srv := &http.Server{Addr: listen, Handler: rp, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", listen, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shut down: %w", err)
	}
	return nil
}
