package testenv

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/md5"
	"crypto/sha1"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// BatchJob is an S3 Batch Operations job of the "Invoke AWS Lambda function" operation, as
// RunBatchJob runs it. S3 Batch Operations has no local server on these machines.
type BatchJob struct {
	ID     string
	Schema string // the invocation schema: "1.0" or "2.0"
	// Manifest is a CSV manifest in S3: bucket,key[,versionId] per line, keys URL-encoded, as the
	// service reads it (duplicate lines are tasks of their own).
	ManifestBucket, ManifestKey string
	// ManifestFormat is the manifest's format as the job names it: S3InventoryReport_CSV_20161130
	// for an S3 Inventory report's manifest.json, else a CSV (S3BatchOperations_CSV_20180820).
	ManifestFormat string
	// The completion report goes under ReportBucket/ReportPrefix/job-<ID>/.
	ReportBucket, ReportPrefix string
	Concurrency                int // tasks in flight (default 8)
	MaxTries                   int // invocations per task before it fails (default 5)
	// Finished, if set, hears each task as it ends (the service's progress counters).
	Finished func(BatchTask)
}

// Invoker invokes the function with one event and returns its answer: in process, or through
// the Lambda Invoke API of the Runtime Interface Emulator.
type Invoker func(ctx context.Context, payload []byte) ([]byte, error)

// BatchTask is one task's outcome, a line of the completion report.
type BatchTask struct {
	Bucket, Key, VersionID string // Key as the manifest has it (URL-encoded)
	Status                 string // "succeeded" or "failed"
	ResultCode             string // Succeeded, TemporaryFailure (retries ran out), PermanentFailure, or the invocation's error
	Result                 string // the function's resultString, or the error
	Tries                  int
}

// RunBatchJob drives job as S3 Batch Operations does: it reads the manifest from S3, invokes the
// function once per task (one task per invocation, with the schema's event: keys URL-encoded as
// in the manifest, the bucket by ARN in 1.0 and by name in 2.0), up to job.Concurrency at a
// time, invokes again with backoff a task answered TemporaryFailure or whose invocation failed
// (up to job.MaxTries), and writes the completion report in the service's format
// (Report_CSV_20180820: job-<id>/manifest.json naming results/<sha1>.csv files of succeeded and
// of failed tasks; columns Bucket, Key, VersionId, TaskStatus, ErrorCode, HTTPStatusCode,
// ResultMessage). It returns every task's outcome in manifest order.
func RunBatchJob(ctx context.Context, s3c *s3.Client, job BatchJob, invoke Invoker) ([]BatchTask, error) {
	if job.Schema != "1.0" && job.Schema != "2.0" {
		return nil, fmt.Errorf("batch job: schema %q: want 1.0 or 2.0", job.Schema)
	}
	tasks, err := ReadBatchManifest(ctx, s3c, job.ManifestBucket, job.ManifestKey, job.ManifestFormat)
	if err != nil {
		return nil, err
	}
	conc, tries := cmpOr(job.Concurrency, 8), cmpOr(job.MaxTries, 5)
	var wg sync.WaitGroup
	sem := make(chan struct{}, conc)
	for i := range tasks {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			runTask(ctx, job, i, &tasks[i], tries, invoke)
			if job.Finished != nil {
				job.Finished(tasks[i])
			}
		})
	}
	wg.Wait()
	return tasks, writeBatchReport(ctx, s3c, job, tasks)
}

// InventoryManifest is the manifest format of an S3 Inventory report.
const InventoryManifest = "S3InventoryReport_CSV_20161130"

// ReadBatchManifest reads a job's manifest as the service does: a CSV of bucket,key[,versionId]
// lines, or, in format InventoryManifest, an S3 Inventory report's manifest.json whose gzipped
// CSV files start with bucket,key[,versionId]. Keys stay URL-encoded, as the service passes them
// on.
func ReadBatchManifest(ctx context.Context, s3c *s3.Client, bucket, key, format string) ([]BatchTask, error) {
	body, err := getObject(ctx, s3c, bucket, key)
	if err != nil {
		return nil, fmt.Errorf("batch job: read manifest: %w", err)
	}
	if format != InventoryManifest {
		return manifestLines(body, false, true)
	}
	var inv struct {
		FileFormat string `json:"fileFormat"`
		FileSchema string `json:"fileSchema"`
		Files      []struct {
			Key string `json:"key"`
		} `json:"files"`
	}
	if err := json.Unmarshal(body, &inv); err != nil || inv.FileFormat != "CSV" {
		return nil, errors.Join(fmt.Errorf("batch job: %s is not a CSV inventory manifest", key), err)
	}
	versions := strings.Contains(inv.FileSchema, "VersionId")
	var tasks []BatchTask
	for _, f := range inv.Files {
		gz, err := getObject(ctx, s3c, bucket, f.Key)
		if err != nil {
			return nil, fmt.Errorf("batch job: inventory file: %w", err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(gz))
		if err != nil {
			return nil, fmt.Errorf("batch job: inventory file %s: %w", f.Key, err)
		}
		raw, err := io.ReadAll(zr)
		if err != nil {
			return nil, fmt.Errorf("batch job: inventory file %s: %w", f.Key, err)
		}
		more, err := manifestLines(raw, true, versions)
		if err != nil {
			return nil, err
		}
		tasks = append(tasks, more...)
	}
	return tasks, nil
}

// manifestLines reads CSV lines of bucket,key[,versionId]; an inventory's have more columns, and
// a version id third only when versions says so.
func manifestLines(body []byte, inventory, versions bool) ([]BatchTask, error) {
	r := csv.NewReader(bytes.NewReader(body))
	r.FieldsPerRecord = -1
	lines, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("batch job: manifest: %w", err)
	}
	tasks := make([]BatchTask, len(lines))
	for i, l := range lines {
		if len(l) < 2 || (!inventory && len(l) > 3) {
			return nil, fmt.Errorf("batch job: manifest line %d: want bucket,key[,versionId]", i+1)
		}
		tasks[i] = BatchTask{Bucket: l[0], Key: l[1]}
		if len(l) >= 3 && versions {
			tasks[i].VersionID = l[2]
		}
	}
	return tasks, nil
}

