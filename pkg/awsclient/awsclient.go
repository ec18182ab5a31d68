// Package awsclient builds the AWS SDK configuration and clients once per process, the same way
// in Lambda, in the operator tools and in tests: the standard credential chain and region,
// endpoints from AWS_ENDPOINT_URL_<SERVICE> (how the local stack is reached), and a retryer chosen
// on purpose rather than left to defaults.
package awsclient

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3control"
)

// Retry policy for every SDK call: capped exponential backoff with full jitter (the standard
// retryer's algorithm), a few more attempts than the default because throttling on a busy bucket
// or table is the common transient fault, and a cap that keeps one call well inside a Lambda
// timeout.
const (
	MaxAttempts = 5
	MaxBackoff  = 4 * time.Second
)

// Load reads the shared configuration. Options are applied after the defaults.
func Load(ctx context.Context, opts ...func(*config.LoadOptions) error) (aws.Config, error) {
	base := []func(*config.LoadOptions) error{
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = MaxAttempts
				o.MaxBackoff = MaxBackoff
			})
		}),
	}
	cfg, err := config.LoadDefaultConfig(ctx, append(base, opts...)...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS config: %w", err)
	}
	if cfg.Region == "" {
		return aws.Config{}, fmt.Errorf("load AWS config: no region: set AWS_REGION")
	}
	return cfg, nil
}

// S3 returns an S3 client. With a custom S3 endpoint (MinIO), addressing is path-style.
func S3(cfg aws.Config, opts ...func(*s3.Options)) *s3.Client {
	custom := os.Getenv("AWS_ENDPOINT_URL_S3") != ""
	return s3.NewFromConfig(cfg, append([]func(*s3.Options){func(o *s3.Options) { o.UsePathStyle = custom }}, opts...)...)
}

// S3Control returns an S3 Control client (S3 Batch Operations jobs).
func S3Control(cfg aws.Config, opts ...func(*s3control.Options)) *s3control.Client {
	return s3control.NewFromConfig(cfg, opts...)
}

// DynamoDB returns a DynamoDB client.
func DynamoDB(cfg aws.Config, opts ...func(*dynamodb.Options)) *dynamodb.Client {
	return dynamodb.NewFromConfig(cfg, opts...)
}

// EventBridge returns an EventBridge client (announcements).
func EventBridge(cfg aws.Config, opts ...func(*eventbridge.Options)) *eventbridge.Client {
	return eventbridge.NewFromConfig(cfg, opts...)
}

// CloudFront returns a CloudFront client (invalidations).
func CloudFront(cfg aws.Config, opts ...func(*cloudfront.Options)) *cloudfront.Client {
	return cloudfront.NewFromConfig(cfg, opts...)
}
