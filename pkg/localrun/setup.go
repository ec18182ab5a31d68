package localrun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/sluice-dev/sluice/pkg/processor"
	"github.com/sluice-dev/sluice/pkg/state"
)

// FunctionEnv reads one function's variables from a `sam local invoke --env-vars` file
// (testdata/env.json) and returns a getenv for processor.LoadConfig: the file's values, except
// AWS_* variables, which come from this process (the local stack's endpoints and keys; the file
// holds the ones a Docker container needs).
func FunctionEnv(path, logicalID string) (func(string) string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var file map[string]map[string]string
	if err := json.Unmarshal(b, &file); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	vars, ok := file[logicalID]
	if !ok {
		return nil, fmt.Errorf("%s has no %q section", path, logicalID)
	}
	return func(k string) string {
		if strings.HasPrefix(k, "AWS_") {
			return os.Getenv(k)
		}
		return vars[k]
	}, nil
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
	if err != nil && !errors.As(err, &inUse) {
		return fmt.Errorf("create table %s: %w", cfg.StateTable, err)
	}
	return nil
}
