package processor_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/sluice-dev/sluice/pkg/announce"
	"github.com/sluice-dev/sluice/pkg/awsclient"
	"github.com/sluice-dev/sluice/pkg/cdn"
	"github.com/sluice-dev/sluice/pkg/failure"
	"github.com/sluice-dev/sluice/pkg/faultinject"
	"github.com/sluice-dev/sluice/pkg/processor"
	"github.com/sluice-dev/sluice/pkg/state"
	"github.com/sluice-dev/sluice/pkg/testenv"
)

// withFaults rebuilds the processor on SDK clients whose requests pass through a fault injector
// (the same retryer and configuration as in Lambda).
func (r *rig) withFaults(t *testing.T, rules ...faultinject.Rule) *faultinject.Transport {
	t.Helper()
	cfg, inj := r.env.WithFaults(rules...)
	r.buildOn(t, awsclient.S3(cfg), awsclient.DynamoDB(cfg))
	return inj
}

// One transient fault on every kind of call the processor makes: the SDK's retryer absorbs each,
// and the file is processed once, with exactly one extra request per fault.
func TestTransientFaultsAreRetriedToSuccess(t *testing.T) {
	t.Parallel() // most of its time is the SDK's backoff
	r := newRig(t, nil)
	const key = "uploads/faults.jpg"
	r.upload(t, key, grayJPEG(t, 1200, 800), nil)
	inj := r.withFaults(t,
		faultinject.Rule{Service: "S3", Operation: "HeadObject", Calls: []int{1}, Fault: faultinject.ServiceUnavailable},
		faultinject.Rule{Service: "S3", Operation: "GetObject", Calls: []int{1}, Fault: faultinject.ConnectionReset},
		faultinject.Rule{Service: "S3", Operation: "PutObject", Calls: []int{1, 2}, Fault: faultinject.SlowDown},
		faultinject.Rule{Service: "S3", Operation: "CopyObject", Calls: []int{1}, Fault: faultinject.InternalError},
		faultinject.Rule{Service: "S3", Operation: "DeleteObject", Calls: []int{1}, Fault: faultinject.Timeout},
		faultinject.Rule{Service: "DynamoDB", Operation: "GetItem", Calls: []int{1}, Fault: faultinject.ProvisionedThroughputExceeded},
		faultinject.Rule{Service: "DynamoDB", Operation: "PutItem", Calls: []int{1}, Fault: faultinject.Throttling},
	)
	res := r.proc.Process(context.Background(), "req-faults", r.event(key))
	if res.Outcome != processor.Succeeded || res.Err != nil {
		t.Fatalf("outcome %s err %v (%s)", res.Outcome, res.Err, res.Detail)
	}
	rec := r.record(t, key)
	if rec.Status != state.Succeeded || rec.Attempts != 1 || len(rec.Outputs) != 3 {
		t.Fatalf("state %+v", rec)
	}
	// Requests = the protocol's own + one per injected fault.
	want := map[string]int{
		"S3.HeadObject":    1 + 1,     // source, fault (verify uses the PUT's checksum)
		"S3.GetObject":     2 + 1,     // source, the manifest's fence read, fault
		"S3.PutObject":     3 + 1 + 2, // three temps, the manifest, faults
		"S3.CopyObject":    3 + 1,
		"S3.DeleteObject":  3 + 1,
		"DynamoDB.GetItem": 2 + 1, // claim read, the lease check before the commit, fault
		"DynamoDB.PutItem": 2 + 1, // claim, completion, fault
	}
	for op, n := range want {
		service, name, _ := strings.Cut(op, ".")
		if got := inj.Calls(service, name); got != n {
			t.Errorf("%s: %d requests, want %d", op, got, n)
		}
	}
}

