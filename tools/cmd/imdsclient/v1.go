package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go/aws"
	"github.com/aws/aws-sdk-go/aws/credentials/ec2rolecreds"
	"github.com/aws/aws-sdk-go/aws/ec2metadata"
	"github.com/aws/aws-sdk-go/aws/request"
	"github.com/aws/aws-sdk-go/aws/session"
)

// v1 is aws-sdk-go v1.25.0's ec2metadata client, which predates IMDSv2.
type v1 struct {
	md     *ec2metadata.EC2Metadata
	status int // HTTP status of the last response, for error messages
}

// newV1 builds the client the way applications do, from a session. The
// SDK's own endpoint includes the API version ("169.254.169.254/latest") and
// operations append "/meta-data/...", so a custom endpoint gets "/latest" too.
func newV1(endpoint string) (*v1, error) {
	cfg := aws.NewConfig()
	if endpoint != "" {
		cfg = cfg.WithEndpoint(strings.TrimSuffix(endpoint, "/") + "/latest")
	}
	sess, err := session.NewSession(cfg)
	if err != nil {
		return nil, fmt.Errorf("new SDK v1 session: %w", err)
	}
	c := &v1{md: ec2metadata.New(sess)}
	// v1.25.0's errors drop the status code; keep it so callers can see a 401.
	c.md.Handlers.Complete.PushBack(func(r *request.Request) {
		if r.HTTPResponse != nil {
			c.status = r.HTTPResponse.StatusCode
		}
	})
	return c, nil
}

func (c *v1) get(_ context.Context, path string) (string, error) {
	out, err := c.md.GetMetadata(path)
	if err != nil {
		return "", fmt.Errorf("SDK v1 GetMetadata %s (HTTP %d): %w", path, c.status, err)
	}
	return out, nil
}

func (c *v1) accessKeyID(context.Context) (string, error) {
	v, err := ec2rolecreds.NewCredentialsWithClient(c.md).Get()
	if err != nil {
		return "", fmt.Errorf("SDK v1 EC2 role credentials (HTTP %d): %w", c.status, err)
	}
	return v.AccessKeyID + "\n", nil
}
