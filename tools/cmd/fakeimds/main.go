// Command fakeimds serves a small, fast IMDSv2 upstream for load tests (see
// package fakeimds). It prints its counts as JSON on SIGTERM or SIGINT and
// answers them at GET /_fakeimds/stats.
//
//	fakeimds -listen 127.0.0.1:8990 [-record requests.jsonl]
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
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, *listen, *record); err != nil {
		fmt.Fprintln(os.Stderr, "fakeimds:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, listen, record string) error {
	var rec io.Writer
	if record != "" {
		f, err := os.OpenFile(record, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("open record file: %w", err)
		}
		defer f.Close()
		rec = f
	}
	s, err := fakeimds.New(rec)
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
