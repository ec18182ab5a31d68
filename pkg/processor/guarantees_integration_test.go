package processor_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/sluice-dev/sluice/pkg/failure"
	"github.com/sluice-dev/sluice/pkg/faultinject"
	"github.com/sluice-dev/sluice/pkg/processor"
	"github.com/sluice-dev/sluice/pkg/state"
	"github.com/sluice-dev/sluice/pkg/storage"
	"github.com/sluice-dev/sluice/pkg/testenv"
	"github.com/sluice-dev/sluice/pkg/trigger"
)

// Scenarios of issue 13's "what is broken today", one test each, against the real stack. Each
// failed on the previous main.

// other is a second processor on the same buckets and table (another Lambda container), built
// before r is rebuilt on a fault injector.
func (r *rig) other(t *testing.T) *rig {
	t.Helper()
	o := *r
	o.build(t)
	return &o
}

// readManifest reads key's manifest, reporting whether there is one.
func (r *rig) readManifest(t *testing.T, key string) (processor.Manifest, bool) {
	t.Helper()
	_, body, err := r.objects.Read(context.Background(), r.output, r.proc.Keys().Manifest(key), 1<<20)
	if errors.Is(err, storage.ErrNotFound) {
		return processor.Manifest{}, false
	}
	if err != nil {
		t.Fatal(err)
	}
	m, err := processor.ReadManifest(body)
	if err != nil {
		t.Fatal(err)
	}
	return m, true
}

// mixed reads key's manifest and its outputs as a reader would and describes what is wrong with
// the set ("" when the set is whole: every output listed exists with the listed checksum).
func (r *rig) mixed(key string) string {
	ctx := context.Background()
	_, body, err := r.objects.Read(ctx, r.output, r.proc.Keys().Manifest(key), 1<<20)
	if err != nil {
		return ""
	}
	m, err := processor.ReadManifest(body)
	if err != nil {
		return "manifest unreadable: " + err.Error()
	}
	for _, o := range m.Outputs {
		_, b, err := r.objects.Read(ctx, r.output, o.Key, 64<<20)
		if err != nil {
			return fmt.Sprintf("%s listed but unreadable: %v", o.Key, err)
		}
		if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != o.SHA256 {
			return fmt.Sprintf("%s listed with sha256 %s, holds %x", o.Key, o.SHA256, sum)
		}
	}
	return ""
}

// Item 2: a removal and a re-upload right after it. The re-upload's worker runs to completion
// between the removal's read of the record and its deletes: the removal (older by sequencer)
// must not delete the new version's outputs.
func TestRemovalRacingAReuploadKeepsTheNewVersion(t *testing.T) {
	r := newRig(t, nil)
	const key = "uploads/replaced.jpg"
	r.upload(t, key, grayJPEG(t, 500, 400), nil)
	r.mustProcess(t, r.seqEvent(key, trigger.Created, "0062E9A2B1C3D4E5A0"), processor.Succeeded)
	r.deleteSource(t, key)
	other := r.other(t)
	var reupload processor.Result
	r.withFaults(t, faultinject.Rule{Service: "DynamoDB", Operation: "GetItem", Calls: []int{1}, After: func(int) {
		r.upload(t, key, grayJPEG(t, 400, 500), nil)
		reupload = other.proc.Process(context.Background(), "req-reupload", r.seqEvent(key, trigger.Created, "0062E9A2B1C3D4E5C0"))
	}})
	res := r.proc.Process(context.Background(), "req-remove", r.seqEvent(key, trigger.Removed, "0062E9A2B1C3D4E5B0"))
	if reupload.Outcome != processor.Succeeded {
		t.Fatalf("re-upload: %s %v (%s)", reupload.Outcome, reupload.Err, reupload.Detail)
	}
	if res.Outcome == processor.Removed {
		t.Errorf("the removal of the older version went ahead: %s", res.Detail)
	}
	if rec := r.record(t, key); rec.Status != state.Succeeded || rec.Sequencer != "0062E9A2B1C3D4E5C0" {
		t.Fatalf("state %s sequencer %s, want the re-upload's success", rec.Status, rec.Sequencer)
	}
	if m, ok := r.readManifest(t, key); !ok || m.Source.Width != 400 {
		t.Fatalf("manifest present=%v describes width %d, want the re-upload's 400", ok, m.Source.Width)
	}
	if bad := r.mixed(key); bad != "" {
		t.Errorf("the re-upload's set is broken: %s", bad)
	}
	r.checkPublished(t, key, true)
}

