// Package batchjob runs a backfill on S3 Batch Operations, AWS's engine for jobs over billions of
// objects: it creates an "Invoke AWS Lambda function" job on the processor (the handler answers
// each task; see processor.Handle), from a CSV manifest already in S3 or from a manifest the
// service generates by listing a prefix, follows the job, and reads its completion report into
// the counts a local backfill prints. S3 Batch Operations has no local server: the tests drive
// this package against a protocol-level fake of S3 Control (testenv.S3Control).
package batchjob

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3control"
	"github.com/aws/aws-sdk-go-v2/service/s3control/types"

	"github.com/sluice-dev/sluice/pkg/ops"
)

// controlAPI is the part of S3 Control a backfill job needs.
type controlAPI interface {
	CreateJob(ctx context.Context, in *s3control.CreateJobInput, optFns ...func(*s3control.Options)) (*s3control.CreateJobOutput, error)
	DescribeJob(ctx context.Context, in *s3control.DescribeJobInput, optFns ...func(*s3control.Options)) (*s3control.DescribeJobOutput, error)
}

// opener streams an object (storage.Store does).
type opener interface {
	Open(ctx context.Context, bucket, key string) (io.ReadCloser, error)
}

// Spec says what a backfill job processes and how.
type Spec struct {
	AccountID   string
	RoleARN     string // the template's BatchOperationsRole
	FunctionARN string // the processor
	// The objects: a CSV manifest in S3 (bucket,key per line, keys URL-encoded) or an S3
	// Inventory report's manifest.json (CSV format), with its ETag; or, when ManifestKey is empty, every object under Prefix of Bucket created in [From, To) (zero:
	// unbounded), listed by the service into a manifest under batch-manifests/ of ReportBucket.
	ManifestBucket, ManifestKey, ManifestETag string
	Bucket, Prefix                            string
	From, To                                  time.Time
	// The completion report goes to ReportBucket under ReportPrefix.
	ReportBucket, ReportPrefix string
	// Token makes the creation idempotent: the same token creates one job.
	Token string
}

// Create creates the job and returns its id.
func Create(ctx context.Context, api controlAPI, s Spec) (string, error) {
	in := &s3control.CreateJobInput{
		AccountId: aws.String(s.AccountID), RoleArn: aws.String(s.RoleARN), ClientRequestToken: aws.String(s.Token),
		ConfirmationRequired: aws.Bool(false), Priority: aws.Int32(10),
		Description: aws.String("sluice backfill"),
		Operation: &types.JobOperation{LambdaInvoke: &types.LambdaInvokeOperation{
			FunctionArn: aws.String(s.FunctionARN), InvocationSchemaVersion: aws.String("2.0"),
		}},
		Report: &types.JobReport{
			Enabled: true, Bucket: aws.String(bucketARN(s.ReportBucket)), Prefix: aws.String(strings.TrimSuffix(s.ReportPrefix, "/")),
			Format: types.JobReportFormatReportCsv20180820, ReportScope: types.JobReportScopeAllTasks,
		},
	}
	if s.ManifestKey != "" {
		spec := &types.JobManifestSpec{Format: types.JobManifestFormatS3BatchOperationsCsv20180820, Fields: []types.JobManifestFieldName{types.JobManifestFieldNameBucket, types.JobManifestFieldNameKey}}
		if strings.HasSuffix(s.ManifestKey, "manifest.json") { // an S3 Inventory report
			spec = &types.JobManifestSpec{Format: types.JobManifestFormatS3InventoryReportCsv20161130}
		}
		in.Manifest = &types.JobManifest{
			Spec:     spec,
			Location: &types.JobManifestLocation{ObjectArn: aws.String(bucketARN(s.ManifestBucket) + "/" + s.ManifestKey), ETag: aws.String(s.ManifestETag)},
		}
	} else {
		filter := &types.JobManifestGeneratorFilter{KeyNameConstraint: &types.KeyNameConstraint{MatchAnyPrefix: []string{s.Prefix}}}
		if !s.From.IsZero() {
			filter.CreatedAfter = aws.Time(s.From)
		}
		if !s.To.IsZero() {
			filter.CreatedBefore = aws.Time(s.To)
		}
		in.ManifestGenerator = &types.JobManifestGeneratorMemberS3JobManifestGenerator{Value: types.S3JobManifestGenerator{
			SourceBucket: aws.String(bucketARN(s.Bucket)), EnableManifestOutput: true, Filter: filter,
			ManifestOutputLocation: &types.S3ManifestOutputLocation{
				Bucket: aws.String(bucketARN(s.ReportBucket)), ManifestPrefix: aws.String("batch-manifests"),
				ManifestFormat: types.GeneratedManifestFormatS3InventoryReportCsv20211130,
			},
		}}
	}
	out, err := api.CreateJob(ctx, in)
	if err != nil {
		return "", fmt.Errorf("create the batch job: %w", err)
	}
	return aws.ToString(out.JobId), nil
}

