package testenv

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// S3Control is an in-memory stand-in for the S3 Batch Operations part of Amazon S3 Control,
// speaking its REST-XML protocol to the real SDK client (the service has no local server on these
// machines). CreateJob runs an "Invoke AWS Lambda function" job with RunBatchJob against the
// invoker registered for its function ARN, over the CSV manifest it names or over a manifest it
// generates by listing the source bucket (prefix and creation-date filters), in the background;
// DescribeJob reports its status and progress. A client reaches it as a proxy (URL, with
// HTTP_PROXY): S3 Control puts the account id in the host name.
type S3Control struct {
	srv     *httptest.Server
	s3      *s3.Client
	mu      sync.Mutex
	invoke  map[string]Invoker // by function ARN
	jobs    map[string]*controlJob
	byToken map[string]string
	done    sync.WaitGroup
}

type controlJob struct {
	id, status                 string
	total, succeeded, failed   int64
	reportBucket, reportPrefix string
	reasons                    []string
}

// NewS3Control starts the fake; s3c is where manifests are read and reports written.
func NewS3Control(t testing.TB, s3c *s3.Client) *S3Control {
	f := &S3Control{s3: s3c, invoke: map[string]Invoker{}, jobs: map[string]*controlJob{}, byToken: map[string]string{}}
	f.srv = httptest.NewServer(f)
	t.Cleanup(func() {
		f.done.Wait()
		f.srv.Close()
	})
	return f
}

// URL is the fake's address, to use as HTTP_PROXY.
func (f *S3Control) URL() string { return f.srv.URL }

// Function registers the invoker a job on functionARN calls.
func (f *S3Control) Function(functionARN string, invoke Invoker) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.invoke[functionARN] = invoke
}

// Wait waits for every job started so far to end.
func (f *S3Control) Wait() { f.done.Wait() }

// createJobRequest is the part of CreateJob's body the fake reads.
type createJobRequest struct {
	ClientRequestToken string
	Operation          struct {
		LambdaInvoke struct{ FunctionArn, InvocationSchemaVersion string }
	}
	Report   struct{ Bucket, Prefix string }
	Manifest struct {
		Spec     struct{ Format string }
		Location struct{ ObjectArn, ETag string }
	}
	ManifestGenerator struct {
		S3JobManifestGenerator struct {
			SourceBucket           string
			ManifestOutputLocation struct{ Bucket, ManifestPrefix string }
			Filter                 struct {
				CreatedAfter, CreatedBefore string
				KeyNameConstraint           struct {
					MatchAnyPrefix []string `xml:"MatchAnyPrefix>member"`
				}
			}
		}
	}
}

// ServeHTTP implements the two operations.
func (f *S3Control) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v20180820/jobs":
		var req createJobRequest
		if err := xml.NewDecoder(r.Body).Decode(&req); err != nil {
			controlError(w, http.StatusBadRequest, "InvalidRequest", err.Error())
			return
		}
		id, err := f.create(req)
		if err != nil {
			controlError(w, http.StatusBadRequest, "InvalidRequest", err.Error())
			return
		}
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><CreateJobResult><JobId>%s</JobId></CreateJobResult>`, id)
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v20180820/jobs/"):
		f.mu.Lock()
		j, ok := f.jobs[strings.TrimPrefix(r.URL.Path, "/v20180820/jobs/")]
		var body []byte
		if ok {
			body = j.xml()
		}
		f.mu.Unlock()
		if !ok {
			controlError(w, http.StatusNotFound, "NoSuchJob", "no such job")
			return
		}
		w.Write(body)
	default:
		controlError(w, http.StatusBadRequest, "InvalidRequest", "the fake S3 Control serves CreateJob and DescribeJob")
	}
}

func controlError(w http.ResponseWriter, status int, code, msg string) {
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><ErrorResponse><Error><Code>%s</Code><Message>%s</Message></Error></ErrorResponse>`, code, xmlText(msg))
}