func getObject(ctx context.Context, s3c *s3.Client, bucket, key string) ([]byte, error) {
	out, err := s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	return io.ReadAll(out.Body)
}

func cmpOr(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

// runTask invokes the function for task number i until it answers for good or tries run out.
func runTask(ctx context.Context, job BatchJob, i int, t *BatchTask, tries int, invoke Invoker) {
	id := fmt.Sprintf("task-%d", i)
	for t.Tries = 1; ; t.Tries++ {
		code, result := invokeTask(ctx, job, id, t, invoke)
		t.ResultCode, t.Result = code, result
		if code == "Succeeded" || code == "PermanentFailure" || t.Tries >= tries || ctx.Err() != nil {
			break
		}
		select { // the service backs off before retrying; a test needs only a little of it
		case <-time.After(time.Duration(t.Tries) * 20 * time.Millisecond):
		case <-ctx.Done():
		}
	}
	t.Status = "failed"
	if t.ResultCode == "Succeeded" {
		t.Status = "succeeded"
	}
}

// invokeTask sends one invocation for task t and reads its answer for that task.
func invokeTask(ctx context.Context, job BatchJob, id string, t *BatchTask, invoke Invoker) (code, result string) {
	task := map[string]any{"taskId": id, "s3Key": t.Key, "s3VersionId": nil}
	if t.VersionID != "" {
		task["s3VersionId"] = t.VersionID
	}
	ev := map[string]any{"invocationSchemaVersion": job.Schema, "invocationId": id + "-" + strconv.Itoa(t.Tries), "tasks": []any{task}}
	if job.Schema == "1.0" {
		task["s3BucketArn"] = "arn:aws:s3:::" + t.Bucket
		ev["job"] = map[string]any{"id": job.ID}
	} else {
		task["s3Bucket"] = t.Bucket
		ev["job"] = map[string]any{"id": job.ID, "userArguments": map[string]string{}}
	}
	payload, err := json.Marshal(ev)
	if err != nil {
		return "PermanentFailure", err.Error()
	}
	answer, err := invoke(ctx, payload)
	if err != nil {
		return "TemporaryFailure", "Lambda returned function error: " + err.Error()
	}
	var resp events.S3BatchJobResponse
	if err := json.Unmarshal(answer, &resp); err != nil || len(resp.Results) != 1 || resp.Results[0].TaskID != id {
		return "PermanentFailure", fmt.Sprintf("Lambda answered %.200q, not one result for task %s", answer, id)
	}
	return resp.Results[0].ResultCode, resp.Results[0].ResultString
}

// writeBatchReport writes the completion report of tasks.
func writeBatchReport(ctx context.Context, s3c *s3.Client, job BatchJob, tasks []BatchTask) error {
	base := job.ReportPrefix + "job-" + job.ID + "/"
	type result struct {
		TaskExecutionStatus, Bucket, MD5Checksum, Key string
	}
	manifest := struct {
		Format, ReportCreationDate string
		Results                    []result
		ReportSchema               string
	}{Format: "Report_CSV_20180820", ReportCreationDate: time.Now().UTC().Format(time.RFC3339Nano),
		ReportSchema: "Bucket, Key, VersionId, TaskStatus, ErrorCode, HTTPStatusCode, ResultMessage"}
	for _, status := range []string{"succeeded", "failed"} {
		var buf bytes.Buffer
		w := csv.NewWriter(&buf)
		for _, t := range tasks {
			if t.Status != status {
				continue
			}
			code := ""
			if status == "failed" {
				code = t.ResultCode
			}
			if err := w.Write([]string{t.Bucket, t.Key, t.VersionID, t.Status, code, "200", t.Result}); err != nil {
				return err
			}
		}
		w.Flush()
		if buf.Len() == 0 {
			continue
		}
		sum := sha1.Sum(buf.Bytes())
		key := base + "results/" + hex.EncodeToString(sum[:]) + ".csv"
		if err := putReport(ctx, s3c, job.ReportBucket, key, buf.Bytes()); err != nil {
			return err
		}
		md := md5.Sum(buf.Bytes())
		manifest.Results = append(manifest.Results, result{status, job.ReportBucket, hex.EncodeToString(md[:]), key})
	}
	b, err := json.Marshal(manifest)
	if err != nil {
		return err
	}
	return putReport(ctx, s3c, job.ReportBucket, base+"manifest.json", b)
}

func putReport(ctx context.Context, s3c *s3.Client, bucket, key string, body []byte) error {
	_, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body)})
	if err != nil {
		return fmt.Errorf("batch job: write report %s: %w", key, err)
	}
	return nil
}
