package processor_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sluice-dev/sluice/pkg/failure"
	"github.com/sluice-dev/sluice/pkg/faultinject"
	"github.com/sluice-dev/sluice/pkg/processor"
	"github.com/sluice-dev/sluice/pkg/state"
	"github.com/sluice-dev/sluice/pkg/trigger"
)

// seqEvent is an S3 event for key with a sequencer.
func (r *rig) seqEvent(key string, action trigger.Action, seq string) trigger.ObjectEvent {
	name := "ObjectCreated:Put"
	if action == trigger.Removed {
		name = "ObjectRemoved:Delete"
	}
	return trigger.ObjectEvent{Action: action, Name: name, Bucket: r.staging, Key: key, Sequencer: seq}
}

func (r *rig) deleteSource(t *testing.T, key string) {
	t.Helper()
	if _, err := r.env.S3.DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: aws.String(r.staging), Key: aws.String(key)}); err != nil {
		t.Fatal(err)
	}
}

func (r *rig) mustProcess(t *testing.T, ev trigger.ObjectEvent, want processor.Outcome) processor.Result {
	t.Helper()
	res := r.proc.Process(context.Background(), "req-"+ev.Sequencer, ev)
	if res.Outcome != want || (want != processor.Failed && res.Err != nil) {
		t.Fatalf("%s %s (sequencer %s): outcome %s err %v (%s), want %s", ev.Action, ev.Key, ev.Sequencer, res.Outcome, res.Err, res.Detail, want)
	}
	return res
}

// An event older than the one the record follows is ignored: the outputs stay the newer
// version's.
func TestOlderEventIsIgnored(t *testing.T) {
	r := newRig(t, nil)
	const key = "uploads/ordered.jpg"
	r.upload(t, key, grayJPEG(t, 500, 400), nil)
	r.mustProcess(t, r.seqEvent(key, trigger.Created, "0062E9A2B1C3D4E5A0"), processor.Succeeded)
	r.upload(t, key, grayJPEG(t, 400, 500), nil)
	r.mustProcess(t, r.seqEvent(key, trigger.Created, "0062E9A2B1C3D4E5C0"), processor.Succeeded)
	newer := r.record(t, key)

	r.mustProcess(t, r.seqEvent(key, trigger.Created, "0062E9A2B1C3D4E5B0"), processor.Stale)
	// A removal event for a key that still has an object looks at the current object: here an
	// older one than the record follows.
	r.mustProcess(t, r.seqEvent(key, trigger.Removed, "0062E9A2B1C3D4E5B1"), processor.Stale)
	if rec := r.record(t, key); rec.Rev != newer.Rev || rec.Status != state.Succeeded || rec.Sequencer != "0062E9A2B1C3D4E5C0" {
		t.Fatalf("a late event changed the record: %+v", rec)
	}
	if img := decode(t, r.get(t, r.output, r.rendition(t, key, "large"))); img.Bounds().Dx() != 400 {
		t.Fatalf("large rendition is %v wide, want the newer version's 400", img.Bounds().Dx())
	}
}

// ObjectRemoved deletes the source's outputs (manifest first) and leaves a DELETED tombstone;
// a repeated removal is a duplicate, a late creation event orders before the tombstone, and a
// re-upload is processed afresh.
func TestRemovalDeletesOutputsAndLeavesATombstone(t *testing.T) {
	r := newRig(t, nil)
	const key = "uploads/removed.jpg"
	body := grayJPEG(t, 500, 400)
	r.upload(t, key, body, nil)
	r.mustProcess(t, r.seqEvent(key, trigger.Created, "0062E9A2B1C3D4E5A0"), processor.Succeeded)
	if n := len(r.list(t, r.output)); n != 4 {
		t.Fatalf("%d output keys before the removal, want 3 renditions and a manifest", n)
	}

	r.deleteSource(t, key)
	r.mustProcess(t, r.seqEvent(key, trigger.Removed, "0062E9A2B1C3D4E5B0"), processor.Removed)
	if keys := r.list(t, r.output); len(keys) != 0 {
		t.Fatalf("outputs left after the removal: %v", keys)
	}
	rec := r.record(t, key)
	if rec.Status != state.Deleted || rec.Sequencer != "0062E9A2B1C3D4E5B0" || len(rec.Outputs) != 0 || rec.Claimed() {
		t.Fatalf("tombstone %+v", rec)
	}
	h := rec.History
	if claim, last := h[len(h)-2], h[len(h)-1]; claim.From != state.Succeeded || claim.To != state.Removing || last.To != state.Deleted {
		t.Fatalf("audit trail ends with %+v, %+v; want SUCCEEDED → REMOVING → DELETED", claim, last)
	}
	r.mustProcess(t, r.seqEvent(key, trigger.Removed, "0062E9A2B1C3D4E5B0"), processor.Duplicate)

	r.upload(t, key, body, nil) // the same bytes again: same ETag, but a new object
	r.mustProcess(t, r.seqEvent(key, trigger.Created, "0062E9A2B1C3D4E5A0"), processor.Stale)
	r.mustProcess(t, r.seqEvent(key, trigger.Created, "0062E9A2B1C3D4E5C0"), processor.Succeeded)
	if rec := r.record(t, key); rec.Status != state.Succeeded || rec.Attempts != 1 || len(rec.Outputs) != 3 {
		t.Fatalf("re-created source: %+v", rec)
	}
}

