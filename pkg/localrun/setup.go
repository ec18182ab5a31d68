package localrun

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/sluice-dev/sluice/pkg/metrics"
	"github.com/sluice-dev/sluice/pkg/processor"
	"github.com/sluice-dev/sluice/pkg/state"
)

// FunctionEnv reads one function's variables from a `sam local invoke --env-vars` file
// (testdata/env.json) and returns a getenv for processor.LoadConfig: the file's values, except
// AWS_* variables, which come from this process (the local stack's endpoints and keys; the file
// holds the ones a Docker container needs).
func FunctionEnv(path, logicalID string) (func(string) string, error) {
	vars, err := functionVars(path, logicalID)
	if err != nil {
		return nil, err
	}
	return func(k string) string {
		if strings.HasPrefix(k, "AWS_") {
			return os.Getenv(k)
		}
		return vars[k]
	}, nil
}

// prepare is what every local run starts with: the processor's configuration from
// testdata/env.json, the buckets and table it needs, and the processor itself, wired as a cold
// start wires it.
func prepare(ctx context.Context, s3c *s3.Client, ddb *dynamodb.Client, root string, log *slog.Logger, m *metrics.Emitter) (*processor.Processor, processor.Config, error) {
	getenv, err := FunctionEnv(filepath.Join(root, "testdata", "env.json"), "ProcessorFunction")
	if err != nil {
		return nil, processor.Config{}, err
	}
	cfg, err := processor.LoadConfig(getenv)
	if err != nil {
		return nil, processor.Config{}, fmt.Errorf("testdata/env.json: %w", err)
	}
	if err := Setup(ctx, s3c, ddb, cfg, StagingBucket); err != nil {
		return nil, processor.Config{}, err
	}
	proc, err := processor.Build(ctx, cfg, s3c, ddb, log, m)
	if err == nil {
		err = proc.StoreRecipes(ctx)
	}
	return proc, cfg, err
}

// Setup creates the staging, output and quarantine buckets and the state table when they are
// missing: what `sam deploy` creates in AWS.
func Setup(ctx context.Context, s3c *s3.Client, ddb *dynamodb.Client, cfg processor.Config, staging string) error {
	for _, b := range []string{staging, cfg.OutputBucket, cfg.QuarantineBucket} {
		_, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b)})
		var owned *s3types.BucketAlreadyOwnedByYou
		var exists *s3types.BucketAlreadyExists
		if err != nil && !errors.As(err, &owned) && !errors.As(err, &exists) {
			return fmt.Errorf("create bucket %s: %w", b, err)
		}
	}
	_, err := ddb.CreateTable(ctx, state.TableDefinition(cfg.StateTable))
	var inUse *ddbtypes.ResourceInUseException
	if errors.As(err, &inUse) {
		return addSourceIndex(ctx, ddb, cfg.StateTable)
	}
	if err != nil {
		return fmt.Errorf("create table %s: %w", cfg.StateTable, err)
	}
	return nil
}

// addSourceIndex gives a table made by an older sluice the index the reconciler walks, as a
// stack update does in AWS.
func addSourceIndex(ctx context.Context, ddb *dynamodb.Client, table string) error {
	out, err := ddb.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	if err != nil {
		return fmt.Errorf("describe table %s: %w", table, err)
	}
	for _, ix := range out.Table.GlobalSecondaryIndexes {
		if aws.ToString(ix.IndexName) == state.SourceIndex {
			return nil
		}
	}
	def := state.TableDefinition(table)
	gsi := def.GlobalSecondaryIndexes[0]
	_, err = ddb.UpdateTable(ctx, &dynamodb.UpdateTableInput{
		TableName: aws.String(table), AttributeDefinitions: def.AttributeDefinitions,
		GlobalSecondaryIndexUpdates: []ddbtypes.GlobalSecondaryIndexUpdate{{Create: &ddbtypes.CreateGlobalSecondaryIndexAction{
			IndexName: gsi.IndexName, KeySchema: gsi.KeySchema, Projection: gsi.Projection,
		}}},
	})
	if err != nil {
		return fmt.Errorf("add index %s to table %s: %w", state.SourceIndex, table, err)
	}
	return nil
}
