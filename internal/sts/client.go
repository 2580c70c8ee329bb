package sts

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awssts "github.com/aws/aws-sdk-go-v2/service/sts"
	ststypes "github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/aws/smithy-go"

	"github.com/imdsguard/imdsguard/internal/roles"
)

// ClientOptions configure a Client.
type ClientOptions struct {
	// Endpoint is the STS endpoint URL; "" is the region's (Endpoint
	// resolves the configuration and the environment).
	Endpoint string
	// Region returns the region to sign for and whose endpoint to use:
	// NodeRegion in the daemon. Asked until it answers once.
	Region func(ctx context.Context) (string, error)
	// Credentials sign every request: the node's (NodeCredentials).
	Credentials aws.CredentialsProvider
	// HTTPClient sends the requests: NewHTTPClient, with the daemon's
	// firewall mark.
	HTTPClient *http.Client
	// MaxAttempts is the SDK's attempts per call (its standard retryer);
	// default 1: the Broker backs off and retries itself, serving what it
	// holds meanwhile, and its token bucket then bounds every request
	// that reaches STS, retries included.
	MaxAttempts int
}

// Client is the Assumer of the AWS SDK for Go v2: STS AssumeRole over the
// awsquery protocol, SigV4-signed with the node's credentials.
type Client struct {
	o   ClientOptions
	mu  sync.Mutex
	sdk *awssts.Client // made at the first call, once the region is known
}

// NewClient returns a Client; it asks nothing until the first AssumeRole.
func NewClient(o ClientOptions) *Client {
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 1
	}
	if o.HTTPClient == nil {
		o.HTTPClient = NewHTTPClient(0)
	}
	return &Client{o: o}
}

// sdkClient returns the SDK client, made once the region is known.
func (c *Client) sdkClient(ctx context.Context) (*awssts.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sdk != nil {
		return c.sdk, nil
	}
	region, err := c.o.Region(ctx)
	if err != nil {
		return nil, &Error{Kind: Failed, Err: fmt.Errorf("the region to ask STS in: %w", err)}
	}
	opts := awssts.Options{
		Region:           region,
		Credentials:      aws.NewCredentialsCache(c.o.Credentials),
		HTTPClient:       c.o.HTTPClient,
		RetryMaxAttempts: c.o.MaxAttempts,
		AppID:            "imdsguard",
	}
	if c.o.Endpoint != "" {
		opts.BaseEndpoint = aws.String(c.o.Endpoint)
	}
	c.sdk = awssts.New(opts)
	return c.sdk, nil
}

// AssumeRole implements Assumer.
func (c *Client) AssumeRole(ctx context.Context, s roles.Session, duration time.Duration) (roles.Credentials, error) {
	sdk, err := c.sdkClient(ctx)
	if err != nil {
		return roles.Credentials{}, err
	}
	in := &awssts.AssumeRoleInput{
		RoleArn:         aws.String(s.RoleARN),
		RoleSessionName: aws.String(s.Name),
		DurationSeconds: aws.Int32(int32(duration / time.Second)),
	}
	if s.ExternalID != "" {
		in.ExternalId = aws.String(s.ExternalID)
	}
	for _, t := range s.Tags {
		in.Tags = append(in.Tags, ststypes.Tag{Key: aws.String(t.Key), Value: aws.String(t.Value)})
	}
	out, err := sdk.AssumeRole(ctx, in)
	if err != nil {
		return roles.Credentials{}, classify(err)
	}
	cr := out.Credentials
	if cr == nil || cr.AccessKeyId == nil || cr.SecretAccessKey == nil || cr.SessionToken == nil || cr.Expiration == nil {
		return roles.Credentials{}, &Error{Kind: ServerError, Err: errors.New("AssumeRole answered without credentials")}
	}
	return roles.Credentials{
		AccessKeyID:     *cr.AccessKeyId,
		SecretAccessKey: *cr.SecretAccessKey,
		SessionToken:    *cr.SessionToken,
		Expiration:      cr.Expiration.UTC(),
		LastUpdated:     time.Now().UTC(),
	}, nil
}

// classify turns an SDK error into an *Error of the Kind the broker acts on.
func classify(err error) error {
	var api smithy.APIError
	var resp *awshttp.ResponseError
	code, status := "", 0
	if errors.As(err, &api) {
		code = api.ErrorCode()
	}
	if errors.As(err, &resp) {
		status = resp.HTTPStatusCode()
	}
	kind := Failed
	switch {
	case throttleCodes[code] || status == http.StatusTooManyRequests:
		kind = Throttled
	case status >= 500:
		kind = ServerError
	case status >= 400:
		kind = Denied
	case code != "":
		kind = Denied // an error STS named, without a status: a refusal
	}
	return &Error{Kind: kind, Code: code, Err: err}
}

// throttleCodes are the error codes with which AWS says "slow down".
var throttleCodes = map[string]bool{
	"Throttling": true, "ThrottlingException": true, "ThrottledException": true,
	"RequestLimitExceeded": true, "RequestThrottled": true, "TooManyRequestsException": true,
	"SlowDown": true, "PriorRequestNotComplete": true,
}

// Endpoint is the STS endpoint to use: the configuration's
// (roles.sts_endpoint), else AWS_ENDPOINT_URL_STS, else AWS_ENDPOINT_URL,
// as the AWS SDKs read them; "" for the region's own. The environment is
// the daemon's: a test or a VPC endpoint sets it there.
func Endpoint(configured string) (string, error) {
	if configured != "" {
		return configured, nil
	}
	for _, name := range []string{"AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL"} {
		if v := os.Getenv(name); v != "" {
			if err := roles.CheckEndpoint(v); err != nil {
				return "", fmt.Errorf("%s: %w", name, err)
			}
			return v, nil
		}
	}
	return "", nil
}