// A quarantined source's removal deletes its quarantine copy and report; a removal with no
// record leaves only a tombstone; REMOVE_OUTPUTS=false ignores removals.
func TestRemovalOfQuarantinedAndUnknownSources(t *testing.T) {
	r := newRig(t, nil)
	const bad = "uploads/bad.jpg"
	r.upload(t, bad, []byte("not an image at all"), nil)
	r.mustProcess(t, r.seqEvent(bad, trigger.Created, "01"), processor.Quarantined)
	if keys := r.list(t, r.quar); len(keys) != 2 {
		t.Fatalf("quarantine holds %v, want the copy and its report", keys)
	}
	r.deleteSource(t, bad)
	r.mustProcess(t, r.seqEvent(bad, trigger.Removed, "02"), processor.Removed)
	if keys := r.list(t, r.quar); len(keys) != 0 {
		t.Fatalf("quarantine still holds %v", keys)
	}

	r.mustProcess(t, r.seqEvent("uploads/never-seen.jpg", trigger.Removed, "05"), processor.Removed)
	if rec := r.record(t, "uploads/never-seen.jpg"); rec.Status != state.Deleted || rec.Sequencer != "05" {
		t.Fatalf("tombstone %+v", rec)
	}
	r.upload(t, "uploads/never-seen.jpg", grayJPEG(t, 64, 64), nil)
	r.mustProcess(t, r.seqEvent("uploads/never-seen.jpg", trigger.Created, "04"), processor.Stale)

	off := newRig(t, func(c *processor.Config) { c.RemoveOutputs = false })
	off.upload(t, "uploads/kept.jpg", grayJPEG(t, 64, 64), nil)
	off.mustProcess(t, off.seqEvent("uploads/kept.jpg", trigger.Created, "01"), processor.Succeeded)
	off.deleteSource(t, "uploads/kept.jpg")
	off.mustProcess(t, off.seqEvent("uploads/kept.jpg", trigger.Removed, "02"), processor.Skipped)
	if rec := off.record(t, "uploads/kept.jpg"); rec.Status != state.Succeeded || len(off.list(t, off.output)) != 4 {
		t.Fatalf("REMOVE_OUTPUTS=false: state %s, outputs %v", rec.Status, off.list(t, off.output))
	}
}

