// Command reconciler is the scheduled Lambda that finds and repairs inconsistencies between the
// staging bucket, the state table and the outputs. Configuration: see pkg/reconciler.LoadConfig.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/sluice-dev/sluice/pkg/awsclient"
	"github.com/sluice-dev/sluice/pkg/metrics"
	"github.com/sluice-dev/sluice/pkg/ops"
	"github.com/sluice-dev/sluice/pkg/processor"
	"github.com/sluice-dev/sluice/pkg/reconciler"
	"github.com/sluice-dev/sluice/pkg/state"
	"github.com/sluice-dev/sluice/pkg/storage"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "reconciler:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx := context.Background()
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	cfg, err := reconciler.FromEnv()
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	aws, err := awsclient.Load(ctx)
	if err != nil {
		return err
	}
	s3c, ddb := awsclient.S3(aws), awsclient.DynamoDB(aws)
	m := metrics.New(os.Stdout, "reconciler")
	p, err := processor.Build(ctx, cfg.Processor, s3c, ddb, log, metrics.New(os.Stdout, "processor"))
	if err != nil {
		return err
	}
	// Its fixes are announced, and an unannounced outcome is fixed by a delivery that announces it.
	p.WithDownstream(aws)
	states := state.New(ddb, cfg.Processor.StateTable, cfg.Processor.StateTTL)
	o := ops.New(cfg.Processor, storage.New(s3c), states, p)
	lambda.Start(reconciler.New(cfg, o, states, log, m).Handle)
	return nil
}
