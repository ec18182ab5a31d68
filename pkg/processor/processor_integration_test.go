package processor_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sluice-dev/sluice/pkg/localrun"
	"github.com/sluice-dev/sluice/pkg/metrics"
	"github.com/sluice-dev/sluice/pkg/processor"
	"github.com/sluice-dev/sluice/pkg/recipe"
	"github.com/sluice-dev/sluice/pkg/render"
	"github.com/sluice-dev/sluice/pkg/state"
	"github.com/sluice-dev/sluice/pkg/storage"
	"github.com/sluice-dev/sluice/pkg/testenv"
	"github.com/sluice-dev/sluice/pkg/trigger"
)

// rig is one processor on its own buckets and table.
type rig struct {
	env                   *testenv.Env
	staging, output, quar string
	table                 string
	cfg                   processor.Config
	proc                  *processor.Processor
	states                *state.Store
	objects               *storage.Store
}

func newRig(t *testing.T, tweak func(*processor.Config)) *rig {
	t.Helper()
	env := testenv.Open(t)
	r := &rig{env: env, staging: env.Bucket(t), output: env.Bucket(t), quar: env.Bucket(t), table: env.Table(t, state.TableDefinition)}
	cfg, err := processor.LoadConfig(func(k string) string {
		return map[string]string{"STATE_TABLE": r.table, "OUTPUT_BUCKET": r.output, "QUARANTINE_BUCKET": r.quar}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	if tweak != nil {
		tweak(&cfg)
	}
	r.cfg = cfg
	r.build(t)
	return r
}

// build (re)creates the processor, as a cold start does.
func (r *rig) build(t *testing.T) {
	t.Helper()
	r.buildOn(t, r.env.S3, r.env.DDB)
}

// buildOn creates the processor on the given SDK clients.
func (r *rig) buildOn(t *testing.T, s3c *s3.Client, ddb *dynamodb.Client) {
	t.Helper()
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	p, err := processor.Build(context.Background(), r.cfg, s3c, ddb, log, metrics.New(io.Discard, "processor"))
	if err != nil {
		t.Fatal(err)
	}
	r.proc = p
	r.states = state.New(r.env.DDB, r.table, 0)
	r.objects = storage.New(r.env.S3)
}

func (r *rig) upload(t *testing.T, key string, body []byte, meta map[string]string) {
	t.Helper()
	_, err := r.env.S3.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(r.staging), Key: aws.String(key), Body: bytes.NewReader(body), Metadata: meta,
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (r *rig) event(key string) trigger.ObjectEvent {
	return trigger.ObjectEvent{Action: trigger.Created, Name: "ObjectCreated:Put", Bucket: r.staging, Key: key}
}

func (r *rig) get(t *testing.T, bucket, key string) []byte {
	t.Helper()
	out, err := r.env.S3.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("get s3://%s/%s: %v", bucket, key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rendition is the key of key's rendition name in the generation its manifest publishes.
func (r *rig) rendition(t *testing.T, key, name string) string {
	t.Helper()
	m, err := processor.ReadManifest(r.get(t, r.output, r.proc.Keys().Manifest(key)))
	if err != nil {
		t.Fatalf("manifest of %s: %v", key, err)
	}
	for _, o := range m.Outputs {
		if o.Name == name {
			return o.Key
		}
	}
	t.Fatalf("manifest of %s lists no %s rendition: %+v", key, name, m.Outputs)
	return ""
}

func (r *rig) list(t *testing.T, bucket string) []string {
	t.Helper()
	return sortedKeys(listAll(t, r, bucket))
}

func (r *rig) record(t *testing.T, key string) state.Record {
	t.Helper()
	rec, found, err := r.states.Get(context.Background(), state.ID(r.staging, key))
	if err != nil || !found {
		t.Fatalf("state of %s: found=%v err=%v", key, found, err)
	}
	return rec
}

// grayJPEG is a uniform mid-gray photo-sized JPEG: any watermark pixel stands out on it.
func grayJPEG(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = 128
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func decode(t *testing.T, b []byte) image.Image {
	t.Helper()
	img, _, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// deviation is the largest distance of any pixel in box from mid-gray.
func deviation(img image.Image, box image.Rectangle) int {
	worst := 0
	for y := box.Min.Y; y < box.Max.Y; y++ {
		for x := box.Min.X; x < box.Max.X; x++ {
			g := color.GrayModel.Convert(img.At(x, y)).(color.Gray).Y
			worst = max(worst, abs(int(g)-128))
		}
	}
	return worst
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func TestJPEGBecomesThreeVerifiedRenditions(t *testing.T) {
	r := newRig(t, nil)
	const key = "uploads/2026/gray photo.jpg"
	src := grayJPEG(t, 3000, 2000)
	r.upload(t, key, src, nil)

	res := r.proc.Process(context.Background(), "req-1", r.event(key))
	if res.Outcome != processor.Succeeded || res.Err != nil {
		t.Fatalf("outcome %s err %v (%s)", res.Outcome, res.Err, res.Detail)
	}
	want := map[string][2]int{"large": {2048, 1365}, "medium": {1024, 683}, "thumb": {256, 256}}
	wm, err := render.DecodeWatermark(render.DefaultWatermark)
	if err != nil {
		t.Fatal(err)
	}
	rec := r.record(t, key)
	if rec.Status != state.Succeeded || rec.Attempts != 1 || len(rec.Outputs) != 3 {
		t.Fatalf("state %+v", rec)
	}
	for _, o := range rec.Outputs {
		wantKey := "renditions/" + key + "/" + rec.ClaimToken + "/" + o.Name + ".jpg"
		if o.Key != wantKey {
			t.Errorf("%s key = %q, want %q", o.Name, o.Key, wantKey)
		}
		body := r.get(t, r.output, o.Key)
		sum := sha256.Sum256(body)
		if hex.EncodeToString(sum[:]) != o.SHA256 || int64(len(body)) != o.Size {
			t.Errorf("%s: stored object does not match its recorded checksum and size", o.Name)
		}
		img := decode(t, body)
		if got := [2]int{img.Bounds().Dx(), img.Bounds().Dy()}; got != want[o.Name] || o.Width != got[0] || o.Height != got[1] {
			t.Errorf("%s is %v (recorded %dx%d), want %v", o.Name, got, o.Width, o.Height, want[o.Name])
		}
		box := render.WatermarkBox(recipe.Default().Watermark, wm.Bounds().Dx(), wm.Bounds().Dy(), img.Bounds().Dx(), img.Bounds().Dy())
		dev := deviation(img, box.Intersect(img.Bounds()))
		switch o.Name {
		case "large", "medium":
			if dev < 60 {
				t.Errorf("%s: no watermark at %v (max deviation from gray %d)", o.Name, box, dev)
			}
			if corner := deviation(img, image.Rect(0, 0, 50, 50)); corner > 8 {
				t.Errorf("%s: the top-left corner is not plain gray (deviation %d)", o.Name, corner)
			}
		case "thumb":
			if whole := deviation(img, img.Bounds()); whole > 8 {
				t.Errorf("thumb has a watermark or artefact (max deviation from gray %d)", whole)
			}
		}
	}

	var m processor.Manifest
	if err := json.Unmarshal(r.get(t, r.output, "renditions/"+key+"/manifest.json"), &m); err != nil {
		t.Fatal(err)
	}
	srcSum := sha256.Sum256(src)
	if m.Source.Key != key || m.Source.Bucket != r.staging || m.Source.SHA256 != hex.EncodeToString(srcSum[:]) ||
		m.Source.Size != int64(len(src)) || m.Source.Width != 3000 || len(m.Outputs) != 3 || m.RecipeVersion != rec.RecipeVersion ||
		m.Generation != rec.ClaimToken || m.Fence != rec.Fence {
		t.Errorf("manifest = %+v", m)
	}
	if rec.ManifestKey != "renditions/"+key+"/manifest.json" {
		t.Errorf("state manifest key = %q", rec.ManifestKey)
	}
	for _, k := range r.list(t, r.output) {
		if len(k) >= 4 && k[:4] == "tmp/" {
			t.Errorf("temp object left behind: %s", k)
		}
	}
}

func TestBadInputIsQuarantinedWithItsReason(t *testing.T) {
	r := newRig(t, func(c *processor.Config) { c.Limits.MaxBytes = 600_000 })
	good := grayJPEG(t, 400, 300)
	huge := grayJPEG(t, 10, 10)
	huge = append(huge, make([]byte, 700_000)...) // valid start, over the byte limit
	wrongSum := sha256.Sum256([]byte("not this"))
	bomb, err := os.ReadFile("../../testdata/images/bad/bomb.png")
	if err != nil {
		t.Fatal(err)
	}
	// Each report carries what was learnt before the rejection: the checksum once the file was
	// read, its format and size once its header was.
	type known struct {
		sha    bool
		format string
		w, h   int
	}
	cases := []struct {
		key    string
		body   []byte
		meta   map[string]string
		reason string
		known  known
	}{
		{"uploads/empty.jpg", nil, nil, "empty", known{}},
		{"uploads/notes.jpg", []byte("just some text, named like a photo"), nil, "unsupported_type", known{sha: true}},
		{"uploads/cut.jpg", good[:len(good)/2], nil, "corrupt", known{true, "jpeg", 400, 300}},
		{"uploads/bomb.png", bomb, nil, "too_many_pixels", known{true, "png", 100000, 100000}},
		{"uploads/huge.jpg", huge, nil, "too_large", known{}},
		{"uploads/tampered.jpg", good, map[string]string{"sha256": hex.EncodeToString(wrongSum[:])}, "checksum_mismatch", known{sha: true}},
	}
	for _, c := range cases {
		r.upload(t, c.key, c.body, c.meta)
		res := r.proc.Process(context.Background(), "req-bad", r.event(c.key))
		if res.Outcome != processor.Quarantined || res.Reason != c.reason || res.Err != nil {
			t.Errorf("%s: outcome %s reason %q err %v, want quarantined %s", c.key, res.Outcome, res.Reason, res.Err, c.reason)
			continue
		}
		rec := r.record(t, c.key)
		if rec.Status != state.Quarantined || rec.Reason != c.reason || rec.Message == "" {
			t.Errorf("%s: state %s reason %q message %q", c.key, rec.Status, rec.Reason, rec.Message)
		}
		object, report := r.proc.Keys().Quarantine(c.key, rec.QuarantineGen)
		q, err := r.objects.Head(context.Background(), r.quar, object)
		if err != nil || q.Metadata["sluice-reason"] != c.reason {
			t.Errorf("%s: quarantined copy: %+v %v", c.key, q.Metadata, err)
		}
		var rep processor.Report
		if err := json.Unmarshal(r.get(t, r.quar, report), &rep); err != nil || string(rep.Reason) != c.reason || rep.Message == "" {
			t.Errorf("%s: report %+v %v", c.key, rep, err)
		}
		sum := sha256.Sum256(c.body)
		want := processor.ManifestSource{Format: c.known.format, Width: c.known.w, Height: c.known.h}
		if c.known.sha {
			want.SHA256 = hex.EncodeToString(sum[:])
		}
		if got := rep.Source; got.SHA256 != want.SHA256 || got.Format != want.Format || got.Width != want.Width || got.Height != want.Height {
			t.Errorf("%s: the report's source says sha256 %q, %q %d×%d; want %q, %q %d×%d", c.key,
				got.SHA256, got.Format, got.Width, got.Height, want.SHA256, want.Format, want.Width, want.Height)
		}
	}
	if outs := r.list(t, r.output); len(outs) != 0 {
		t.Errorf("bad inputs produced outputs: %v", outs)
	}
}

func TestDuplicateAndConcurrentDeliveriesProcessOnce(t *testing.T) {
	r := newRig(t, nil)
	const key = "uploads/dup.jpg"
	r.upload(t, key, grayJPEG(t, 1600, 1200), nil)
	ev := r.event(key)

	var wg sync.WaitGroup
	results := make([]processor.Result, 8)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = r.proc.Process(context.Background(), "req-concurrent", ev)
		}()
	}
	wg.Wait()
	succeeded := 0
	for _, res := range results {
		switch res.Outcome {
		case processor.Succeeded:
			succeeded++
		case processor.Duplicate, processor.Failed: // Failed here is "busy": retried later by the trigger
		default:
			t.Errorf("unexpected outcome %s (%s)", res.Outcome, res.Detail)
		}
	}
	if succeeded != 1 {
		t.Fatalf("%d of 8 concurrent deliveries processed the file, want exactly 1", succeeded)
	}
	first := r.record(t, key)
	sums := map[string]string{}
	for _, o := range first.Outputs {
		sums[o.Name] = o.SHA256
	}
	// Delivered again, twice in a row: nothing happens.
	for range 2 {
		if res := r.proc.Process(context.Background(), "req-again", ev); res.Outcome != processor.Duplicate {
			t.Fatalf("redelivery: outcome %s, want duplicate", res.Outcome)
		}
	}
	if again := r.record(t, key); again.Rev != first.Rev || again.Attempts != 1 {
		t.Fatalf("redelivery changed the state: rev %d→%d attempts %d", first.Rev, again.Rev, again.Attempts)
	}
	// Same input and recipe on a fresh table (a forced reprocess): byte-identical outputs.
	r.table = r.env.Table(t, state.TableDefinition)
	r.cfg.StateTable = r.table
	r.build(t)
	if res := r.proc.Process(context.Background(), "req-fresh", ev); res.Outcome != processor.Succeeded {
		t.Fatalf("reprocess: %s %v", res.Outcome, res.Err)
	}
	for _, o := range r.record(t, key).Outputs {
		if sums[o.Name] != o.SHA256 {
			t.Errorf("%s: reprocessing gave different bytes", o.Name)
		}
	}
}

func TestEXIFOrientationSixComesOutUpright(t *testing.T) {
	r := newRig(t, nil)
	b, err := os.ReadFile("../../testdata/images/rotated-exif6.jpg")
	if err != nil {
		t.Fatal(err)
	}
	r.upload(t, "uploads/rotated.jpg", b, nil)
	if res := r.proc.Process(context.Background(), "req-exif", r.event("uploads/rotated.jpg")); res.Outcome != processor.Succeeded {
		t.Fatalf("%s %v", res.Outcome, res.Err)
	}
	img := decode(t, r.get(t, r.output, r.rendition(t, "uploads/rotated.jpg", "medium")))
	bb := img.Bounds()
	if bb.Dx() != 400 || bb.Dy() != 600 {
		t.Fatalf("medium is %dx%d, want upright 400x600", bb.Dx(), bb.Dy())
	}
	top, _, bottomB, _ := img.At(bb.Dx()/2, 20).RGBA()
	_, _, bot, _ := img.At(bb.Dx()/2, bb.Dy()-20).RGBA()
	if top>>8 < 150 || bot>>8 < 150 || bottomB>>8 > 100 {
		t.Fatalf("not upright: top should be red, bottom blue (top R=%d, top B=%d, bottom B=%d)", top>>8, bottomB>>8, bot>>8)
	}
}

// The tricky key through the whole chain: upload to MinIO → real notification → handler.
func TestTrickyKeyEndToEndThroughNotifications(t *testing.T) {
	r := newRig(t, nil)
	const key = "uploads/summer 2026/a+b ünïcode.jpg"
	done := make(chan any, 1)
	r.env.Notify(t, r.staging, []string{"s3:ObjectCreated:*"}, "uploads/", http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		ctx := lambdacontext.NewContext(req.Context(), &lambdacontext.LambdaContext{AwsRequestID: "req-notify"})
		resp, err := r.proc.Handle(ctx, body)
		if err != nil {
			t.Errorf("handler: %v", err)
		}
		done <- resp
	}))
	r.upload(t, key, grayJPEG(t, 800, 600), nil)
	select {
	case resp := <-done:
		res := resp.(processor.Response).Results
		if len(res) != 1 || res[0].Key != key || res[0].Outcome != processor.Succeeded {
			t.Fatalf("results %+v", res)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no notification within 30s")
	}
	if rec := r.record(t, key); rec.Status != state.Succeeded {
		t.Fatalf("state %s", rec.Status)
	}
	r.get(t, r.output, r.rendition(t, key, "thumb"))
}

func s3Body(bucket, key string) string {
	b, _ := json.Marshal(map[string]any{"Records": []any{map[string]any{
		"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
		"s3": map[string]any{"bucket": map[string]any{"name": bucket}, "object": map[string]any{"key": key}},
	}}})
	return string(b)
}

func TestSQSBatchReportsOnlyFailedMessages(t *testing.T) {
	r := newRig(t, nil)
	r.upload(t, "uploads/good.jpg", grayJPEG(t, 300, 200), nil)
	r.upload(t, "uploads/bad.jpg", []byte("not an image"), nil)
	// busy.jpg is held by a live claim elsewhere: a transient failure, to be retried.
	r.upload(t, "uploads/busy.jpg", grayJPEG(t, 300, 200), nil)
	r.holdClaim(t, "uploads/busy.jpg")
	batch, _ := json.Marshal(map[string]any{"Records": []any{
		map[string]any{"messageId": "m-busy", "eventSource": "aws:sqs", "body": s3Body(r.staging, "uploads/busy.jpg")},
		map[string]any{"messageId": "m-good", "eventSource": "aws:sqs", "body": s3Body(r.staging, "uploads/good.jpg")},
		map[string]any{"messageId": "m-bad", "eventSource": "aws:sqs", "body": s3Body(r.staging, "uploads/bad.jpg")},
		map[string]any{"messageId": "m-garbage", "eventSource": "aws:sqs", "body": "{not json"},
		// Sluice's own output: the recursion guard skips it even though it is delivered.
		map[string]any{"messageId": "m-own", "eventSource": "aws:sqs", "body": s3Body(r.output, "renditions/uploads/good.jpg/large.jpg")},
	}})
	ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "req-sqs"})
	out, err := r.proc.Handle(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	resp := out.(events.SQSEventResponse)
	var failed []string
	for _, f := range resp.BatchItemFailures {
		failed = append(failed, f.ItemIdentifier)
	}
	if want := []string{"m-busy", "m-garbage"}; !slices.Equal(failed, want) {
		t.Fatalf("batch item failures %v, want %v: the transient failure and the unreadable body", failed, want)
	}
	if rec := r.record(t, "uploads/good.jpg"); rec.Status != state.Succeeded {
		t.Errorf("good: %s", rec.Status)
	}
	if rec := r.record(t, "uploads/bad.jpg"); rec.Status != state.Quarantined || rec.Reason != "unsupported_type" {
		t.Errorf("bad: %s %s", rec.Status, rec.Reason)
	}
	if _, found, _ := r.states.Get(context.Background(), state.ID(r.output, "renditions/uploads/good.jpg/large.jpg")); found {
		t.Error("the recursion guard let an output be claimed")
	}
}

// Every event file users hand to `sam local invoke` (testdata/events) runs through the handler
// without a failure, on its own staging bucket, with an image at each created key.
func TestHandlerRunsOnEveryEventFile(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "testdata", "events", "*.json*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no event files: %v", err)
	}
	img := grayJPEG(t, 320, 240)
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			r := newRig(t, nil)
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{"sluice-staging", "sourcebucket"} {
				raw = bytes.ReplaceAll(raw, []byte(name), []byte(r.staging))
			}
			payloads, err := localrun.Payloads(raw)
			if err != nil {
				t.Fatal(err)
			}
			for _, raw := range payloads {
				r.handleEventFilePayload(t, raw, img, "req-"+filepath.Base(file))
			}
		})
	}
}

