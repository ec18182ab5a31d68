package reconciler_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image"
	"image/jpeg"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sluice-dev/sluice/pkg/metrics"
	"github.com/sluice-dev/sluice/pkg/ops"
	"github.com/sluice-dev/sluice/pkg/processor"
	"github.com/sluice-dev/sluice/pkg/reconciler"
	"github.com/sluice-dev/sluice/pkg/state"
	"github.com/sluice-dev/sluice/pkg/storage"
	"github.com/sluice-dev/sluice/pkg/testenv"
)

// The scheduled reconciler repairs lost events and dead workers like a delivery would: a file
// FAILED past MAX_ATTEMPTS ends QUARANTINED (max_attempts) instead of being retried forever;
// findings beyond RECONCILE_MAX_FIXES wait for the next run; two runs at once are safe, and a
// run with nothing to do does nothing.
func TestScheduledReconcilerRepairsAndStops(t *testing.T) {
	env := testenv.Open(t)
	staging, output, quar, table := env.Bucket(t), env.Bucket(t), env.Bucket(t), env.Table(t, state.TableDefinition)
	cfg, err := reconciler.LoadConfig(func(k string) string {
		return map[string]string{"STATE_TABLE": table, "OUTPUT_BUCKET": output, "QUARANTINE_BUCKET": quar,
			"STAGING_BUCKET": staging, "MAX_ATTEMPTS": "3", "RECONCILE_MAX_FIXES": "3"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	p, err := processor.Build(ctx, cfg.Processor, env.S3, env.DDB, log, metrics.New(io.Discard, "processor"))
	if err != nil {
		t.Fatal(err)
	}
	states := state.New(env.DDB, table, 0)
	o := ops.New(cfg.Processor, storage.New(env.S3), states, p)
	var emf bytes.Buffer
	rc := reconciler.New(cfg, o, states, log, metrics.New(&emf, "reconciler"))

	var img bytes.Buffer
	if err := jpeg.Encode(&img, image.NewGray(image.Rect(0, 0, 120, 80)), nil); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a", "b", "c", "d", "worn"} {
		if _, err := env.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(staging), Key: aws.String("uploads/" + k + ".jpg"), Body: bytes.NewReader(img.Bytes())}); err != nil {
			t.Fatal(err)
		}
	}
	// worn: FAILED three times already (its deliveries were lost).
	now := time.Now()
	req := state.ClaimRequest{Bucket: staging, Key: "uploads/worn.jpg", ObjectVersion: "etag:x", RecipeVersion: p.RecipeVersion(),
		RequestID: "req-old", LeaseUntil: now.Add(time.Minute), MaxAttempts: 3}
	for i := range 3 {
		req.Token = "tok" + string(rune('0'+i))
		_, rec, err := states.Claim(ctx, req, time.Now)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := states.Finish(ctx, rec, state.Failed, "", time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	// worn's record is for another ETag than the upload's; make it this upload's.
	head, err := storage.New(env.S3).Head(ctx, staging, "uploads/worn.jpg")
	if err != nil {
		t.Fatal(err)
	}
	rec, _, _ := states.Get(ctx, state.ID(staging, "uploads/worn.jpg"))
	rec.ObjectVersion, rec.ObjectETag = "etag:"+head.ETag, head.ETag
	if _, err := states.Replace(ctx, rec, rec.Rev); err != nil {
		t.Fatal(err)
	}

	// The first run stops at its budget of three findings (a, b, c, in key order), repairs them
	// and saves its cursor there.
	first, err := rc.Handle(ctx, json.RawMessage(`{"source":"aws.events"}`))
	if err != nil {
		t.Fatal(err)
	}
	if first.Findings[ops.NeverProcessed] != 3 || first.Fixed.Total != 3 || first.Cursor.Phase != ops.PhaseSources || first.Cursor.After != "uploads/c.jpg" {
		t.Fatalf("first run: %+v", first)
	}
	// Two runs at once resume from it and race for d and worn: each is processed once; the run
	// that finds the other's live claim leaves it (a transient "busy", counted as failed).
	var wg sync.WaitGroup
	var (
		second, third reconciler.Summary
		errs          [2]error
	)
	wg.Go(func() { second, errs[0] = rc.Handle(ctx, nil) })
	wg.Go(func() { third, errs[1] = rc.Handle(ctx, nil) })
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		t.Fatal(err)
	}
	done, quarantined := second.Fixed.Done+third.Fixed.Done, second.Fixed.Quarantined+third.Fixed.Quarantined
	if done != 1 || quarantined != 1 || second.Findings[ops.FailedAttempts] != 1 || second.Cursor.Phase != ops.PhaseDone {
		t.Fatalf("concurrent runs: %d done and %d quarantined, want d done and worn quarantined, once each: %+v / %+v",
			done, quarantined, second, third)
	}
	last, err := rc.Handle(ctx, nil)
	if err != nil || len(last.Findings) != 0 || last.Fixed.Total != 0 {
		t.Fatalf("a run with nothing to do: %+v %v", last, err)
	}
	for _, k := range []string{"a", "b", "c", "d"} {
		if rec, _, _ := states.Get(ctx, state.ID(staging, "uploads/"+k+".jpg")); rec.Status != state.Succeeded {
			t.Errorf("%s: %s", k, rec.Status)
		}
	}
	if rec, _, _ := states.Get(ctx, state.ID(staging, "uploads/worn.jpg")); rec.Status != state.Quarantined || rec.Reason != "max_attempts" {
		t.Errorf("worn: %s %s, want QUARANTINED max_attempts (not retried forever)", rec.Status, rec.Reason)
	}
	if !bytes.Contains(emf.Bytes(), []byte(`"Reconcile_never_processed":3`)) {
		t.Errorf("no finding metric in %s", emf.String())
	}
}
