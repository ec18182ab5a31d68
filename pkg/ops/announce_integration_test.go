package ops_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sluice-dev/sluice/pkg/announce"
	"github.com/sluice-dev/sluice/pkg/cdn"
	"github.com/sluice-dev/sluice/pkg/ops"
	"github.com/sluice-dev/sluice/pkg/processor"
	"github.com/sluice-dev/sluice/pkg/state"
	"github.com/sluice-dev/sluice/pkg/testenv"
	"github.com/sluice-dev/sluice/pkg/trigger"
)

// Outcomes committed by a worker that never announced them (it died in between, or EventBridge
// kept refusing) are found by the reconciler once their writer has had its minute, and its fix (a
// delivery of each one's own event) announces each once: processed, quarantined and deleted alike.
// A later pass finds nothing more to announce, and a replay announces them again under the same ids.
func TestReconcileAnnouncesWhatWasNeverAnnounced(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	r.cfg.EventBus = "sluice-events"
	r.build(t) // a processor without an announcer: its outcomes are committed, never announced
	r.upload(t, "uploads/good.jpg", photo(t, 300, 200))
	r.upload(t, "uploads/bad.jpg", []byte("not an image at all"))
	r.upload(t, "uploads/gone.jpg", photo(t, 200, 100))
	for _, k := range []string{"uploads/good.jpg", "uploads/bad.jpg", "uploads/gone.jpg"} {
		if res := r.proc.Process(ctx, "req", r.event(k)); res.Err != nil {
			t.Fatalf("%s: %v", k, res.Err)
		}
	}
	if _, err := r.env.S3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(r.staging), Key: aws.String("uploads/gone.jpg")}); err != nil {
		t.Fatal(err)
	}
	if res := r.proc.Process(ctx, "req", trigger.ObjectEvent{Action: trigger.Removed, Name: "ObjectRemoved:Delete", Bucket: r.staging, Key: "uploads/gone.jpg"}); res.Outcome != processor.Removed {
		t.Fatalf("removal: %s %v", res.Outcome, res.Err)
	}

	eb := testenv.NewEventBridge(t)
	bus := announce.NewBus(eb.Client(), r.cfg.EventBus)
	r.proc.WithAnnouncer(bus) // the next deliveries announce
	unannounced := func() []string {
		findings, err := r.ops.Reconcile(ctx, r.staging, "uploads/")
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, f := range findings {
			if f.Kind == ops.Unannounced {
				keys = append(keys, f.Key)
			}
		}
		return keys
	}
	if keys := unannounced(); len(keys) != 0 {
		t.Fatalf("unannounced %v within their writers' minute", keys)
	}
	ops.SetClock(r.ops, func() time.Time { return time.Now().Add(2 * time.Minute) })
	want := []string{"uploads/bad.jpg", "uploads/gone.jpg", "uploads/good.jpg"}
	if keys := unannounced(); !slices.Equal(keys, want) {
		t.Fatalf("unannounced %v, want %v", keys, want)
	}
	findings := reconcileFix(t, r.ops, r.staging, "uploads/")
	if len(findings) != 3 {
		t.Errorf("findings %+v, want the three unannounced outcomes only", findings)
	}
	types := map[string]string{"uploads/good.jpg": announce.Processed, "uploads/bad.jpg": announce.Quarantined, "uploads/gone.jpg": announce.Deleted}
	ids := map[string]string{}
	for _, ev := range eb.Events() {
		var d announce.Detail
		if err := json.Unmarshal([]byte(ev.Detail), &d); err != nil {
			t.Fatal(err)
		}
		rec := r.record(t, d.Key)
		if ev.DetailType != types[d.Key] || d.EventID != rec.OutcomeID() || rec.Unannounced() || ids[d.Key] != "" {
			t.Errorf("%s: event %s %s (announced before: %q); record %s, unannounced %v", d.Key, ev.DetailType, d.EventID, ids[d.Key], rec.Status, rec.Unannounced())
		}
		ids[d.Key] = d.EventID
	}
	if len(ids) != 3 {
		t.Fatalf("events for %v, want one per source", ids)
	}
	if keys := unannounced(); len(keys) != 0 {
		t.Errorf("still unannounced after the fix: %v", keys)
	}

	before := len(eb.Events())
	n, err := r.ops.Replay(ctx, bus, ops.ReplayOptions{Bucket: r.staging, Prefix: "uploads/"})
	if err != nil || n != 3 {
		t.Fatalf("replay: %d, %v", n, err)
	}
	for _, ev := range eb.Events()[before:] {
		var d announce.Detail
		_ = json.Unmarshal([]byte(ev.Detail), &d)
		if ids[d.Key] != d.EventID {
			t.Errorf("replayed %s as %s, first announced as %s", d.Key, d.EventID, ids[d.Key])
		}
	}
	if n, _ := r.ops.Replay(ctx, bus, ops.ReplayOptions{Bucket: r.staging, Since: time.Now().Add(time.Hour)}); n != 0 {
		t.Errorf("a replay since a later time announced %d", n)
	}
}

// An invalidation CloudFront refuses (too many in progress) fails the delivery, not the
// outcome: the overwrite stays published, unannounced, and the reconciler's fix invalidates it,
// once; then nothing is left to repair.
func TestReconcileRetriesAFailedInvalidation(t *testing.T) {
	ctx := context.Background()
	cf := testenv.NewCloudFront(t)
	r := newRig(t)
	r.cfg.Distribution = "E2QWRUHAPOMQZL"
	r.build(t)
	r.proc.WithCDN(cdn.New(cf.Client(), r.cfg.Distribution))
	const key = "uploads/cdn.jpg"
	r.upload(t, key, photo(t, 300, 200))
	if res := r.proc.Process(ctx, "req", r.event(key)); res.Outcome != processor.Succeeded {
		t.Fatalf("first: %s %v", res.Outcome, res.Err)
	}
	r.upload(t, key, photo(t, 400, 300))
	cf.Busy(1000)
	res := r.proc.Process(ctx, "req", r.event(key))
	if res.Outcome != processor.Failed || !strings.Contains(fmt.Sprint(res.Err), "TooManyInvalidationsInProgress") {
		t.Fatalf("overwrite with CloudFront refusing: %s %v, want a failure to retry", res.Outcome, res.Err)
	}
	if rec := r.record(t, key); rec.Status != state.Succeeded || !rec.Unannounced() || len(cf.Invalidations()) != 0 {
		t.Fatalf("record %s unannounced %v, %d invalidations", rec.Status, rec.Unannounced(), len(cf.Invalidations()))
	}
	cf.Busy(0)
	ops.SetClock(r.ops, func() time.Time { return time.Now().Add(2 * time.Minute) })
	findings := reconcileFix(t, r.ops, r.staging, "uploads/")
	if len(findings) != 1 || findings[0].Kind != ops.Unannounced || findings[0].Key != key {
		t.Fatalf("findings %+v, want the unannounced overwrite", findings)
	}
	rec := r.record(t, key)
	made := cf.Invalidations()
	if len(made) != 1 || made[0].CallerReference != rec.OutcomeID() || rec.Unannounced() {
		t.Errorf("invalidations %+v (record unannounced %v), want one, named by the outcome", made, rec.Unannounced())
	}
	if again := reconcileFix(t, r.ops, r.staging, "uploads/"); len(again) != 0 || len(cf.Invalidations()) != 1 {
		t.Errorf("a second pass: %+v, %d invalidations", again, len(cf.Invalidations()))
	}
}