// Item 2, the other order: once the removal holds its claim, the re-upload's worker waits
// (busy); the removal, finding the source re-created under its claim, processes it instead of
// deleting anything.
func TestReuploadWaitsForARemovalThatHoldsItsClaim(t *testing.T) {
	r := newRig(t, nil)
	const key = "uploads/replaced-later.jpg"
	r.upload(t, key, grayJPEG(t, 500, 400), nil)
	r.mustProcess(t, r.seqEvent(key, trigger.Created, "0062E9A2B1C3D4E5A0"), processor.Succeeded)
	r.deleteSource(t, key)
	other := r.other(t)
	var during processor.Result
	// The removal's first write is its claim.
	r.withFaults(t, faultinject.Rule{Service: "DynamoDB", Operation: "PutItem", Calls: []int{1}, After: func(int) {
		r.upload(t, key, grayJPEG(t, 400, 500), nil)
		during = other.proc.Process(context.Background(), "req-reupload", r.seqEvent(key, trigger.Created, "0062E9A2B1C3D4E5C0"))
	}})
	res := r.proc.Process(context.Background(), "req-remove", r.seqEvent(key, trigger.Removed, "0062E9A2B1C3D4E5B0"))
	if during.Outcome != processor.Failed || failure.Classify(during.Err) != failure.IsTransient {
		t.Fatalf("re-upload while the removal holds its claim: %s %v, want a transient busy", during.Outcome, during.Err)
	}
	// Under its claim the removal finds the source re-created: it processes the current object
	// instead of removing anything.
	if res.Outcome != processor.Succeeded {
		t.Fatalf("removal: %s %v (%s), want the re-created source processed", res.Outcome, res.Err, res.Detail)
	}
	if again := other.proc.Process(context.Background(), "req-reupload-2", r.seqEvent(key, trigger.Created, "0062E9A2B1C3D4E5C0")); again.Outcome != processor.Duplicate {
		t.Fatalf("re-upload redelivered: %s %v (%s)", again.Outcome, again.Err, again.Detail)
	}
	if bad := r.mixed(key); bad != "" {
		t.Errorf("the re-upload's set is broken: %s", bad)
	}
	r.checkPublished(t, key, true)
}