// A fault that outlasts the SDK's retries fails the attempt transiently (state FAILED with the
// error, the trigger retries); the next delivery, with the fault gone, succeeds.
func TestPersistentFaultFailsTheAttemptThenRecovers(t *testing.T) {
	t.Parallel() // most of its time is the SDK's backoff
	r := newRig(t, func(c *processor.Config) { c.RetriesPerAttempt = 0 })
	const key = "uploads/slowdown.jpg"
	r.upload(t, key, grayJPEG(t, 600, 400), nil)
	inj := r.withFaults(t, faultinject.Rule{Service: "S3", Operation: "PutObject", Fault: faultinject.SlowDown})
	res := r.proc.Process(context.Background(), "req-1", r.event(key))
	if res.Outcome != processor.Failed || res.Err == nil {
		t.Fatalf("outcome %s err %v, want a transient failure", res.Outcome, res.Err)
	}
	if got := inj.Calls("S3", "PutObject"); got != awsclient.MaxAttempts {
		t.Errorf("PutObject tried %d times, want the retryer's %d", got, awsclient.MaxAttempts)
	}
	rec := r.record(t, key)
	if rec.Status != state.Failed || rec.Attempts != 1 || !strings.Contains(rec.LastError, "SlowDown") || rec.Claimed() {
		t.Fatalf("state after the failed attempt: %+v", rec)
	}
	if keys := r.list(t, r.output); len(keys) != 0 {
		t.Errorf("output bucket after the failed attempt: %v, want empty", keys)
	}
	r.build(t) // the fault is gone
	res = r.proc.Process(context.Background(), "req-2", r.event(key))
	if res.Outcome != processor.Succeeded {
		t.Fatalf("redelivery: outcome %s err %v", res.Outcome, res.Err)
	}
	if rec := r.record(t, key); rec.Status != state.Succeeded || rec.Attempts != 2 {
		t.Fatalf("state after redelivery: %+v", rec)
	}
}

// A burst of faults longer than the SDK's retries (its 5 attempts at the first temp PUT) is
// absorbed by the attempt's own retry, under the same claim: one attempt, processed once.
func TestFaultBurstIsRetriedWithinTheAttempt(t *testing.T) {
	t.Parallel() // most of its time is the SDK's backoff
	r := newRig(t, func(c *processor.Config) { c.RetriesPerAttempt = 2 })
	const key = "uploads/burst.jpg"
	r.upload(t, key, grayJPEG(t, 600, 400), nil)
	inj := r.withFaults(t, faultinject.Rule{Service: "S3", Operation: "PutObject", Calls: []int{1, 2, 3, 4, 5}, Fault: faultinject.SlowDown})
	res := r.proc.Process(context.Background(), "req-burst", r.event(key))
	if res.Outcome != processor.Succeeded || res.Err != nil {
		t.Fatalf("outcome %s err %v (%s)", res.Outcome, res.Err, res.Detail)
	}
	if rec := r.record(t, key); rec.Status != state.Succeeded || rec.Attempts != 1 || rec.LeaseOwner != "req-burst" {
		t.Fatalf("state %+v, want SUCCEEDED in one attempt", rec)
	}
	if got, want := inj.Calls("S3", "PutObject"), awsclient.MaxAttempts+4; got != want {
		t.Errorf("PutObject requests %d, want %d (the burst, then three temps and the manifest)", got, want)
	}
	if got := inj.Calls("S3", "GetObject"); got != 3 {
		t.Errorf("GetObject requests %d, want 3 (the work ran twice; one manifest read)", got)
	}
	if keys := r.list(t, r.output); len(keys) != 4 {
		t.Errorf("output keys %v, want 3 renditions and a manifest", keys)
	}
}

// A worker whose claim is taken over while it works (here: right as it writes its first temp
// object) stops before copying anything to a final key, removes its temp object and leaves the
// state to the new owner.
func TestStaleWorkerStopsWithoutPublishing(t *testing.T) {
	r := newRig(t, nil)
	const key = "uploads/stale.jpg"
	r.upload(t, key, grayJPEG(t, 600, 400), nil)
	steal := func(int) {
		rec := r.record(t, key)
		rec.ClaimToken, rec.LeaseOwner = "thief-token", "thief-request"
		if _, err := r.states.Replace(context.Background(), rec, rec.Rev); err != nil {
			t.Errorf("steal the claim: %v", err)
		}
	}
	r.withFaults(t, faultinject.Rule{Service: "S3", Operation: "PutObject", Calls: []int{1}, Before: steal})
	res := r.proc.Process(context.Background(), "req-stale", r.event(key))
	if res.Outcome != processor.Skipped || res.Err != nil {
		t.Fatalf("outcome %s err %v (%s), want skipped without error", res.Outcome, res.Err, res.Detail)
	}
	if keys := r.list(t, r.output); len(keys) != 0 {
		t.Errorf("output bucket: %v, want nothing published and no temp object left", keys)
	}
	if rec := r.record(t, key); rec.Status != state.Processing || rec.ClaimToken != "thief-token" {
		t.Errorf("state: %+v, want the new owner's claim untouched", rec)
	}
}

