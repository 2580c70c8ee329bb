// Command fakests serves a fake AWS STS (see package fakests) for tests
// that run it as a process, in a network namespace of their own making: the
// STS endpoint at the base URL, the control API under /_fakests/. It
// accepts requests signed with the node credentials of the tests' IMDS
// stand-ins unless -key says otherwise; on SIGTERM or SIGINT it prints every
// call it received as JSON lines.
//
//	fakests -listen 127.0.0.1:8991 [-key AKID,SECRET[,TOKEN]]...
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/imdsguard/imdsguard/tools/fakests"
	"github.com/imdsguard/imdsguard/tools/httpserve"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8991", "address to serve on")
	var keys keyFlag
	flag.Var(&keys, "key", "accept requests signed with AKID,SECRET[,TOKEN] (repeatable; default: the IMDS stand-ins' node credentials)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, *listen, keys); err != nil {
		fmt.Fprintln(os.Stderr, "fakests:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, listen string, keys []fakests.Key) error {
	s := fakests.New(fakests.Options{Keys: keys})
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", listen, err)
	}
	if err := httpserve.Serve(ctx, ln, s); err != nil {
		return err
	}
	enc := json.NewEncoder(os.Stdout)
	for _, c := range s.Calls() {
		if err := enc.Encode(c); err != nil {
			return fmt.Errorf("print calls: %w", err)
		}
	}
	return nil
}

// keyFlag is the repeatable -key: AKID,SECRET[,TOKEN].
type keyFlag []fakests.Key

func (k *keyFlag) String() string { return fmt.Sprint(len(*k), " keys") }

func (k *keyFlag) Set(v string) error {
	parts := strings.Split(v, ",")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return fmt.Errorf("want AKID,SECRET[,TOKEN], got %q", v)
	}
	key := fakests.Key{AccessKeyID: parts[0], SecretAccessKey: parts[1]}
	if len(parts) == 3 {
		key.SessionToken = parts[2]
	}
	*k = append(*k, key)
	return nil
}