// Item 4: reprocessing never exposes a mixed set. A reader polls the manifest and its outputs
// while a new version is published, and after a new version's attempt fails half-way.
func TestReprocessingNeverExposesAMixedSet(t *testing.T) {
	r := newRig(t, func(c *processor.Config) { c.RetriesPerAttempt = 0 })
	const key = "uploads/mixed.jpg"
	r.upload(t, key, grayJPEG(t, 900, 600), nil)
	if res := r.proc.Process(context.Background(), "req-v1", r.event(key)); res.Outcome != processor.Succeeded {
		t.Fatalf("v1: %s %v", res.Outcome, res.Err)
	}
	var (
		stop  atomic.Bool
		wg    sync.WaitGroup
		seen  sync.Map
		reads atomic.Int64
	)
	wg.Go(func() {
		for !stop.Load() {
			if bad := r.mixed(key); bad != "" {
				seen.Store(bad, true)
			}
			reads.Add(1)
		}
	})
	// v2's attempt fails after its first rendition is copied (every later copy fails).
	r.upload(t, key, append(grayJPEG(t, 600, 900), 0), nil)
	r.withFaults(t, faultinject.Rule{Service: "S3", Operation: "CopyObject", Calls: []int{2, 3, 4, 5, 6, 7, 8, 9, 10}, Fault: faultinject.InternalError})
	if res := r.proc.Process(context.Background(), "req-v2-fails", r.event(key)); res.Outcome != processor.Failed {
		t.Fatalf("v2's first attempt: %s, want failed", res.Outcome)
	}
	if bad := r.mixed(key); bad != "" {
		t.Errorf("after v2's failed attempt: %s", bad)
	}
	if m, _ := r.readManifest(t, key); m.Source.Width != 900 {
		t.Errorf("after v2's failed attempt the manifest describes width %d, want v1's 900", m.Source.Width)
	}
	r.build(t)
	if res := r.proc.Process(context.Background(), "req-v2", r.event(key)); res.Outcome != processor.Succeeded {
		t.Fatalf("v2: %s %v", res.Outcome, res.Err)
	}
	stop.Store(true)
	wg.Wait()
	seen.Range(func(k, _ any) bool {
		t.Errorf("a reader saw a broken set: %s", k)
		return true
	})
	if m, _ := r.readManifest(t, key); m.Source.Width != 600 {
		t.Errorf("the manifest describes width %d, want v2's 600", m.Source.Width)
	}
	r.checkPublished(t, key, true)
	t.Logf("%d reads of the whole set while v2 was published", reads.Load())
}

// Item 5: a quarantine copy goes once the file succeeds, whatever came in between (here a failed
// attempt), and a removal leaves nothing of the user's file anywhere.
func TestQuarantineCopyGoesOnSuccessAndRemoval(t *testing.T) {
	r := newRig(t, func(c *processor.Config) { c.RetriesPerAttempt = 0 })
	const key = "uploads/redeemed.jpg"
	r.upload(t, key, []byte("not an image"), nil)
	if res := r.proc.Process(context.Background(), "req-bad", r.event(key)); res.Outcome != processor.Quarantined {
		t.Fatalf("bad: %s", res.Outcome)
	}
	if n := len(r.list(t, r.quar)); n != 2 {
		t.Fatalf("%d quarantine objects, want the copy and the report", n)
	}
	r.upload(t, key, grayJPEG(t, 400, 300), nil)
	r.withFaults(t, faultinject.Rule{Service: "S3", Operation: "PutObject", Calls: []int{1, 2, 3, 4, 5}, Fault: faultinject.SlowDown})
	if res := r.proc.Process(context.Background(), "req-fails", r.event(key)); res.Outcome != processor.Failed {
		t.Fatalf("faulty attempt: %s", res.Outcome)
	}
	r.build(t)
	if res := r.proc.Process(context.Background(), "req-good", r.event(key)); res.Outcome != processor.Succeeded {
		t.Fatalf("good: %s %v", res.Outcome, res.Err)
	}
	if left := r.list(t, r.quar); len(left) != 0 {
		t.Errorf("quarantine after the file succeeded: %v", left)
	}
	r.deleteSource(t, key)
	removal := r.event(key)
	removal.Action, removal.Name = trigger.Removed, "ObjectRemoved:Delete"
	if res := r.proc.Process(context.Background(), "req-rm", removal); res.Outcome != processor.Removed {
		t.Fatalf("removal: %s %v", res.Outcome, res.Err)
	}
	if left := append(r.list(t, r.quar), r.list(t, r.output)...); len(left) != 0 {
		t.Errorf("left after the removal: %v", left)
	}
}

