// Command imdsclient asks the instance metadata service through the real AWS
// SDK for Go clients, so tests can show what unmodified applications see:
//
//	-sdk v1  github.com/aws/aws-sdk-go v1.25.0 aws/ec2metadata: a legacy,
//	         IMDSv1-only client (plain GETs, no token)
//	-sdk v2  aws-sdk-go-v2 feature/ec2/imds (token PUT, then GETs)
//
// -get PATH prints the body of meta-data/PATH; -creds fetches the role's
// credentials through the SDK's EC2 role credential provider and prints the
// AccessKeyId. -endpoint is the base URL (http://127.0.0.1:8989); empty means
// the SDK's default, 169.254.169.254 (v2 also honours
// AWS_EC2_METADATA_SERVICE_ENDPOINT then). Exit status 0 on success; on
// failure the SDK's error goes to stderr. Everything gives up after -timeout.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"
)

// query is what the flags ask for.
type query struct {
	endpoint   string
	path       string // metadata path below meta-data/ for -get
	creds      bool
	noFallback bool // v2: fail instead of falling back to IMDSv1
}

// client is one SDK generation.
type client interface {
	get(ctx context.Context, path string) (string, error)
	accessKeyID(ctx context.Context) (string, error)
}

func main() {
	sdk := flag.String("sdk", "v2", "SDK generation: v1 (aws-sdk-go v1.25.0) or v2 (aws-sdk-go-v2)")
	var req query
	flag.StringVar(&req.endpoint, "endpoint", "", "IMDS base URL; empty: the SDK default (169.254.169.254)")
	flag.StringVar(&req.path, "get", "", "print this metadata path (below meta-data/)")
	flag.BoolVar(&req.creds, "creds", false, "print the role credentials' AccessKeyId")
	flag.BoolVar(&req.noFallback, "no-fallback", false, "v2: do not fall back to IMDSv1 when the token PUT fails")
	timeout := flag.Duration("timeout", 3*time.Second, "overall time limit")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	out, err := run(ctx, *sdk, req)
	if err != nil {
		fmt.Fprintln(os.Stderr, "imdsclient:", err)
		os.Exit(1)
	}
	fmt.Print(out)
}

func run(ctx context.Context, sdk string, req query) (string, error) {
	if (req.path == "") == !req.creds {
		return "", errors.New("give exactly one of -get PATH and -creds")
	}
	c, err := newClient(sdk, req)
	if err != nil {
		return "", err
	}
	if req.creds {
		return withDeadline(ctx, c.accessKeyID)
	}
	return withDeadline(ctx, func(ctx context.Context) (string, error) { return c.get(ctx, req.path) })
}

func newClient(sdk string, req query) (client, error) {
	switch sdk {
	case "v1":
		return newV1(req.endpoint)
	case "v2":
		return newV2(req.endpoint, req.noFallback), nil
	}
	return nil, fmt.Errorf("unknown -sdk %q: want v1 or v2", sdk)
}

// withDeadline runs f and gives up when ctx ends, also for SDK v1 calls that
// take no context (the process exits right after, so the goroutine goes too).
func withDeadline(ctx context.Context, f func(context.Context) (string, error)) (string, error) {
	type result struct {
		out string
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := f(ctx)
		done <- result{out, err}
	}()
	select {
	case r := <-done:
		return r.out, r.err
	case <-ctx.Done():
		return "", fmt.Errorf("gave up: %w", ctx.Err())
	}
}