func xmlText(s string) string {
	var b bytes.Buffer
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

// xml is DescribeJob's answer for j (the caller holds the lock).
func (j *controlJob) xml() []byte {
	var reasons string
	for _, r := range j.reasons {
		reasons += "<member><FailureCode>ManifestError</FailureCode><FailureReason>" + xmlText(r) + "</FailureReason></member>"
	}
	return fmt.Appendf(nil, `<?xml version="1.0" encoding="UTF-8"?><DescribeJobResult><Job><JobId>%s</JobId><Status>%s</Status>`+
		`<ProgressSummary><TotalNumberOfTasks>%d</TotalNumberOfTasks><NumberOfTasksSucceeded>%d</NumberOfTasksSucceeded><NumberOfTasksFailed>%d</NumberOfTasksFailed></ProgressSummary>`+
		`<Report><Bucket>arn:aws:s3:::%s</Bucket><Prefix>%s</Prefix><Format>Report_CSV_20180820</Format><Enabled>true</Enabled><ReportScope>AllTasks</ReportScope></Report>`+
		`<FailureReasons>%s</FailureReasons></Job></DescribeJobResult>`,
		j.id, j.status, j.total, j.succeeded, j.failed, xmlText(j.reportBucket), xmlText(j.reportPrefix), reasons)
}

// create registers a job (once per token) and starts it.
func (f *S3Control) create(req createJobRequest) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if id, ok := f.byToken[req.ClientRequestToken]; ok && req.ClientRequestToken != "" {
		return id, nil
	}
	invoke, ok := f.invoke[req.Operation.LambdaInvoke.FunctionArn]
	if !ok {
		return "", fmt.Errorf("no function %q", req.Operation.LambdaInvoke.FunctionArn)
	}
	id := fmt.Sprintf("job-%04d", len(f.jobs)+1)
	j := &controlJob{id: id, status: "Active", reportBucket: strings.TrimPrefix(req.Report.Bucket, "arn:aws:s3:::"), reportPrefix: req.Report.Prefix}
	f.jobs[id], f.byToken[req.ClientRequestToken] = j, id
	f.done.Go(func() { f.run(j, req, invoke) })
	return id, nil
}

// run generates or reads the manifest, runs the tasks and ends the job.
func (f *S3Control) run(j *controlJob, req createJobRequest, invoke Invoker) {
	ctx := context.Background()
	bucket, key, err := f.manifest(ctx, j, req)
	reportPrefix := j.reportPrefix
	if reportPrefix != "" {
		reportPrefix += "/"
	}
	if err == nil {
		job := BatchJob{ID: j.id, Schema: req.Operation.LambdaInvoke.InvocationSchemaVersion, ManifestBucket: bucket, ManifestKey: key, ManifestFormat: req.Manifest.Spec.Format,
			ReportBucket: j.reportBucket, ReportPrefix: reportPrefix, Concurrency: 4,
			Finished: func(t BatchTask) {
				f.mu.Lock()
				defer f.mu.Unlock()
				if t.Status == "succeeded" {
					j.succeeded++
				} else {
					j.failed++
				}
			}}
		_, err = RunBatchJob(ctx, f.s3, job, invoke)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	j.status = "Complete"
	if err != nil {
		j.status, j.reasons = "Failed", []string{err.Error()}
	}
}

// manifest is where the job's CSV manifest is: the one named, or one generated by listing.
func (f *S3Control) manifest(ctx context.Context, j *controlJob, req createJobRequest) (bucket, key string, err error) {
	if arn := req.Manifest.Location.ObjectArn; arn != "" {
		bucket, key, _ = strings.Cut(strings.TrimPrefix(arn, "arn:aws:s3:::"), "/")
		f.count(ctx, j, bucket, key, req.Manifest.Spec.Format)
		return bucket, key, nil
	}
	g := req.ManifestGenerator.S3JobManifestGenerator
	src := strings.TrimPrefix(g.SourceBucket, "arn:aws:s3:::")
	after, _ := time.Parse(time.RFC3339, g.Filter.CreatedAfter)
	before, _ := time.Parse(time.RFC3339, g.Filter.CreatedBefore)
	prefixes := g.Filter.KeyNameConstraint.MatchAnyPrefix
	if len(prefixes) == 0 {
		prefixes = []string{""}
	}
	var csv bytes.Buffer
	var n int64
	for _, prefix := range prefixes {
		p := s3.NewListObjectsV2Paginator(f.s3, &s3.ListObjectsV2Input{Bucket: aws.String(src), Prefix: aws.String(prefix)})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return "", "", err
			}
			for _, o := range page.Contents {
				t := aws.ToTime(o.LastModified)
				if (!after.IsZero() && t.Before(after)) || (!before.IsZero() && !t.Before(before)) {
					continue
				}
				fmt.Fprintf(&csv, "%s,%s\n", src, url.QueryEscape(aws.ToString(o.Key)))
				n++
			}
		}
	}
	bucket = strings.TrimPrefix(g.ManifestOutputLocation.Bucket, "arn:aws:s3:::")
	key = g.ManifestOutputLocation.ManifestPrefix + "/job-" + j.id + "/manifest.csv"
	if _, err := f.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(csv.Bytes())}); err != nil {
		return "", "", err
	}
	f.mu.Lock()
	j.total = n
	f.mu.Unlock()
	return bucket, key, nil
}

// count sets the job's total from a named manifest.
func (f *S3Control) count(ctx context.Context, j *controlJob, bucket, key, format string) {
	tasks, err := ReadBatchManifest(ctx, f.s3, bucket, key, format)
	if err != nil {
		return
	}
	f.mu.Lock()
	j.total = int64(len(tasks))
	f.mu.Unlock()
}
