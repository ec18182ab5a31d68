package ops_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sluice-dev/sluice/pkg/metrics"
	"github.com/sluice-dev/sluice/pkg/ops"
	"github.com/sluice-dev/sluice/pkg/processor"
	"github.com/sluice-dev/sluice/pkg/queue"
	"github.com/sluice-dev/sluice/pkg/recipe"
	"github.com/sluice-dev/sluice/pkg/state"
	"github.com/sluice-dev/sluice/pkg/storage"
	"github.com/sluice-dev/sluice/pkg/testenv"
	"github.com/sluice-dev/sluice/pkg/trigger"
)

type rig struct {
	env                   *testenv.Env
	staging, output, quar string
	table                 string
	cfg                   processor.Config
	proc                  *processor.Processor
	ops                   *ops.Ops
	objects               *storage.Store
	states                *state.Store
}

func newRig(t *testing.T) *rig {
	t.Helper()
	env := testenv.Open(t)
	r := &rig{env: env, staging: env.Bucket(t), output: env.Bucket(t), quar: env.Bucket(t), table: env.Table(t, state.TableDefinition)}
	cfg, err := processor.LoadConfig(func(k string) string {
		return map[string]string{"STATE_TABLE": r.table, "OUTPUT_BUCKET": r.output, "QUARANTINE_BUCKET": r.quar}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	r.cfg = cfg
	r.objects, r.states = storage.New(env.S3), state.New(env.DDB, r.table, 0)
	r.build(t)
	return r
}

// build (re)creates the processor and the operator commands from r.cfg.
func (r *rig) build(t *testing.T) {
	t.Helper()
	p, err := processor.Build(context.Background(), r.cfg, r.env.S3, r.env.DDB, slog.New(slog.NewJSONHandler(io.Discard, nil)), metrics.New(io.Discard, "processor"))
	if err != nil {
		t.Fatal(err)
	}
	r.proc = p
	r.ops = ops.New(r.cfg, r.objects, r.states, p)
}

func (r *rig) upload(t *testing.T, key string, body []byte) {
	t.Helper()
	if _, err := r.env.S3.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(r.staging), Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
}

func (r *rig) record(t *testing.T, key string) state.Record {
	t.Helper()
	rec, found, err := r.states.Get(context.Background(), state.ID(r.staging, key))
	if err != nil || !found {
		t.Fatalf("state of %s: found=%v err=%v", key, found, err)
	}
	return rec
}

func photo(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = uint8(i % 251)
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 80}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// recorder is a Progress that remembers every finished item and can stop the run after n.
type recorder struct {
	mu       sync.Mutex
	total    int64
	outcomes map[string][]processor.Outcome
	kinds    map[ops.Kind]int
	stopAt   int
	stop     func()
}

func newRecorder() *recorder {
	return &recorder{outcomes: map[string][]processor.Outcome{}, kinds: map[ops.Kind]int{}}
}

func (p *recorder) SetTotal(n int64) { p.mu.Lock(); p.total = n; p.mu.Unlock() }

func (p *recorder) Finished(k ops.Kind, key string, res processor.Result) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.outcomes[key] = append(p.outcomes[key], res.Outcome)
	p.kinds[k]++
	if p.stop != nil && p.kinds[ops.KindDone] == p.stopAt {
		p.stop()
	}
}

// A backfill stopped half-way processes only the rest when run again, and each object once;
// objects outside the prefix or the date window are not touched.
func TestBackfillInterruptedThenResumed(t *testing.T) {
	r := newRig(t)
	const n = 12
	for i := range n {
		r.upload(t, fmt.Sprintf("uploads/bf/%02d.jpg", i), photo(t, 120+i, 90))
	}
	r.upload(t, "uploads/other/x.jpg", photo(t, 50, 50))
	opt := ops.BackfillOptions{Bucket: r.staging, Prefix: "uploads/bf/", Concurrency: 2}

	if c, err := r.ops.Backfill(context.Background(), ops.BackfillOptions{Bucket: r.staging, Prefix: "uploads/bf/", From: time.Now().Add(time.Hour)}, nil); err != nil || c.Total != 0 {
		t.Fatalf("a window in the future: %+v %v", c, err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	first := newRecorder()
	first.stopAt, first.stop = 5, cancel
	c1, err := r.ops.Backfill(ctx, opt, first)
	cancel()
	if err == nil || c1.Total != n || c1.Done < 5 || c1.Done >= n {
		t.Fatalf("interrupted run: %+v err %v, want stopped after 5 of %d", c1, err, n)
	}
	second := newRecorder()
	c2, err := r.ops.Backfill(context.Background(), opt, second)
	if err != nil {
		t.Fatal(err)
	}
	if c2.Done != n-c1.Done || c2.Skipped != c1.Done || c2.Failed+c2.Quarantined != 0 {
		t.Fatalf("resumed run: %+v after %+v", c2, c1)
	}
	for i := range n {
		key := fmt.Sprintf("uploads/bf/%02d.jpg", i)
		succeeded := 0
		for _, o := range append(first.outcomes[key], second.outcomes[key]...) {
			if o == processor.Succeeded {
				succeeded++
			}
		}
		if rec := r.record(t, key); succeeded != 1 || rec.Status != state.Succeeded || rec.Attempts != 1 {
			t.Errorf("%s: processed %d times, state %s attempts %d", key, succeeded, rec.Status, rec.Attempts)
		}
	}
	if _, found, _ := r.states.Get(context.Background(), state.ID(r.staging, "uploads/other/x.jpg")); found {
		t.Error("an object outside the prefix was processed")
	}
}

// Changing the recipe makes a backfill process everything again; an unchanged one skips it.
func TestBackfillPicksUpARecipeChange(t *testing.T) {
	r := newRig(t)
	for i := range 3 {
		r.upload(t, fmt.Sprintf("uploads/r/%d.jpg", i), photo(t, 300, 200))
	}
	opt := ops.BackfillOptions{Bucket: r.staging, Prefix: "uploads/r/", Concurrency: 2}
	if c, err := r.ops.Backfill(context.Background(), opt, nil); err != nil || c.Done != 3 {
		t.Fatalf("first backfill %+v %v", c, err)
	}
	if c, err := r.ops.Backfill(context.Background(), opt, nil); err != nil || c.Skipped != 3 || c.Done != 0 {
		t.Fatalf("same recipe: %+v %v, want all skipped", c, err)
	}
	r.cfg.Recipe.Renditions = append(r.cfg.Recipe.Renditions, recipe.Rendition{Name: "tiny", Mode: recipe.Fill, Width: 64, Height: 64, Format: recipe.Auto})
	r.build(t)
	if c, err := r.ops.Backfill(context.Background(), opt, nil); err != nil || c.Done != 3 {
		t.Fatalf("new recipe: %+v %v, want all processed again", c, err)
	}
	if rec := r.record(t, "uploads/r/0.jpg"); len(rec.Outputs) != 4 || rec.RecipeVersion != r.proc.RecipeVersion() {
		t.Fatalf("state after the recipe change: %d outputs, recipe %s", len(rec.Outputs), rec.RecipeVersion)
	}
}

// Files quarantined by a limit are processed by a redrive once the limit is raised; their
// quarantine copies go; a second redrive finds nothing to do.
func TestRedriveAfterALimitIsRaised(t *testing.T) {
	r := newRig(t)
	r.cfg.Limits.MaxPixels = 10_000
	r.build(t)
	for i := range 3 {
		r.upload(t, fmt.Sprintf("uploads/big/%d.jpg", i), photo(t, 200, 100))
	}
	r.upload(t, "uploads/big/junk.jpg", []byte("not an image"))
	if c, err := r.ops.Backfill(context.Background(), ops.BackfillOptions{Bucket: r.staging, Prefix: "uploads/big/"}, nil); err != nil || c.Quarantined != 4 {
		t.Fatalf("backfill under the low limit: %+v %v", c, err)
	}
	evidence := map[string]string{}
	for i := range 3 {
		key := fmt.Sprintf("uploads/big/%d.jpg", i)
		evidence[key], _ = r.proc.Keys().Quarantine(key, r.record(t, key).QuarantineGen)
	}
	r.cfg.Limits.MaxPixels = processor.DefaultMaxPixels
	r.build(t)
	c, err := r.ops.Redrive(context.Background(), ops.RedriveOptions{Status: state.Quarantined, Reason: "too_many_pixels", Rate: 50}, nil)
	if err != nil || c.Total != 3 || c.Done != 3 {
		t.Fatalf("redrive: %+v %v", c, err)
	}
	for i := range 3 {
		key := fmt.Sprintf("uploads/big/%d.jpg", i)
		if rec := r.record(t, key); rec.Status != state.Succeeded || rec.Attempts != 1 {
			t.Errorf("%s: %s attempts %d", key, rec.Status, rec.Attempts)
		}
		if _, err := r.objects.Head(context.Background(), r.quar, evidence[key]); err == nil {
			t.Errorf("%s: quarantine copy still there after the redrive succeeded", key)
		}
	}
	if rec := r.record(t, "uploads/big/junk.jpg"); rec.Status != state.Quarantined {
		t.Errorf("junk: %s, want still quarantined (another reason)", rec.Status)
	}
	if c, err := r.ops.Redrive(context.Background(), ops.RedriveOptions{Status: state.Quarantined, Reason: "too_many_pixels"}, nil); err != nil || c.Total != 0 {
		t.Errorf("second redrive: %+v %v", c, err)
	}
}

// Reconcile finds each kind of inconsistency, injected one per upload, and Fix repairs them all.
func TestReconcileFindsAndFixesEachInconsistency(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	for _, k := range []string{"a", "b", "c", "d", "e", "f"} {
		r.upload(t, "uploads/"+k+".jpg", photo(t, 200, 150))
	}
	for _, k := range []string{"b", "c", "d"} {
		if res := r.proc.Process(ctx, "req-"+k, r.event("uploads/"+k+".jpg")); res.Outcome != processor.Succeeded {
			t.Fatalf("%s: %s %v", k, res.Outcome, res.Err)
		}
	}
	// b: an output deleted; c: an output replaced by other bytes; d: the upload deleted.
	if err := r.objects.Delete(ctx, r.output, rendition(r.record(t, "uploads/b.jpg"), "thumb")); err != nil {
		t.Fatal(err)
	}
	if _, err := r.objects.Put(ctx, storage.Put{Bucket: r.output, Key: rendition(r.record(t, "uploads/c.jpg"), "medium"), Body: []byte("junk"), ContentType: "image/jpeg"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.env.S3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(r.staging), Key: aws.String("uploads/d.jpg")}); err != nil {
		t.Fatal(err)
	}
	// e: a worker died (lease expired); f: an attempt failed and no delivery came back.
	past := time.Now().Add(-time.Hour)
	claim := func(key string) state.Record {
		_, rec, err := r.states.Claim(ctx, state.ClaimRequest{Bucket: r.staging, Key: key, ObjectVersion: "etag:x", RecipeVersion: "r",
			RequestID: "req-dead", Token: "tok-" + key, LeaseUntil: past, MaxAttempts: 5}, func() time.Time { return past })
		if err != nil {
			t.Fatal(err)
		}
		return rec
	}
	claim("uploads/e.jpg")
	if _, err := r.states.Finish(ctx, claim("uploads/f.jpg"), state.Failed, "", time.Now()); err != nil {
		t.Fatal(err)
	}
	// g: a rendition and a quarantine report a dead claim left for a source that has neither an
	// upload nor a record.
	const deadGen = "0123456789abcdef01234567"
	meta := map[string]string{"sluice-source-bucket": r.staging, "sluice-source-key": "uploads%2Fzombie.jpg", "sluice-generation": deadGen}
	zombie := r.proc.Keys().Final("uploads/zombie.jpg", deadGen, "large", "jpg")
	_, zombieReport := r.proc.Keys().Quarantine("uploads/zombie.jpg", deadGen)
	if _, err := r.objects.Put(ctx, storage.Put{Bucket: r.output, Key: zombie, Body: []byte("x"), ContentType: "image/jpeg", Metadata: meta}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.objects.Put(ctx, storage.Put{Bucket: r.quar, Key: zombieReport, Body: []byte("{}"), ContentType: "application/json", Metadata: meta}); err != nil {
		t.Fatal(err)
	}
	// h: quarantined, then the upload deleted and the removal event lost: the copy must not stay.
	r.upload(t, "uploads/h.jpg", []byte("not an image"))
	if res := r.proc.Process(ctx, "req-h", r.event("uploads/h.jpg")); res.Outcome != processor.Quarantined {
		t.Fatalf("h: %s %v", res.Outcome, res.Err)
	}
	hEvidence, _ := r.proc.Keys().Quarantine("uploads/h.jpg", r.record(t, "uploads/h.jpg").QuarantineGen)
	if _, err := r.env.S3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(r.staging), Key: aws.String("uploads/h.jpg")}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // S3 times are to the second: the objects above are older than the run

	findings, err := r.ops.Reconcile(ctx, r.staging, "uploads/")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]ops.FindingKind{}
	for _, f := range findings {
		got[f.Key] = f.Kind
	}
	want := map[string]ops.FindingKind{
		"uploads/a.jpg": ops.NeverProcessed, "uploads/b.jpg": ops.OutputMissing, "uploads/c.jpg": ops.OutputCorrupt,
		"uploads/d.jpg": ops.SourceMissing, "uploads/e.jpg": ops.Stuck, "uploads/f.jpg": ops.FailedAttempts,
		zombie: ops.OrphanedOutput, zombieReport: ops.OrphanedQuarantine, "uploads/h.jpg": ops.SourceMissing,
	}
	if len(findings) != len(want) {
		t.Errorf("%d findings, want %d: %+v", len(findings), len(want), findings)
	}
	for k, kind := range want {
		if got[k] != kind {
			t.Errorf("%s: found %q, want %q", k, got[k], kind)
		}
	}

	for i := 1; i < len(findings); i++ {
		if findings[i-1].Kind != ops.SourceMissing && findings[i].Kind == ops.SourceMissing {
			t.Errorf("findings out of priority order: %+v", findings)
		}
	}
	// The same pass run by runs that each stop at their first finding or page (a deadline
	// already past) resumes where each stopped and finds the same, no more.
	var (
		cur     ops.Cursor
		resumed []ops.Finding
		runs    int
	)
	for ; runs < 100 && (runs == 0 || cur.Phase != ops.PhaseDone); runs++ {
		part, next, err := r.ops.ReconcileFrom(ctx, r.staging, "uploads/", cur, ops.ReconcileOptions{SamplePercent: 100, MaxFindings: 1, Until: time.Now().Add(-time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		resumed, cur = append(resumed, part...), next
	}
	sortFindings := func(fs []ops.Finding) []string {
		var out []string
		for _, f := range fs {
			out = append(out, string(f.Kind)+" "+f.Key)
		}
		slices.Sort(out)
		return out
	}
	if a, b := sortFindings(findings), sortFindings(resumed); !slices.Equal(a, b) || runs < len(want) {
		t.Errorf("resumed in %d runs, found %q; one run found %q", runs, b, a)
	}

	c, err := r.ops.Fix(ctx, r.staging, "uploads/", findings, ops.FixOptions{Concurrency: 2}, nil)
	if err != nil || c.Failed != 0 || c.Done != int64(len(want)) {
		t.Fatalf("fix: %+v %v", c, err)
	}
	if again, err := r.ops.Reconcile(ctx, r.staging, "uploads/"); err != nil || len(again) != 0 {
		t.Fatalf("after the fix: %+v %v", again, err)
	}
	for _, k := range []string{"uploads/d.jpg", "uploads/h.jpg"} {
		if rec := r.record(t, k); rec.Status != state.Deleted {
			t.Errorf("%s: %s, want DELETED", k, rec.Status)
		}
	}
	for _, l := range []struct{ bucket, key string }{{r.output, zombie}, {r.quar, zombieReport}, {r.quar, hEvidence}} {
		if _, err := r.objects.Head(ctx, l.bucket, l.key); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("s3://%s/%s still there after the fix (%v)", l.bucket, l.key, err)
		}
	}
}

// rendition is the key of rec's published rendition name.
func rendition(rec state.Record, name string) string {
	for _, o := range rec.Outputs {
		if o.Name == name {
			return o.Key
		}
	}
	return ""
}

func (r *rig) event(key string) trigger.ObjectEvent {
	return trigger.ObjectEvent{Action: trigger.Created, Name: "ObjectCreated:Put", Bucket: r.staging, Key: key}
}

// A backfill through the queue sends one S3-shaped message per due object; the deployed
// processor, fed those messages as an SQS batch, processes each; the next backfill sends nothing.
func TestBackfillThroughTheQueue(t *testing.T) {
	r := newRig(t)
	for i := range 4 {
		r.upload(t, fmt.Sprintf("uploads/q/%d.jpg", i), photo(t, 160, 120))
	}
	fake := testenv.NewSQS(t)
	url := fake.Queue("processing")
	opt := ops.BackfillOptions{Bucket: r.staging, Prefix: "uploads/q/", Via: queue.Target{Queue: queue.New(fake.Client()), URL: url}}
	c, err := r.ops.Backfill(context.Background(), opt, nil)
	if err != nil || c.Done != 4 || len(fake.Bodies(url)) != 4 {
		t.Fatalf("backfill via the queue: %+v %v; %d messages", c, err, len(fake.Bodies(url)))
	}
	var records []map[string]string
	for i, body := range fake.Bodies(url) {
		records = append(records, map[string]string{"messageId": fmt.Sprint("m", i), "eventSource": "aws:sqs", "body": body})
	}
	batch, _ := json.Marshal(map[string]any{"Records": records})
	out, err := r.proc.Handle(lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "req-q"}), batch)
	if err != nil || len(out.(events.SQSEventResponse).BatchItemFailures) != 0 {
		t.Fatalf("the processor on the sent batch: %+v %v", out, err)
	}
	for i := range 4 {
		if rec := r.record(t, fmt.Sprintf("uploads/q/%d.jpg", i)); rec.Status != state.Succeeded {
			t.Errorf("%d: %s", i, rec.Status)
		}
	}
	if c, err := r.ops.Backfill(context.Background(), opt, nil); err != nil || c.Done != 0 || c.Skipped != 4 {
		t.Fatalf("second backfill via the queue: %+v %v", c, err)
	}
}