// No step starts inside the deadline margin: an invocation that begins inside it claims nothing;
// one that reaches it while publishing stops, records FAILED with its claim released (so a retry
// can take over at once) and returns a transient error.
func TestDeadlineMarginStopsTheAttemptAndReleasesTheClaim(t *testing.T) {
	const margin = 2 * time.Second
	r := newRig(t, func(c *processor.Config) { c.DeadlineMargin = margin })
	const key = "uploads/deadline.jpg"
	r.upload(t, key, grayJPEG(t, 600, 400), nil)

	ctx, cancel := context.WithTimeout(context.Background(), margin/2)
	res := r.proc.Process(ctx, "req-late", r.event(key))
	cancel()
	if res.Outcome != processor.Failed || failure.Classify(res.Err) != failure.IsTransient {
		t.Fatalf("started inside the margin: outcome %s err %v, want a transient failure", res.Outcome, res.Err)
	}
	if _, found, err := r.states.Get(context.Background(), state.ID(r.staging, key)); found || err != nil {
		t.Fatalf("started inside the margin: a record exists (%v), want no claim", err)
	}

	deadline := time.Now().Add(margin + 3*time.Second)
	stall := func(int) { time.Sleep(time.Until(deadline.Add(-margin)) + 50*time.Millisecond) }
	r.withFaults(t, faultinject.Rule{Service: "S3", Operation: "PutObject", Calls: []int{1}, Before: stall})
	ctx, cancel = context.WithDeadline(context.Background(), deadline)
	res = r.proc.Process(ctx, "req-slow", r.event(key))
	cancel()
	if res.Outcome != processor.Failed || failure.Classify(res.Err) != failure.IsTransient {
		t.Fatalf("ran into the margin: outcome %s err %v, want a transient failure", res.Outcome, res.Err)
	}
	if rec := r.record(t, key); rec.Status != state.Failed || rec.Claimed() || rec.Attempts != 1 {
		t.Fatalf("ran into the margin: state %+v, want FAILED with the claim released", rec)
	}
	if keys := r.list(t, r.output); len(keys) != 0 {
		t.Errorf("ran into the margin: output bucket %v, want nothing", keys)
	}
}

// Requests one successfully processed file costs, by operation (make bench prints them), with
// each feature off and on: S3 validates the SHA-256 sent with each PUT and reports the stored
// one, so no HEAD verifies a temp object; the state is written twice (claim, completion);
// announcing adds the event and the record of it; DEDUPE without a twin yet adds the index read
// and the offer; a CDN costs nothing on a first publish (nothing to invalidate).
func TestRequestsPerFile(t *testing.T) {
	for _, f := range []struct {
		name                       string
		events, dedupe, invalidate bool
	}{{"all off", false, false, false}, {"events", true, false, false}, {"dedupe, no twin", false, true, false}, {"cdn, first publish", false, false, true}} {
		t.Run(f.name, func(t *testing.T) {
			r := newRig(t, func(c *processor.Config) { c.Dedupe = f.dedupe })
			const key = "uploads/count.jpg"
			r.upload(t, key, grayJPEG(t, 1200, 800), nil)
			cfg, inj := r.env.WithFaults() // no faults: it counts
			r.buildOn(t, awsclient.S3(cfg), awsclient.DynamoDB(cfg))
			if f.events {
				eb := testenv.NewEventBridge(t)
				r.proc.WithAnnouncer(announce.NewBus(awsclient.EventBridge(cfg, func(o *eventbridge.Options) { o.BaseEndpoint = aws.String(eb.URL()) }), "bus"))
			}
			cf := testenv.NewCloudFront(t)
			if f.invalidate {
				r.proc.WithCDN(cdn.New(cf.Client(), "E2QWRUHAPOMQZL"))
			}
			if res := r.proc.Process(context.Background(), "req-count", r.event(key)); res.Outcome != processor.Succeeded {
				t.Fatalf("outcome %s err %v", res.Outcome, res.Err)
			}
			n := len(r.cfg.Recipe.Renditions)
			one := func(on bool) int {
				if on {
					return 1
				}
				return 0
			}
			checkRequests(t, inj, []count{
				{"S3.HeadObject", 1, "the source"},
				{"S3.GetObject", 2, "the source; the manifest it replaces (fence, ETag, generation)"},
				{"S3.PutObject", n + 1, "each temp object; the manifest (If-Match / If-None-Match)"},
				{"S3.CopyObject", n, "each temp object to its generation's key"},
				{"S3.DeleteObject", n, "each temp object (DELETE requests are free)"},
				{"DynamoDB.GetItem", 2 + one(f.dedupe), "the claim's read; the content index (DEDUPE); the lease check before the manifest"},
				{"DynamoDB.PutItem", 2 + one(f.dedupe), "the claim; the completion; the offer as the bytes' twin (DEDUPE)"},
				{"DynamoDB.UpdateItem", one(f.events || f.invalidate), "the outcome recorded as announced"},
				{"EventBridge.PutEvents", one(f.events), "the outcome's event"},
			}, n)
			if cf.Calls() != 0 {
				t.Errorf("%d CreateInvalidation requests for a first publish, want none", cf.Calls())
			}
		})
	}
}