// Item 5: quarantine writes are fenced. A worker that stalled before its quarantine copy, and was
// taken over meanwhile, writes nothing: the evidence is the new owner's.
func TestStaleWorkerCannotOverwriteQuarantineEvidence(t *testing.T) {
	r := newRig(t, nil)
	const key = "uploads/evidence.jpg"
	r.upload(t, key, []byte("not an image either"), nil)
	other := r.other(t)
	processor.SetClock(other.proc, func() time.Time { return time.Now().Add(time.Hour) })
	var takeover processor.Result
	r.withFaults(t, faultinject.Rule{Service: "S3", Operation: "CopyObject", Calls: []int{1}, Before: func(int) {
		takeover = other.proc.Process(context.Background(), "req-newer", r.event(key))
	}})
	res := r.proc.Process(context.Background(), "req-stalled", r.event(key))
	if takeover.Outcome != processor.Quarantined {
		t.Fatalf("the worker that took over: %s %v", takeover.Outcome, takeover.Err)
	}
	if res.Outcome == processor.Quarantined || res.Err != nil {
		t.Errorf("stalled worker: %s %v (%s), want it to stop", res.Outcome, res.Err, res.Detail)
	}
	rec := r.record(t, key)
	_, report := r.proc.Keys().Quarantine(key, rec.QuarantineGen)
	var rep processor.Report
	if err := json.Unmarshal(r.get(t, r.quar, report), &rep); err != nil || rep.RequestID != "req-newer" {
		t.Errorf("report %+v (%v), want the new owner's", rep, err)
	}
	if n := len(r.list(t, r.quar)); n != 2 {
		t.Errorf("%d quarantine objects, want the owner's copy and report only", n)
	}
}

// Item 6: no source's quarantine key is another's: "x" and "x.error.json" both quarantined
// keep their own reports.
func TestQuarantineKeysDoNotCollide(t *testing.T) {
	r := newRig(t, nil)
	keys := []string{"uploads/x", "uploads/x.error.json"}
	for i, key := range keys {
		r.upload(t, key, []byte(fmt.Sprintf("bad file %d", i)), nil)
		if res := r.proc.Process(context.Background(), "req-"+fmt.Sprint(i), r.event(key)); res.Outcome != processor.Quarantined {
			t.Fatalf("%s: %s", key, res.Outcome)
		}
	}
	for _, key := range keys {
		object, report := r.proc.Keys().Quarantine(key, r.record(t, key).QuarantineGen)
		var rep processor.Report
		if err := json.Unmarshal(r.get(t, r.quar, report), &rep); err != nil || rep.Source.Key != key {
			t.Errorf("%s: its report is %+v (%v)", key, rep, err)
		}
		if body := r.get(t, r.quar, object); !strings.HasPrefix(string(body), "bad file") {
			t.Errorf("%s: its quarantine copy holds %q", key, body)
		}
	}
}

