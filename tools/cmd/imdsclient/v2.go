package main

import (
	"context"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
)

// v2 is aws-sdk-go-v2's feature/ec2/imds client: token PUT, then GETs.
type v2 struct {
	md *imds.Client
}

// newV2 builds the client; an empty endpoint leaves the SDK to choose
// (AWS_EC2_METADATA_SERVICE_ENDPOINT, else http://169.254.169.254). Its
// operations add "/latest/...", so the endpoint is the bare base URL.
func newV2(endpoint string, noFallback bool) *v2 {
	opts := imds.Options{Endpoint: endpoint}
	if noFallback {
		opts.EnableFallback = aws.FalseTernary
	}
	return &v2{md: imds.New(opts)}
}

func (c *v2) get(ctx context.Context, path string) (string, error) {
	out, err := c.md.GetMetadata(ctx, &imds.GetMetadataInput{Path: path})
	if err != nil {
		return "", fmt.Errorf("SDK v2 GetMetadata %s: %w", path, err)
	}
	defer out.Content.Close()
	b, err := io.ReadAll(out.Content)
	if err != nil {
		return "", fmt.Errorf("SDK v2 read %s: %w", path, err)
	}
	return string(b), nil
}

func (c *v2) accessKeyID(ctx context.Context) (string, error) {
	p := ec2rolecreds.New(func(o *ec2rolecreds.Options) { o.Client = c.md })
	v, err := p.Retrieve(ctx)
	if err != nil {
		return "", fmt.Errorf("SDK v2 EC2 role credentials: %w", err)
	}
	return v.AccessKeyID + "\n", nil
}