func bucketARN(bucket string) string { return "arn:aws:s3:::" + bucket }

// Status is where a job stands.
type Status struct {
	ID, State                  string // State: the service's (Active, Complete, Failed, ...)
	Total, Succeeded, Failed   int64
	ReportBucket, ReportPrefix string
	Reasons                    []string // why it failed, if it did
}

// Ended reports whether the job will do no more: its report, if any, is written.
func (s Status) Ended() bool {
	switch types.JobStatus(s.State) {
	case types.JobStatusComplete, types.JobStatusFailed, types.JobStatusCancelled:
		return true
	}
	return false
}

// Describe reads the job's status.
func Describe(ctx context.Context, api controlAPI, accountID, id string) (Status, error) {
	out, err := api.DescribeJob(ctx, &s3control.DescribeJobInput{AccountId: aws.String(accountID), JobId: aws.String(id)})
	if err != nil {
		return Status{}, fmt.Errorf("describe batch job %s: %w", id, err)
	}
	j := out.Job
	if j == nil {
		return Status{}, fmt.Errorf("describe batch job %s: no job in the answer", id)
	}
	st := Status{ID: aws.ToString(j.JobId), State: string(j.Status)}
	if p := j.ProgressSummary; p != nil {
		st.Total, st.Succeeded, st.Failed = aws.ToInt64(p.TotalNumberOfTasks), aws.ToInt64(p.NumberOfTasksSucceeded), aws.ToInt64(p.NumberOfTasksFailed)
	}
	if r := j.Report; r != nil {
		st.ReportBucket, st.ReportPrefix = strings.TrimPrefix(aws.ToString(r.Bucket), "arn:aws:s3:::"), aws.ToString(r.Prefix)
	}
	for _, f := range j.FailureReasons {
		st.Reasons = append(st.Reasons, aws.ToString(f.FailureCode)+": "+aws.ToString(f.FailureReason))
	}
	return st, nil
}

// Task is one line of a completion report.
type Task struct {
	Bucket, Key, VersionID string // Key as the manifest has it (URL-encoded)
	Status                 string // "succeeded" or "failed"
	ErrorCode, Result      string
}

// ReadReport streams the completion report of job id under prefix of bucket (format
// Report_CSV_20180820: job-<id>/manifest.json names CSV files of task lines) to each, a line at
// a time: a report of millions of tasks is never held.
func ReadReport(ctx context.Context, objects opener, bucket, prefix, id string, each func(Task) error) error {
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	var m struct {
		Format  string
		Results []struct{ Bucket, Key string }
	}
	if err := readJSON(ctx, objects, bucket, prefix+"job-"+id+"/manifest.json", &m); err != nil || m.Format != "Report_CSV_20180820" {
		return errors.Join(fmt.Errorf("completion report of job %s: not a Report_CSV_20180820 manifest", id), err)
	}
	for _, r := range m.Results {
		if err := readTasks(ctx, objects, r.Bucket, r.Key, each); err != nil {
			return fmt.Errorf("completion report of job %s: %w", id, err)
		}
	}
	return nil
}

func readJSON(ctx context.Context, objects opener, bucket, key string, v any) error {
	body, err := objects.Open(ctx, bucket, key)
	if err != nil {
		return err
	}
	defer body.Close()
	return json.NewDecoder(io.LimitReader(body, 1<<20)).Decode(v)
}

// readTasks streams one CSV file of task lines to each.
func readTasks(ctx context.Context, objects opener, bucket, key string, each func(Task) error) error {
	body, err := objects.Open(ctx, bucket, key)
	if err != nil {
		return err
	}
	defer body.Close()
	r := csv.NewReader(body)
	r.FieldsPerRecord = 7
	for {
		row, err := r.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		if err := each(Task{Bucket: row[0], Key: row[1], VersionID: row[2], Status: row[3], ErrorCode: row[4], Result: row[6]}); err != nil {
			return err
		}
	}
}

// objectGone is the processor's answer for a task whose object no longer exists.
const objectGone = "the object no longer exists"

// Count adds a report line to c as a local backfill counts what it did: published or removed is
// done; a duplicate (already done for this content and recipe) or an object gone is skipped;
// quarantined is quarantined; any other failure is failed.
func Count(c *ops.Counts, t Task) {
	c.Total++
	switch {
	case t.Status == "succeeded" && t.Result == "duplicate":
		c.Skipped++
	case t.Status == "succeeded" && strings.HasPrefix(t.Result, "quarantined:"):
		c.Quarantined++
	case t.Status == "succeeded":
		c.Done++
	case strings.Contains(t.Result, objectGone):
		c.Skipped++
	default:
		c.Failed++
	}
}