// Item 7: a source S3 will not copy in one request (over 5 GiB) is quarantined with the report
// alone, on the ordinary path and on the exhausted one; neither stays FAILED for ever.
func TestUncopyableSourceIsQuarantinedWithTheReportAlone(t *testing.T) {
	r := newRig(t, func(c *processor.Config) { c.MaxAttempts = 1; c.RetriesPerAttempt = 0 })
	const bad, worn = "uploads/huge-bad.jpg", "uploads/huge-worn.jpg"
	r.upload(t, bad, []byte("not an image, and (we pretend) 6 GiB"), nil)
	r.upload(t, worn, grayJPEG(t, 300, 200), nil)
	// worn: its one attempt fails.
	r.withFaults(t, faultinject.Rule{Service: "S3", Operation: "GetObject", Calls: []int{1, 2, 3, 4, 5}, Fault: faultinject.SlowDown})
	if res := r.proc.Process(context.Background(), "req-worn-1", r.event(worn)); res.Outcome != processor.Failed {
		t.Fatalf("worn's attempt: %s", res.Outcome)
	}
	// S3 refuses every copy, as it does above 5 GiB.
	inj := r.withFaults(t, faultinject.Rule{Service: "S3", Operation: "CopyObject", Fault: faultinject.CopyRefused})
	for _, key := range []string{bad, worn} {
		res := r.proc.Process(context.Background(), "req-"+key, r.event(key))
		if res.Outcome != processor.Quarantined || res.Err != nil {
			t.Fatalf("%s: %s %v, want quarantined", key, res.Outcome, res.Err)
		}
		rec := r.record(t, key)
		if rec.Status != state.Quarantined {
			t.Fatalf("%s: state %s", key, rec.Status)
		}
		object, report := r.proc.Keys().Quarantine(key, rec.QuarantineGen)
		var rep processor.Report
		if err := json.Unmarshal(r.get(t, r.quar, report), &rep); err != nil || rep.SourceCopied || rep.CopyError == "" {
			t.Errorf("%s: report %+v (%v), want the report alone with the copy's error", key, rep, err)
		}
		if _, err := r.objects.Head(context.Background(), r.quar, object); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%s: a quarantine copy exists (%v)", key, err)
		}
	}
	if inj.Calls("S3", "CopyObject") != 2 {
		t.Errorf("%d copies tried, want one per file", inj.Calls("S3", "CopyObject"))
	}
	// Above the one-request limit the copy is not even tried.
	r.build(t)
	processor.SetMaxCopyBytes(r.proc, 10)
	const big = "uploads/big-bad.jpg"
	r.upload(t, big, []byte("not an image, over ten bytes"), nil)
	inj = r.withFaults(t)
	processor.SetMaxCopyBytes(r.proc, 10)
	if res := r.proc.Process(context.Background(), "req-big", r.event(big)); res.Outcome != processor.Quarantined {
		t.Fatalf("big: %s %v", res.Outcome, res.Err)
	}
	if n := inj.Calls("S3", "CopyObject"); n != 0 {
		t.Errorf("%d copies of a source over the limit, want none", n)
	}
}

// Item 9: a claim or a completion whose answer was lost (the SDK retries it and the condition
// then fails on the write itself) recognises its own write: with MAX_ATTEMPTS=1 the file is
// still processed, once.
func TestLostAnswersToStateWritesAreRecognised(t *testing.T) {
	for _, call := range []int{1, 2} { // the claim, the completion
		t.Run(fmt.Sprint("PutItem ", call), func(t *testing.T) {
			r := newRig(t, func(c *processor.Config) { c.MaxAttempts = 1 })
			key := fmt.Sprintf("uploads/lost-%d.jpg", call)
			r.upload(t, key, grayJPEG(t, 300, 200), nil)
			inj := r.withFaults(t, faultinject.Rule{Service: "DynamoDB", Operation: "PutItem", Calls: []int{call}, Fault: faultinject.LostAnswer})
			res := r.proc.Process(context.Background(), "req-lost", r.event(key))
			if res.Outcome != processor.Succeeded || res.Err != nil {
				t.Fatalf("outcome %s err %v (%s), want succeeded", res.Outcome, res.Err, res.Detail)
			}
			if rec := r.record(t, key); rec.Status != state.Succeeded || rec.Attempts != 1 {
				t.Fatalf("state %s attempts %d", rec.Status, rec.Attempts)
			}
			if n := inj.Calls("DynamoDB", "PutItem"); n != 3 {
				t.Errorf("%d PutItem requests, want 3 (the lost one retried once)", n)
			}
		})
	}
}

