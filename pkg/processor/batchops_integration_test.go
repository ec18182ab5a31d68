package processor_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sluice-dev/sluice/pkg/batchjob"
	"github.com/sluice-dev/sluice/pkg/faultinject"
	"github.com/sluice-dev/sluice/pkg/state"
	"github.com/sluice-dev/sluice/pkg/testenv"
)

// everyNth lists the call numbers n, 2n, ... up to limit: a fault spread over a long run.
func everyNth(n, limit int) []int {
	var calls []int
	for c := n; c <= limit; c += n {
		calls = append(calls, c)
	}
	return calls
}

// A backfill run as an S3 Batch Operations job (driven by testenv.RunBatchJob, both invocation
// schemas) over 1,000 objects: good files, bad ones, hostile keys, duplicate manifest lines and
// keys that do not exist, with S3 and DynamoDB faults injected and invocations whose answer is
// lost (the service invokes again). Every object ends terminal, each once (one terminal
// transition, one published generation), and every line of the completion report agrees with
// the state table.
func TestBatchOperationsJobOfAThousandObjects(t *testing.T) {
	for _, schema := range []string{"1.0", "2.0"} {
		t.Run("schema "+schema, func(t *testing.T) { batchJobOfAThousand(t, schema) })
	}
}

func batchJobOfAThousand(t *testing.T, schema string) {
	r := newRig(t, nil)
	ctx := context.Background()
	hostile := []string{"a b", "plus+sign", "100%", "ünï©ødé", `quo"te`, "com,ma", "hash#?", "back\\slash", "esc\x1b[2J", "\u202egpj.exe"}
	good, bad := grayJPEG(t, 64, 48), []byte("not an image at all")
	var keys []string
	kind := map[string]string{}
	for i := range 1000 {
		var key string
		switch {
		case i%20 == 0:
			key = fmt.Sprintf("uploads/hostile/%03d %s.jpg", i, hostile[(i/20)%len(hostile)])
		case i%7 == 0:
			key = fmt.Sprintf("uploads/bad/%03d.jpg", i)
		default:
			key = fmt.Sprintf("uploads/good/%03d.jpg", i)
		}
		body := good
		if strings.HasPrefix(key, "uploads/bad/") {
			body = bad
		}
		r.upload(t, key, body, nil)
		keys, kind[key] = append(keys, key), "object"
	}
	// The manifest: every key, 100 of them twice, and 10 that do not exist.
	lines := append([]string{}, keys...)
	lines = append(lines, keys[:100]...)
	for i := range 10 {
		lines = append(lines, fmt.Sprintf("uploads/missing/%d.jpg", i))
	}
	var manifest bytes.Buffer
	for _, k := range lines {
		fmt.Fprintf(&manifest, "%s,%s\n", r.staging, url.QueryEscape(k))
	}
	if _, err := r.env.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(r.output), Key: aws.String("batch-manifests/job.csv"), Body: bytes.NewReader(manifest.Bytes())}); err != nil {
		t.Fatal(err)
	}
	r.withFaults(t,
		faultinject.Rule{Service: "S3", Operation: "PutObject", Calls: everyNth(97, 10000), Fault: faultinject.SlowDown},
		faultinject.Rule{Service: "S3", Operation: "CopyObject", Calls: everyNth(89, 10000), Fault: faultinject.InternalError},
		faultinject.Rule{Service: "S3", Operation: "GetObject", Calls: everyNth(101, 10000), Fault: faultinject.ConnectionReset},
		faultinject.Rule{Service: "DynamoDB", Operation: "PutItem", Calls: everyNth(83, 10000), Fault: faultinject.Throttling},
		faultinject.Rule{Service: "DynamoDB", Operation: "GetItem", Calls: everyNth(79, 10000), Fault: faultinject.LostAnswer},
	)
	var invocations atomic.Int64
	invoke := func(ctx context.Context, payload []byte) ([]byte, error) {
		n := invocations.Add(1)
		ctx = lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{AwsRequestID: fmt.Sprintf("batch-%d", n)})
		out, err := r.proc.Handle(ctx, payload)
		if err != nil {
			return nil, err
		}
		if n%53 == 0 {
			return nil, fmt.Errorf("invocation %d: the answer was lost", n) // it ran; the service invokes again
		}
		return json.Marshal(out)
	}
	job := testenv.BatchJob{ID: "job-" + strings.ReplaceAll(schema, ".", ""), Schema: schema, ManifestBucket: r.output, ManifestKey: "batch-manifests/job.csv",
		ReportBucket: r.output, ReportPrefix: "batch-reports/", Concurrency: 8}
	tasks, err := testenv.RunBatchJob(ctx, r.env.S3, job, invoke)
	if err != nil {
		t.Fatal(err)
	}
	var report []batchjob.Task
	err = batchjob.ReadReport(ctx, r.objects, r.output, "batch-reports/", job.ID, func(t batchjob.Task) error {
		report = append(report, t)
		return nil
	})
	if err != nil || len(report) != len(lines) || len(tasks) != len(lines) {
		t.Fatalf("report of %d lines for %d manifest lines: %v", len(report), len(lines), err)
	}
	for _, row := range report {
		key, err := url.QueryUnescape(row.Key)
		if err != nil {
			t.Fatalf("report key %q: %v", row.Key, err)
		}
		if kind[key] == "" { // a key that does not exist
			if row.Status != "failed" || row.ErrorCode != "PermanentFailure" {
				t.Errorf("%q: %s %s %q, want failed PermanentFailure", key, row.Status, row.ErrorCode, row.Result)
			}
			continue
		}
		rec := r.record(t, key)
		want := map[state.Status][]string{
			state.Succeeded:   {r.proc.Keys().Manifest(key), "duplicate"},
			state.Quarantined: {"quarantined:" + rec.Reason, "duplicate"},
		}[rec.Status]
		if row.Status != "succeeded" || len(want) == 0 || (row.Result != want[0] && row.Result != want[1]) {
			t.Errorf("%q: report %s %q, state %s (%s)", key, row.Status, row.Result, rec.Status, rec.Reason)
		}
	}
	published := generations(t, r)
	for _, key := range keys {
		rec := r.record(t, key)
		wantStatus := state.Succeeded
		if strings.HasPrefix(key, "uploads/bad/") {
			wantStatus = state.Quarantined
		}
		ends := 0
		for _, h := range rec.History {
			if h.To == state.Succeeded || h.To == state.Quarantined {
				ends++
			}
		}
		if rec.Status != wantStatus || ends != 1 {
			t.Errorf("%q: %s with %d terminal transitions, want %s once", key, rec.Status, ends, wantStatus)
		}
		if gens := published[r.proc.Keys().Segment(key)]; wantStatus == state.Succeeded && len(gens) != 1 {
			t.Errorf("%q: renditions of %d generations published: %v", key, len(gens), gens)
		}
	}
	t.Logf("%d tasks, %d invocations", len(tasks), invocations.Load())
}

// generations lists, by source segment, the generations whose renditions are in the output
// bucket.
func generations(t *testing.T, r *rig) map[string]map[string]bool {
	t.Helper()
	objs, err := r.env.List(context.Background(), r.output)
	if err != nil {
		t.Fatal(err)
	}
	gens := map[string]map[string]bool{}
	for key := range objs {
		out, ok := r.proc.Keys().ParseOutput(key)
		if !ok || out.Manifest {
			continue
		}
		if gens[out.Seg] == nil {
			gens[out.Seg] = map[string]bool{}
		}
		gens[out.Seg][out.Gen] = true
	}
	return gens
}