// count is how many requests of one operation a file costs, and why.
type count struct {
	op  string
	n   int
	why string
}

// checkRequests compares the injector's counts with want, and logs them.
func checkRequests(t *testing.T, inj *faultinject.Transport, want []count, renditions int) {
	t.Helper()
	byService := map[string]int{}
	for _, w := range want {
		service, name, _ := strings.Cut(w.op, ".")
		got := inj.Calls(service, name)
		if got != w.n {
			t.Errorf("%s: %d requests, want %d", w.op, got, w.n)
		}
		byService[service] += got
		t.Logf("%-21s %2d  %s", w.op, got, w.why)
	}
	t.Logf("per file with %d renditions: %d S3 requests, %d DynamoDB requests, %d EventBridge requests", renditions, byService["S3"], byService["DynamoDB"], byService["EventBridge"])
}

// Requests a file costs when a twin's renditions are copied (DEDUPE): no temp object, no
// rendering; a copy and a HEAD (its checksum) per rendition, the twin's manifest, the index.
// With a SHA-256 declared at upload (S3 keeps it), the source is not even downloaded.
func TestRequestsPerDeduplicatedFile(t *testing.T) {
	for _, declared := range []bool{false, true} {
		t.Run(fmt.Sprint("sha256 declared=", declared), func(t *testing.T) {
			r := newRig(t, func(c *processor.Config) { c.Dedupe = true })
			body := grayJPEG(t, 1200, 800)
			for _, k := range []string{"uploads/twin.jpg", "uploads/copy.jpg"} {
				in := &s3.PutObjectInput{Bucket: aws.String(r.staging), Key: aws.String(k), Body: bytes.NewReader(body)}
				if declared {
					in.ChecksumAlgorithm = s3types.ChecksumAlgorithmSha256
				}
				if _, err := r.env.S3.PutObject(context.Background(), in); err != nil {
					t.Fatal(err)
				}
			}
			if res := r.proc.Process(context.Background(), "req-twin", r.event("uploads/twin.jpg")); res.Outcome != processor.Succeeded {
				t.Fatalf("twin: %s %v", res.Outcome, res.Err)
			}
			cfg, inj := r.env.WithFaults()
			r.buildOn(t, awsclient.S3(cfg), awsclient.DynamoDB(cfg))
			if res := r.proc.Process(context.Background(), "req-copy", r.event("uploads/copy.jpg")); res.Outcome != processor.Succeeded || !strings.Contains(res.Detail, "twin") {
				t.Fatalf("copy: %s %v (%s)", res.Outcome, res.Err, res.Detail)
			}
			n := len(r.cfg.Recipe.Renditions)
			download := 1
			if declared {
				download = 0
			}
			checkRequests(t, inj, []count{
				{"S3.HeadObject", 1 + n, "the source; each copy (its checksum)"},
				{"S3.GetObject", download + 2, "the source, unless S3 declares its SHA-256; the twin's manifest; the manifest it replaces"},
				{"S3.PutObject", 1, "the manifest"},
				{"S3.CopyObject", n, "each of the twin's renditions into this generation"},
				{"S3.DeleteObject", 0, "no temp object"},
				{"DynamoDB.GetItem", 3, "the claim's read; the content index; the lease check before the manifest"},
				{"DynamoDB.PutItem", 2, "the claim; the completion"},
			}, n)
		})
	}
}