// Item 8: in an SQS batch, a message whose object another worker holds comes back after a short,
// jittered delay (not the queue's 30-minute visibility), and a redelivered message (a suspect:
// it may have crashed the process last time) is processed after the first-time ones.
func TestSQSBatchRetriesBusySoonAndRedeliveredLast(t *testing.T) {
	r := newRig(t, func(c *processor.Config) { c.QueueURL = "" })
	fake := testenv.NewSQS(t)
	queueURL := fake.Queue("uploads")
	r.cfg.QueueURL = queueURL
	r.build(t)
	r.proc.WithQueue(fake.Client())
	for _, k := range []string{"busy", "first", "again"} {
		r.upload(t, "uploads/"+k+".jpg", grayJPEG(t, 300, 200), nil)
	}
	if _, _, err := r.states.Claim(context.Background(), state.ClaimRequest{
		Bucket: r.staging, Key: "uploads/busy.jpg", ObjectVersion: "etag:other", RecipeVersion: "r", RequestID: "req-other",
		Token: "tok", LeaseUntil: time.Now().Add(time.Hour), MaxAttempts: 5,
	}, time.Now); err != nil {
		t.Fatal(err)
	}
	fake.Put(queueURL, s3Body(r.staging, "uploads/busy.jpg"))
	got, err := fake.Client().ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(queueURL), VisibilityTimeout: 1800})
	if err != nil || len(got.Messages) != 1 {
		t.Fatalf("receive: %v %v", got, err)
	}
	record := func(id, key, receipt string, receives int) map[string]any {
		return map[string]any{"messageId": id, "eventSource": "aws:sqs", "receiptHandle": receipt, "body": s3Body(r.staging, key),
			"attributes": map[string]string{"ApproximateReceiveCount": fmt.Sprint(receives)}}
	}
	batch, _ := json.Marshal(map[string]any{"Records": []any{
		record("m-again", "uploads/again.jpg", "r-again", 3),
		record("m-busy", "uploads/busy.jpg", aws.ToString(got.Messages[0].ReceiptHandle), 1),
		record("m-first", "uploads/first.jpg", "r-first", 1),
	}})
	out, err := r.proc.Handle(context.Background(), batch)
	if err != nil {
		t.Fatal(err)
	}
	if f := out.(events.SQSEventResponse).BatchItemFailures; len(f) != 1 || f[0].ItemIdentifier != "m-busy" {
		t.Fatalf("batch item failures %+v, want the busy message only", f)
	}
	if hidden := fake.HiddenFor(queueURL); len(hidden) != 1 || hidden[0] < 9*time.Second || hidden[0] > 30*time.Second {
		t.Errorf("the busy message is hidden for %v, want 10 to 30 seconds", hidden)
	}
	first, again := r.record(t, "uploads/first.jpg"), r.record(t, "uploads/again.jpg")
	if !first.UpdatedAt.Before(again.UpdatedAt) {
		t.Errorf("the redelivered message was processed at %v, before the first-time one at %v", again.UpdatedAt, first.UpdatedAt)
	}
}

// The manifest PUT whose answer is lost is retried by the SDK with the same If-Match, which now
// fails on the manifest the first try wrote: the worker recognises its own commit (the
// generation it names) instead of taking itself for a stale worker and deleting the set it just
// published.
func TestLostAnswerToTheManifestPutIsRecognised(t *testing.T) {
	r := newRig(t, nil)
	const key = "uploads/lost-manifest.jpg"
	r.upload(t, key, grayJPEG(t, 300, 200), nil)
	r.mustProcess(t, r.event(key), processor.Succeeded) // a manifest exists: the next commit is an If-Match swap
	r.upload(t, key, grayJPEG(t, 200, 300), nil)
	r.withFaults(t, faultinject.Rule{Service: "S3", Operation: "PutObject", Calls: []int{4}, Fault: faultinject.LostAnswer})
	if res := r.proc.Process(context.Background(), "req-lost", r.event(key)); res.Outcome != processor.Succeeded {
		t.Fatalf("outcome %s err %v (%s), want succeeded", res.Outcome, res.Err, res.Detail)
	}
	if bad := r.mixed(key); bad != "" {
		t.Fatalf("after the lost answer: %s", bad)
	}
	if m, _ := r.readManifest(t, key); m.Source.Width != 200 || m.Generation != r.record(t, key).ClaimToken {
		t.Errorf("manifest of width %d, generation %s; want the new version's, of the record's generation", m.Source.Width, m.Generation)
	}
	r.checkPublished(t, key, true)
}
