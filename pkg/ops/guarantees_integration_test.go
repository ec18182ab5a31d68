package ops_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sluice-dev/sluice/pkg/awsclient"
	"github.com/sluice-dev/sluice/pkg/faultinject"
	"github.com/sluice-dev/sluice/pkg/metrics"
	"github.com/sluice-dev/sluice/pkg/ops"
	"github.com/sluice-dev/sluice/pkg/processor"
	"github.com/sluice-dev/sluice/pkg/state"
	"github.com/sluice-dev/sluice/pkg/storage"
)

// The reconciler's guarantee: it never deletes what a reader may be served or a live worker may
// still publish. Each test races `reconcile --fix` against one actor; each deleted live outputs
// before the lifecycle rules (issue 13, item 1).

// faulty builds a processor and the operator commands on SDK clients that pass through a fault
// injector with rules (hooks at chosen calls).
func (r *rig) faulty(t *testing.T, rules ...faultinject.Rule) (*processor.Processor, *ops.Ops) {
	t.Helper()
	cfg, _ := r.env.WithFaults(rules...)
	s3c, ddb := awsclient.S3(cfg), awsclient.DynamoDB(cfg)
	p, err := processor.Build(context.Background(), r.cfg, s3c, ddb, slog.New(slog.NewJSONHandler(io.Discard, nil)), metrics.New(io.Discard, "processor"))
	if err != nil {
		t.Fatal(err)
	}
	return p, ops.New(r.cfg, storage.New(s3c), state.New(ddb, r.table, 0), p)
}

// reconcileFix runs reconcile --fix over uploads/ with o, as the operator or the scheduled
// reconciler does.
func reconcileFix(t *testing.T, o *ops.Ops, staging, prefix string) []ops.Finding {
	t.Helper()
	ctx := context.Background()
	findings, err := o.Reconcile(ctx, staging, prefix)
	if err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	if _, err := o.Fix(ctx, staging, prefix, findings, ops.FixOptions{Concurrency: 2}, nil); err != nil {
		t.Fatalf("fix: %v", err)
	}
	return findings
}

// servable asserts what a reader of key's manifest is promised: every output it lists exists
// with the listed checksum.
func (r *rig) servable(t *testing.T, key string) processor.Manifest {
	t.Helper()
	ctx := context.Background()
	_, body, err := r.objects.Read(ctx, r.output, r.proc.Keys().Manifest(key), 1<<20)
	if err != nil {
		t.Fatalf("%s: manifest: %v", key, err)
	}
	m, err := processor.ReadManifest(body)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range m.Outputs {
		_, b, err := r.objects.Read(ctx, r.output, o.Key, 64<<20)
		if err != nil {
			t.Errorf("%s: the manifest lists %s: %v", key, o.Key, err)
			continue
		}
		if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != o.SHA256 {
			t.Errorf("%s: %s does not have the listed checksum", key, o.Key)
		}
	}
	return m
}

// A worker in flight (here: about to commit its manifest) and the served outputs of the version
// it replaces both survive a reconcile --fix that runs meanwhile.
func TestReconcileKeepsInFlightAndServedOutputs(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	const key = "uploads/inflight.jpg"
	r.upload(t, key, photo(t, 300, 200))
	if res := r.proc.Process(ctx, "req-v1", r.event(key)); res.Outcome != processor.Succeeded {
		t.Fatalf("v1: %s %v", res.Outcome, res.Err)
	}
	v1 := r.servable(t, key)
	time.Sleep(1100 * time.Millisecond) // v1's outputs are older than the reconcile run
	r.upload(t, key, photo(t, 200, 300))
	var during processor.Manifest
	// The worker's second GET is its read of the manifest it is about to replace: everything of
	// its generation is written, nothing committed.
	worker, _ := r.faulty(t, faultinject.Rule{Service: "S3", Operation: "GetObject", Calls: []int{2}, Before: func(int) {
		reconcileFix(t, r.ops, r.staging, "uploads/")
		during = r.servable(t, key)
	}})
	if res := worker.Process(ctx, "req-v2", r.event(key)); res.Outcome != processor.Succeeded {
		t.Fatalf("v2 (reconciled while in flight): %s %v (%s)", res.Outcome, res.Err, res.Detail)
	}
	if during.Generation != v1.Generation {
		t.Errorf("while v2 was in flight the manifest named %s, want v1's %s", during.Generation, v1.Generation)
	}
	if v2 := r.servable(t, key); v2.Source.Width != 200 {
		t.Errorf("after v2 the manifest describes a %d px wide source, want v2's 200", v2.Source.Width)
	}
	if again := reconcileFix(t, r.ops, r.staging, "uploads/"); len(again) != 0 {
		t.Errorf("after v2 committed: findings %+v", again)
	}
	r.servable(t, key)
}

// A file that finishes between the reconciler's Scan and its listing of the outputs keeps them.
func TestReconcileKeepsOutputsOfAFileThatFinishedDuringTheRun(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	const key = "uploads/late.jpg"
	r.upload(t, key, photo(t, 300, 200))
	time.Sleep(1100 * time.Millisecond)
	// The reconciler lists the uploads (1), scans the table, then lists the outputs (2): the file
	// is processed right before that second listing, after the Scan saw no record.
	_, o := r.faulty(t, faultinject.Rule{Service: "S3", Operation: "ListObjectsV2", Calls: []int{2}, Before: func(int) {
		if res := r.proc.Process(ctx, "req-late", r.event(key)); res.Outcome != processor.Succeeded {
			t.Errorf("late: %s %v", res.Outcome, res.Err)
		}
	}})
	reconcileFix(t, o, r.staging, "uploads/")
	r.servable(t, key)
	if rec := r.record(t, key); rec.Status != state.Succeeded {
		t.Errorf("state %s", rec.Status)
	}
}

// With STATE_TTL_DAYS, records expire (DynamoDB Local's TTL never fires: the test deletes the
// record as AWS's TTL would). The published outputs stay, and the file is not rendered again.
func TestReconcileKeepsOutputsOfAnExpiredRecord(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	const key = "uploads/expired.jpg"
	r.upload(t, key, photo(t, 300, 200))
	if res := r.proc.Process(ctx, "req", r.event(key)); res.Outcome != processor.Succeeded {
		t.Fatalf("%s %v", res.Outcome, res.Err)
	}
	before := r.servable(t, key)
	if _, err := r.env.DDB.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(r.table),
		Key: map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: state.ID(r.staging, key)}}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	if findings := reconcileFix(t, r.ops, r.staging, "uploads/"); len(findings) != 0 {
		t.Errorf("findings for a published file whose record expired: %+v", findings)
	}
	if after := r.servable(t, key); after.Generation != before.Generation {
		t.Errorf("the file was rendered again: generation %s, was %s", after.Generation, before.Generation)
	}
}

// A reconcile of a narrower prefix leaves every other source's outputs alone.
func TestReconcileLeavesOtherPrefixesAlone(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	for _, key := range []string{"uploads/a/in.jpg", "uploads/b/out.jpg"} {
		r.upload(t, key, photo(t, 300, 200))
		if res := r.proc.Process(ctx, "req", r.event(key)); res.Outcome != processor.Succeeded {
			t.Fatalf("%s: %s %v", key, res.Outcome, res.Err)
		}
	}
	time.Sleep(1100 * time.Millisecond)
	if findings := reconcileFix(t, r.ops, r.staging, "uploads/a/"); len(findings) != 0 {
		t.Errorf("findings: %+v", findings)
	}
	r.servable(t, "uploads/a/in.jpg")
	r.servable(t, "uploads/b/out.jpg")
}