// handleEventFilePayload uploads the objects a payload says were created, runs the handler on
// it, and asserts every event succeeded (or was removed).
func (r *rig) handleEventFilePayload(t *testing.T, raw, img []byte, requestID string) {
	t.Helper()
	p, err := trigger.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	evs := p.Events
	for _, m := range p.Messages {
		evs = append(evs, m.Events...)
	}
	for _, task := range p.Tasks {
		evs = append(evs, task.Event)
	}
	for _, ev := range evs {
		if ev.Action == trigger.Created {
			r.upload(t, ev.Key, img, nil)
		}
	}
	ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: requestID})
	out, err := r.proc.Handle(ctx, raw)
	if err != nil {
		t.Fatalf("handler: %v", err)
	}
	switch resp := out.(type) {
	case events.SQSEventResponse:
		if len(resp.BatchItemFailures) != 0 {
			t.Errorf("batch item failures %v", resp.BatchItemFailures)
		}
	case processor.Response:
		for _, res := range resp.Results {
			if res.Outcome != processor.Succeeded && res.Outcome != processor.Removed {
				t.Errorf("%s: %s (%s)", res.Key, res.Outcome, res.Detail)
			}
		}
	case events.S3BatchJobResponse:
		checkBatchResponse(t, p, resp)
	default:
		t.Fatalf("response %T", out)
	}
}

