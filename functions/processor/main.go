// Command processor is the Lambda that turns staged images into verified renditions.
// Configuration: see pkg/processor.LoadConfig and README.md.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/sluice-dev/sluice/pkg/awsclient"
	"github.com/sluice-dev/sluice/pkg/metrics"
	"github.com/sluice-dev/sluice/pkg/processor"
	"github.com/sluice-dev/sluice/pkg/tracing"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "processor:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx := context.Background()
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	cfg, err := processor.FromEnv()
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	tcfg, err := tracing.LoadConfig(os.Getenv)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	aws, err := awsclient.Load(ctx)
	if err != nil {
		return err
	}
	p, err := processor.Build(ctx, cfg, awsclient.S3(aws), awsclient.DynamoDB(aws), log, metrics.New(os.Stdout, "processor"))
	if err != nil {
		return err
	}
	// Every output names its recipe's version: the recipe is stored by it before any is made.
	if err := p.StoreRecipes(ctx); err != nil {
		return err
	}
	if cfg.QueueURL != "" {
		p.WithQueue(sqs.NewFromConfig(aws))
	}
	p.WithDownstream(aws)
	traces := tracing.Start(tcfg, aws.Credentials)
	p.WithTracer(traces.Tracer())
	lambda.Start(traces.Flushing(p.Handle, func(err error) { log.Warn("spans not exported", "err", err) }))
	return nil
}