// A removal while a worker holds a live lease waits (transient failure): the worker would
// otherwise publish after the removal.
func TestRemovalWaitsForALiveWorker(t *testing.T) {
	r := newRig(t, nil)
	const key = "uploads/busy.jpg"
	_, claimed, err := r.states.Claim(context.Background(), state.ClaimRequest{
		Bucket: r.staging, Key: key, ObjectVersion: "etag:x", RecipeVersion: "r", RequestID: "req-worker",
		Token: "tok", LeaseUntil: time.Now().Add(time.Minute), MaxAttempts: 5,
	}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	res := r.mustProcess(t, r.seqEvent(key, trigger.Removed, "09"), processor.Failed)
	if failure.Classify(res.Err) != failure.IsTransient {
		t.Fatalf("err %v, want transient", res.Err)
	}
	if rec := r.record(t, key); rec.Rev != claimed.Rev || rec.Status != state.Processing {
		t.Fatalf("the removal touched a live claim: %+v", rec)
	}
}

// A worker that passed its lease check and then stalled past its lease cannot replace what the
// claim that took over published: each final key and the manifest carry the claim's revision
// as a fencing token, checked (and, on S3, enforced as a write precondition) before every write.
func TestStaleWorkerCannotReplaceANewerClaimsOutputs(t *testing.T) {
	// Where the other worker claims and publishes everything while this one stalls: while it
	// publishes into its generation (its first copy), between its lease check and its read of the
	// manifest (its second GET), and between that read and its conditional put of the manifest
	// (its fourth PUT).
	for _, at := range []faultinject.Rule{
		{Service: "S3", Operation: "CopyObject", Calls: []int{1}},
		{Service: "S3", Operation: "GetObject", Calls: []int{2}},
		{Service: "S3", Operation: "PutObject", Calls: []int{4}},
	} {
		t.Run(fmt.Sprintf("takeover before %s %d", at.Operation, at.Calls[0]), func(t *testing.T) {
			r := newRig(t, nil)
			const key = "uploads/fenced.jpg"
			r.upload(t, key, grayJPEG(t, 500, 400), nil)
			newer := *r // the same buckets and table, another processor
			newer.build(t)
			processor.SetClock(newer.proc, func() time.Time { return time.Now().Add(time.Hour) }) // past the stalled worker's lease

			var takeover processor.Result
			at.Before = func(int) { takeover = newer.proc.Process(context.Background(), "req-newer", r.event(key)) }
			r.withFaults(t, at)
			res := r.proc.Process(context.Background(), "req-stalled", r.event(key))
			if takeover.Outcome != processor.Succeeded {
				t.Fatalf("the worker that took over: %s %v (%s)", takeover.Outcome, takeover.Err, takeover.Detail)
			}
			if res.Outcome != processor.Skipped || res.Err != nil {
				t.Fatalf("stalled worker: outcome %s err %v (%s), want skipped", res.Outcome, res.Err, res.Detail)
			}
			rec := r.record(t, key)
			if rec.Status != state.Succeeded || rec.LeaseOwner != "req-newer" || rec.Attempts != 2 {
				t.Fatalf("state %+v, want the newer claim's success", rec)
			}
			if temps := r.checkPublished(t, key, true); len(temps) != 0 {
				t.Errorf("temp objects left: %v", temps)
			}
			keys := r.list(t, r.output)
			if len(keys) != 4 {
				t.Errorf("output keys %v, want the newer generation's 3 renditions and the manifest", keys)
			}
			for _, k := range keys {
				o, err := r.objects.Head(context.Background(), r.output, k)
				if err != nil {
					t.Fatal(err)
				}
				if o.Metadata["sluice-fence"] != strconv.FormatInt(rec.Fence, 10) || o.Metadata["sluice-generation"] != rec.ClaimToken {
					t.Errorf("%s carries fence %q generation %q, want the newer claim's %d %s", k, o.Metadata["sluice-fence"], o.Metadata["sluice-generation"], rec.Fence, rec.ClaimToken)
				}
			}
		})
	}
}

// S3 compares sequencers after right-padding the shorter with zeros: a newer upload whose
// sequencer is shorter is processed, not dropped as stale, and the record follows it.
func TestShorterNewerSequencerIsNotStale(t *testing.T) {
	r := newRig(t, nil)
	const key = "uploads/short-sequencer.jpg"
	r.upload(t, key, grayJPEG(t, 500, 400), nil)
	r.mustProcess(t, r.seqEvent(key, trigger.Created, "0062E9A2B1C3D4E5A0"), processor.Succeeded)
	r.upload(t, key, grayJPEG(t, 400, 500), nil)
	r.mustProcess(t, r.seqEvent(key, trigger.Created, "0063"), processor.Succeeded)
	if rec := r.record(t, key); rec.Sequencer != "0063" {
		t.Fatalf("record follows sequencer %q, want the newer 0063", rec.Sequencer)
	}
	// The older event, longer, is stale against the shorter newer one.
	r.mustProcess(t, r.seqEvent(key, trigger.Created, "0062E9A2B1C3D4E5B0"), processor.Stale)
	r.deleteSource(t, key)
	r.mustProcess(t, r.seqEvent(key, trigger.Removed, "00630001"), processor.Removed)
}
