package sts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/imdsguard/imdsguard/internal/upstream"
)

// Fetcher reads IMDS paths: the daemon's metadata cache in front of its
// upstream client (never the redirect, never a caller's request).
type Fetcher interface {
	Fetch(ctx context.Context, method, path string) (*http.Response, error)
}

// Paths of the node's own facts.
const (
	nodeRolesPath  = "/latest/meta-data/iam/security-credentials/"
	nodeRegionPath = "/latest/meta-data/placement/region"
)

// NodeCredentials are the node role's credentials, as IMDS gives them to
// imdsguard itself: they sign every AssumeRole.
type NodeCredentials struct{ IMDS Fetcher }

// Retrieve implements aws.CredentialsProvider.
func (n NodeCredentials) Retrieve(ctx context.Context) (aws.Credentials, error) {
	list, err := get(ctx, n.IMDS, nodeRolesPath)
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("node role: %w", err)
	}
	name, _, _ := strings.Cut(strings.TrimSpace(list), "\n")
	if name == "" {
		return aws.Credentials{}, errors.New("node role: the instance has no instance profile (IMDS lists no role)")
	}
	body, err := get(ctx, n.IMDS, nodeRolesPath+name)
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("node role %s: %w", name, err)
	}
	var c struct {
		Code, AccessKeyId, SecretAccessKey, Token string
		Expiration                                time.Time
	}
	if err := json.Unmarshal([]byte(body), &c); err != nil {
		return aws.Credentials{}, fmt.Errorf("node role %s: credentials: %w", name, err)
	}
	if c.Code != "Success" || c.AccessKeyId == "" {
		return aws.Credentials{}, fmt.Errorf("node role %s: IMDS says %q", name, c.Code)
	}
	return aws.Credentials{AccessKeyID: c.AccessKeyId, SecretAccessKey: c.SecretAccessKey, SessionToken: c.Token,
		CanExpire: true, Expires: c.Expiration, Source: "imdsguard: node role " + name}, nil
}

// NodeRegion returns the region STS is asked in: AWS_REGION from the
// daemon's environment when set, as the SDKs read it, else the instance's
// (placement/region).
func NodeRegion(imds Fetcher) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		if r := os.Getenv("AWS_REGION"); r != "" {
			return r, nil
		}
		r, err := get(ctx, imds, nodeRegionPath)
		if err != nil {
			return "", fmt.Errorf("placement/region: %w", err)
		}
		if r = strings.TrimSpace(r); r == "" {
			return "", errors.New("placement/region: empty")
		}
		return r, nil
	}
}

// get reads one IMDS path; anything but 200 is an error.
func get(ctx context.Context, f Fetcher, path string) (string, error) {
	resp, err := f.Fetch(ctx, http.MethodGet, path)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("IMDS answered %d for %s", resp.StatusCode, path)
	}
	return string(body), nil
}

// HTTP client bounds for STS.
const (
	stsDialTimeout   = 5 * time.Second
	stsHeaderTimeout = 10 * time.Second
)

// NewHTTPClient is the STS client's HTTP client: its sockets carry the
// daemon's firewall mark (0 for none), as upstream sockets do, so that no
// redirect rule of this host (or of a test host) catches them; HTTPS
// proxies from the environment are honoured, as the SDKs do.
func NewHTTPClient(mark uint32) *http.Client {
	tr := &http.Transport{
		DialContext:           upstream.Dialer(mark, stsDialTimeout).DialContext,
		Proxy:                 http.ProxyFromEnvironment,
		TLSHandshakeTimeout:   stsDialTimeout,
		ResponseHeaderTimeout: stsHeaderTimeout,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   4,
		ForceAttemptHTTP2:     true,
	}
	return &http.Client{Transport: tr}
}