// checkBatchResponse asserts an S3 Batch Operations answer: the invocation's schema and id, and
// every task Succeeded with its manifest key.
func checkBatchResponse(t *testing.T, p trigger.Payload, resp events.S3BatchJobResponse) {
	t.Helper()
	if resp.InvocationSchemaVersion != p.SchemaVersion || resp.InvocationID != p.InvocationID || len(resp.Results) != len(p.Tasks) {
		t.Fatalf("answer %+v to %d tasks", resp, len(p.Tasks))
	}
	for i, res := range resp.Results {
		if res.TaskID != p.Tasks[i].ID || res.ResultCode != "Succeeded" || !strings.HasSuffix(res.ResultString, "manifest.json") {
			t.Errorf("task %s: %+v", p.Tasks[i].ID, res)
		}
	}
}

// holdClaim makes key's record held by a live claim of another worker (for a minute): events for
// it find it busy.
func (r *rig) holdClaim(t *testing.T, key string) {
	t.Helper()
	if _, _, err := r.states.Claim(context.Background(), state.ClaimRequest{
		Bucket: r.staging, Key: key, ObjectVersion: "etag:other", RecipeVersion: "r", RequestID: "req-other",
		Token: "tok", LeaseUntil: time.Now().Add(time.Minute), MaxAttempts: 5,
	}, time.Now); err != nil {
		t.Fatal(err)
	}
}
