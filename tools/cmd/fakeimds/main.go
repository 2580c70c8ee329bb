// Command fakeimds serves a small, fast IMDSv2 upstream for load tests (see
// package fakeimds). It prints its counts as JSON on SIGTERM or SIGINT and
// answers them at GET /_fakeimds/stats.
//
//	fakeimds -listen 127.0.0.1:8990 [-record requests.jsonl]
//	         [-endpoint enabled|disabled|silent] [-tags] [-hop-limit N]
//
// The last three play the instance's metadata options: -endpoint disabled
// answers everything 403 (--http-endpoint disabled), silent never
// answers; -tags serves /latest/meta-data/tags/instance
// (--instance-metadata-tags enabled; without it those paths are 404);
// -hop-limit N sends token answers with IP TTL N
// (--http-put-response-hop-limit N).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/imdsguard/imdsguard/tools/fakeimds"
	"github.com/imdsguard/imdsguard/tools/httpserve"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8990", "address to serve on")
	record := flag.String("record", "", "append every request to this file as a JSON line")
	var o fakeimds.Options
	flag.StringVar(&o.Endpoint, "endpoint", fakeimds.EndpointEnabled, "http-endpoint: enabled, disabled (403 to everything) or silent (no answer)")
	flag.BoolVar(&o.Tags, "tags", false, "serve the instance's tags (instance-metadata-tags enabled)")
	flag.IntVar(&o.HopLimit, "hop-limit", 0, "IP TTL of token answers (http-put-response-hop-limit); 0: the system default")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, *listen, *record, o); err != nil {
		fmt.Fprintln(os.Stderr, "fakeimds:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, listen, record string, o fakeimds.Options) error {
	var rec io.Writer
	if record != "" {
		f, err := os.OpenFile(record, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("open record file: %w", err)
		}
		defer f.Close()
		rec = f
	}
	s, err := fakeimds.NewWithOptions(rec, o)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", listen, err)
	}
	if err := httpserve.Serve(ctx, ln, s); err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(s.Stats())
}
