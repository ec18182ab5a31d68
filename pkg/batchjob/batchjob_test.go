package batchjob

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3control"
	"github.com/aws/aws-sdk-go-v2/service/s3control/types"

	"github.com/sluice-dev/sluice/pkg/ops"
)

// A completion report's lines count as a local backfill counts its work.
func TestCountMapsTheProcessorsAnswers(t *testing.T) {
	var c ops.Counts
	for _, task := range []Task{
		{Status: "succeeded", Result: "renditions/uploads/a.jpg/manifest.json"},
		{Status: "succeeded", Result: "removed"},
		{Status: "succeeded", Result: "duplicate"},
		{Status: "succeeded", Result: "quarantined:corrupt"},
		{Status: "failed", ErrorCode: "PermanentFailure", Result: "the object no longer exists"},
		{Status: "failed", ErrorCode: "TemporaryFailure", Result: "busy"},
	} {
		Count(&c, task)
	}
	if want := (ops.Counts{Total: 6, Done: 2, Skipped: 2, Quarantined: 1, Failed: 1}); c != want {
		t.Errorf("counts %+v, want %+v", c, want)
	}
}

// createOnly records the CreateJob request (S3 Control has no local server; the CLI's
// integration test drives the real client against testenv.S3Control).
type createOnly struct{ in *s3control.CreateJobInput }

func (c *createOnly) CreateJob(_ context.Context, in *s3control.CreateJobInput, _ ...func(*s3control.Options)) (*s3control.CreateJobOutput, error) {
	c.in = in
	return &s3control.CreateJobOutput{JobId: aws.String("j")}, nil
}

func (c *createOnly) DescribeJob(context.Context, *s3control.DescribeJobInput, ...func(*s3control.Options)) (*s3control.DescribeJobOutput, error) {
	return nil, nil
}

// A named manifest is used as it is; without one the service lists the prefix, filtered by the
// creation dates.
func TestCreateUsesTheManifestOrGeneratesOne(t *testing.T) {
	api := &createOnly{}
	base := Spec{AccountID: "1", RoleARN: "role", FunctionARN: "fn", ReportBucket: "out", ReportPrefix: "batch-reports/", Token: "t"}
	named := base
	named.ManifestBucket, named.ManifestKey, named.ManifestETag = "out", "batch-manifests/m.csv", "etag"
	if _, err := Create(context.Background(), api, named); err != nil {
		t.Fatal(err)
	}
	if m := api.in.Manifest; m == nil || aws.ToString(m.Location.ObjectArn) != "arn:aws:s3:::out/batch-manifests/m.csv" || api.in.ManifestGenerator != nil {
		t.Errorf("named manifest: %+v / %+v", api.in.Manifest, api.in.ManifestGenerator)
	}
	listed := base
	listed.Bucket, listed.Prefix, listed.From = "staging", "uploads/", time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := Create(context.Background(), api, listed); err != nil {
		t.Fatal(err)
	}
	g, ok := api.in.ManifestGenerator.(*types.JobManifestGeneratorMemberS3JobManifestGenerator)
	if !ok || api.in.Manifest != nil || aws.ToString(g.Value.SourceBucket) != "arn:aws:s3:::staging" ||
		g.Value.Filter.KeyNameConstraint.MatchAnyPrefix[0] != "uploads/" || !aws.ToTime(g.Value.Filter.CreatedAfter).Equal(listed.From) || g.Value.Filter.CreatedBefore != nil {
		t.Errorf("generated manifest: %+v", api.in.ManifestGenerator)
	}
	if aws.ToString(api.in.Report.Prefix) != "batch-reports" || aws.ToString(api.in.Operation.LambdaInvoke.InvocationSchemaVersion) != "2.0" {
		t.Errorf("report %+v, operation %+v", api.in.Report, api.in.Operation.LambdaInvoke)
	}
}
