// Package processor is sluice's core: for one object event it claims the object in the state
// table, validates the file by content, renders the recipe, publishes each rendition into the
// claim's own generation through a temp key (put with SHA-256 → verify → conditional copy →
// delete temp), swaps the manifest to that generation as the commit (fenced), sweeps what it
// superseded, and records the outcome; or it quarantines the file with its reason, or, for a
// removal, claims the record and deletes every output. The lifecycle's rules are pkg/state's.
package processor

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"runtime/debug"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/sluice-dev/sluice/pkg/failure"
	"github.com/sluice-dev/sluice/pkg/media"
	"github.com/sluice-dev/sluice/pkg/metrics"
	"github.com/sluice-dev/sluice/pkg/recipe"
	"github.com/sluice-dev/sluice/pkg/records"
	"github.com/sluice-dev/sluice/pkg/render"
	"github.com/sluice-dev/sluice/pkg/state"
	"github.com/sluice-dev/sluice/pkg/storage"
	"github.com/sluice-dev/sluice/pkg/tracing"
	"github.com/sluice-dev/sluice/pkg/trigger"
	"github.com/sluice-dev/sluice/pkg/workgroup"
)

// objectStore is what the processor needs of S3.
type objectStore interface {
	Head(ctx context.Context, bucket, key string) (storage.Object, error)
	Get(ctx context.Context, o storage.Object, limit int64) ([]byte, error)
	Read(ctx context.Context, bucket, key string, limit int64) (storage.Object, []byte, error)
	DeleteIf(ctx context.Context, bucket, key, etag string) error
	Put(ctx context.Context, p storage.Put) (storage.Written, error)
	Peek(ctx context.Context, o storage.Object, n int64) ([]byte, error)
	Stream(ctx context.Context, o storage.Object) (io.ReadCloser, error)
	StreamFrom(ctx context.Context, o storage.Object, offset int64) (io.ReadCloser, error)
	NewUpload(ctx context.Context, p storage.Put) *storage.Upload
	ResumeUpload(ctx context.Context, p storage.Put, st storage.UploadState) (*storage.Upload, error)
	Copy(ctx context.Context, c storage.Copy) (string, error)
	CopyLarge(ctx context.Context, c storage.Copy, size int64) (string, error)
	Delete(ctx context.Context, bucket, key string) error
	List(ctx context.Context, bucket, prefix string, f func(storage.Object) error) error
}

// stateStore is what the processor needs of the state table.
type stateStore interface {
	Get(ctx context.Context, id string) (state.Record, bool, error)
	Claim(ctx context.Context, req state.ClaimRequest, now func() time.Time) (state.Verdict, state.Record, error)
	ClaimRemoval(ctx context.Context, req state.RemoveRequest, now func() time.Time) (state.Verdict, state.Record, error)
	Holds(ctx context.Context, rec state.Record, until time.Time) error
	Finish(ctx context.Context, rec state.Record, to state.Status, reason string, now time.Time) (state.Record, error)
	MarkAnnounced(ctx context.Context, rec state.Record) error
	SaveProgress(ctx context.Context, rec state.Record, p state.Progress) error
	TwinOf(ctx context.Context, recipeVersion, sha256 string) (state.Twin, bool, error)
	OfferTwin(ctx context.Context, recipeVersion, sha256 string, t state.Twin, stale *state.Twin) error
}

// queueAPI is what the processor needs of SQS: a message's visibility.
type queueAPI interface {
	ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, optFns ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)
}

var (
	_ objectStore = (*storage.Store)(nil)
	_ stateStore  = (*state.Store)(nil)
	_ queueAPI    = (*sqs.Client)(nil)
)

// Processor handles object events. It is safe for concurrent use.
type Processor struct {
	cfg          Config
	objects      objectStore
	states       stateStore
	routes       router
	log          *slog.Logger
	metrics      *metrics.Emitter
	now          func() time.Time
	maxCopyBytes int64    // the largest source quarantine copies (S3's one-request limit)
	queue        queueAPI // nil: a busy message waits out the queue's visibility timeout
	tracer       trace.Tracer
	announcer    announcer   // nil: outcomes are not announced
	cdn          invalidator // nil: no CDN is invalidated
}

// WithQueue lets the processor shorten the visibility of an SQS message that must come back
// soon (cfg.QueueURL names the queue).
func (p *Processor) WithQueue(q queueAPI) *Processor {
	p.queue = q
	return p
}

// WithTracer traces each object: a trace of its own with a span per stage (pkg/tracing).
func (p *Processor) WithTracer(t trace.Tracer) *Processor {
	p.tracer = t
	return p
}

// newProcessor wires a processor (Build makes its routes).
func newProcessor(cfg Config, objects objectStore, states stateStore, routes router, log *slog.Logger, m *metrics.Emitter) *Processor {
	return &Processor{cfg: cfg, objects: objects, states: states, routes: routes, log: log, metrics: m, now: time.Now, maxCopyBytes: maxCopyBytes, tracer: noop.NewTracerProvider().Tracer("")}
}

// Outcome is what happened to one object event.
type Outcome string

// Outcomes.
const (
	Succeeded   Outcome = "succeeded"
	Duplicate   Outcome = "duplicate"
	Quarantined Outcome = "quarantined"
	Failed      Outcome = "failed" // transient: retry
	Skipped     Outcome = "skipped"
	Stale       Outcome = "stale"   // older than the event the record already follows
	Removed     Outcome = "removed" // the source is gone: its outputs were deleted, the record is DELETED
)

// Result reports one event's outcome; Err is set for Failed.
type Result struct {
	Bucket  string  `json:"bucket"`
	Key     string  `json:"key"`
	Outcome Outcome `json:"outcome"`
	Version string  `json:"version,omitempty"` // the content looked at: "v:<version id>" or "etag:<etag>"
	Reason  string  `json:"reason,omitempty"`
	Detail  string  `json:"detail,omitempty"`
	// Manifest is the manifest's key, for a Succeeded event.
	Manifest string `json:"manifest,omitempty"`
	Err      error  `json:"-"`
	// RetryIn, for a Failed event, is when trying again may help (another worker holds the
	// object now): the SQS message is made visible again then, not after the whole timeout.
	RetryIn time.Duration `json:"-"`
}

// RecipeVersion identifies the first recipe (and its watermark): the one recipe of a
// deployment configured by RECIPE_JSON.
func (p *Processor) RecipeVersion() string { return p.routes.routes[0].version }

// Current reports whether an outcome made with recipe version for the source key is what the
// routing would make now (see router.current): a backfill redoes those that are not.
func (p *Processor) Current(key, version string) bool { return p.routes.current(key, version) }

// Keys returns the processor's key scheme.
func (p *Processor) Keys() Keys { return Keys{cfg: p.cfg} }

// Process handles one object event. Only transient failures come back as Result.Err: bad
// files are quarantined and count as handled.
func (p *Processor) Process(ctx context.Context, requestID string, ev trigger.ObjectEvent) Result {
	res := Result{Bucket: ev.Bucket, Key: ev.Key}
	ctx, span := p.startObject(ctx, requestID, ev)
	log := p.log.With("request_id", requestID, "bucket", ev.Bucket, "key", ev.Key)
	if sc := span.SpanContext(); sc.IsValid() {
		log = log.With("trace_id", tracing.XRayTraceID(sc.TraceID()))
	}
	m := metrics.NewSet()
	start := p.now()
	defer func() {
		endObject(span, res)
		ms := p.now().Sub(start).Milliseconds()
		m.Add("Duration", metrics.Milliseconds, float64(ms))
		if err := p.metrics.Flush(m); err != nil {
			log.Warn("metrics flush failed", "err", err)
		}
		attrs := []any{"stage", "done", "outcome", res.Outcome, "duration_ms", ms}
		if res.Reason != "" {
			attrs = append(attrs, "reason", res.Reason)
		}
		switch {
		case res.Err != nil:
			log.Error("object failed; will be retried", append(attrs, "err", res.Err)...)
		case res.Outcome == Quarantined:
			log.Warn("object quarantined", append(attrs, "detail", res.Detail)...)
		default:
			log.Info("object handled", append(attrs, "detail", res.Detail)...)
		}
	}()

	switch {
	case p.Keys().Ours(ev.Bucket, ev.Key):
		m.Add("RecursionSkipped", metrics.Count, 1)
		res.Outcome, res.Detail = Skipped, "key is under sluice's own output, temp or quarantine prefix"
		return res
	case ev.Action == trigger.Removed && !p.cfg.RemoveOutputs:
		m.Add("Ignored", metrics.Count, 1)
		res.Outcome, res.Detail = Skipped, "event "+ev.Name+": removals are ignored (REMOVE_OUTPUTS=false)"
		return res
	}
	run := &run{p: p, ctx: ctx, requestID: requestID, ev: ev, log: log, m: m}
	if dl, ok := ctx.Deadline(); ok {
		// The claim's lease follows the real deadline; the work stops a margin before it.
		run.deadline = dl
		var cancel context.CancelFunc
		run.ctx, cancel = context.WithDeadline(ctx, dl.Add(-p.cfg.DeadlineMargin))
		defer cancel()
	}
	run.guarded(&res)
	run.announce(&res)
	switch res.Outcome {
	case Succeeded:
		m.Add("Processed", metrics.Count, 1)
	case Duplicate:
		m.Add("Duplicates", metrics.Count, 1)
	case Quarantined:
		m.Add("Quarantined", metrics.Count, 1)
	case Failed:
		m.Add("Failed", metrics.Count, 1)
	case Stale:
		m.Add("StaleEvents", metrics.Count, 1)
	case Removed:
		m.Add("Removed", metrics.Count, 1)
	}
	return res
}

// startObject starts the object's trace: a trace of its own (one per object, whichever batch
// carried it), linked to the invocation's (Lambda's X-Ray trace) when there is one.
func (p *Processor) startObject(ctx context.Context, requestID string, ev trigger.ObjectEvent) (context.Context, trace.Span) {
	return p.tracer.Start(ctx, "object", trace.WithNewRoot(), trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithLinks(trace.LinkFromContext(ctx)),
		trace.WithAttributes(
			attribute.String("aws.s3.bucket", ev.Bucket), attribute.String("aws.s3.key", ev.Key),
			attribute.String("faas.invocation_id", requestID), attribute.String("sluice.event", ev.Name)))
}

// endObject records the outcome on the object's span and ends it; a failure to retry is an
// error, a quarantined file is not (it was handled).
func endObject(span trace.Span, res Result) {
	span.SetAttributes(attribute.String("sluice.outcome", string(res.Outcome)))
	if res.Version != "" {
		span.SetAttributes(attribute.String("sluice.version", res.Version))
	}
	if res.Reason != "" {
		span.SetAttributes(attribute.String("sluice.reason", res.Reason))
	}
	endSpan(span, res.Err)
}

// endSpan ends a span, with an error status if err is set.
func endSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// guarded runs the work, turning a panic (a decoder bug on hostile bytes, say), in this
// goroutine or in a worker goroutine (pkg/workgroup raises it again here), into a failed
// attempt: the claim is released as FAILED with the panic as its last error, so the attempt
// counts and the file ends QUARANTINED (max_attempts) instead of crashing every delivery.
func (r *run) guarded(res *Result) {
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		err := fmt.Errorf("panic: %v", v)
		stack := debug.Stack()
		if p, ok := v.(*workgroup.Panic); ok {
			stack = p.Stack // the worker goroutine's, where it happened
		}
		r.log.Error("processor panicked", "err", err, "stack", string(stack))
		r.m.Add("Panics", metrics.Count, 1)
		if r.claimed {
			r.rec.LastError = err.Error()
			if ferr := r.finish(state.Failed, ""); ferr != nil {
				err = errors.Join(err, ferr)
			}
		}
		*res = Result{Bucket: r.ev.Bucket, Key: r.ev.Key, Version: res.Version, Outcome: Failed, Err: failure.Transient(err)}
	}()
	if err := r.ctx.Err(); err != nil {
		res.Outcome, res.Err = Failed, failure.Transient(fmt.Errorf("too close to the deadline to start: %w", err))
		return
	}
	var src storage.Object
	err := r.stage("Head", func(ctx context.Context) (err error) {
		src, err = r.p.objects.Head(ctx, r.ev.Bucket, r.ev.Key)
		return err
	})
	switch {
	case errors.Is(err, storage.ErrNotFound) && r.ev.Action == trigger.Removed:
		r.remove(res)
	case errors.Is(err, storage.ErrNotFound):
		res.Outcome, res.Detail = Skipped, objectGone
	case err != nil:
		res.Outcome, res.Err = Failed, err
	default:
		// A creation, or a removal of a key that still has a current object (re-created since,
		// or a non-current version was removed): either way the current object is what counts.
		r.do(res, src)
	}
}

// objectGone is the detail of an event whose object no longer exists.
const objectGone = "the object no longer exists"

// run is the work on one object.
type run struct {
	p         *Processor
	ctx       context.Context
	requestID string
	ev        trigger.ObjectEvent
	log       *slog.Logger
	m         *metrics.Set
	rec       state.Record // the claimed record (claimed), or the one found
	route     *route       // the recipe the object was routed to
	claimed   bool
	deadline  time.Time // the invocation's deadline, if it has one
	learnt    struct {
		sha256 string        // the content's, once downloaded
		info   media.Info    // from the header, as far as it was read
		color  *media.Color  // what decoding did with its colour profile, if it has one
		rights *media.Rights // the authorship it states, when the recipe keeps it
		// contentType is the type detected from the first bytes, when routing read them.
		contentType string
		rows        *records.Summary // a records file's counts
		rejected    string           // the temp key of the rejected rows of a file the gate refused
	}
	twin struct {
		copied *CopiedFrom // the twin whose renditions this attempt copied
		stale  *state.Twin // the twin the content index named, whose renditions were gone
	}
}

// stage runs one step in a span of its own (named name in lower case), which ctx carries, and
// records its duration as a metric. The span ends on a panic too (guarded turns it into a
// failed attempt, recorded on the object's span).
func (r *run) stage(name string, f func(ctx context.Context) error) (err error) {
	ctx, span := r.p.tracer.Start(r.ctx, strings.ToLower(name))
	defer func() { endSpan(span, err) }()
	t := r.p.now()
	err = f(ctx)
	r.m.Add("Stage"+name, metrics.Milliseconds, float64(r.p.now().Sub(t).Milliseconds()))
	return err
}

// do processes the object src, which a HEAD just found.
func (r *run) do(res *Result, src storage.Object) {
	res.Version = contentVersion(src)
	rt, err := r.p.routes.pick(src.Key, func() (string, error) {
		ct, err := r.detect(src)
		r.learnt.contentType = ct
		return ct, err
	})
	switch {
	case errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrPreconditionFailed):
		res.Outcome, res.Detail = Skipped, objectGone+" (replaced or deleted before it was routed)"
		return
	case err != nil:
		res.Outcome, res.Err = Failed, err
		return
	case rt == nil:
		r.m.Add("Unmatched", metrics.Count, 1)
		res.Outcome, res.Detail = Skipped, fmt.Sprintf("no recipe matches the key (content type %q)", r.learnt.contentType)
		return
	}
	r.route = rt
	r.m.Recipe(rt.entry.Name, rt.version)
	verdict, rec, err := r.claim(src)
	if err != nil {
		res.Outcome, res.Err = Failed, err
		return
	}
	r.rec, r.claimed = rec, verdict == state.Claim || verdict == state.Exhausted
	switch verdict {
	case state.Duplicate:
		res.Outcome, res.Detail = Duplicate, fmt.Sprintf("already %s for this version and recipe", rec.Status)
		return
	case state.Busy:
		res.Outcome, res.Err, res.RetryIn = Failed, busy("another invocation holds the lease on this object"), busyDelay()
		return
	case state.Exhausted:
		r.exhausted(res, src)
		return
	case state.Stale:
		res.Outcome, res.Detail = Stale, fmt.Sprintf("event sequencer %s is older than the record's %s", r.ev.Sequencer, rec.Sequencer)
		return
	}

	outputs, manifestKey, err := r.process(src)
	for try := 1; try <= r.p.cfg.RetriesPerAttempt && r.retryable(err); try++ {
		// Where the SDK's retries stop, the attempt retries its work under the same claim, with
		// capped exponential backoff and full jitter, while its deadline allows; publishing again
		// is idempotent (same temp keys, same fence).
		wait := backoff(try, retryBase, retryCap, mrand.N[time.Duration])
		r.log.Warn("retrying the attempt's work", "try", try, "wait_ms", wait.Milliseconds(), "err", err)
		if !sleep(r.ctx, wait) {
			break
		}
		r.m.Add("WorkRetries", metrics.Count, 1)
		outputs, manifestKey, err = r.process(src)
	}
	now := r.p.now()
	if errors.Is(err, state.ErrLeaseLost) {
		// Another invocation owns the object now (this one stalled past its lease, or a newer
		// version arrived): it publishes; this one stops without writing anything more.
		r.m.Add("LeaseLost", metrics.Count, 1)
		r.dropOwnGeneration()
		res.Outcome, res.Detail = Skipped, "lost the claim to another invocation; stopped without publishing"
		return
	}
	if err != nil && failure.Classify(err) == failure.IsPermanent {
		r.quarantine(res, src, err)
		return
	}
	if err != nil {
		// Transient or unknown: record it and let the trigger retry, up to MaxAttempts claims.
		r.rec.LastError = err.Error()
		if ferr := r.finish(state.Failed, ""); ferr != nil {
			err = errors.Join(err, ferr)
		}
		res.Outcome, res.Err = Failed, failure.Transient(err)
		if errors.Is(err, errPaused) {
			// Stopped at a checkpoint with work left: the next delivery goes on at once.
			r.m.Add("Paused", metrics.Count, 1)
			res.RetryIn = time.Second
		}
		return
	}
	r.rec.Outputs, r.rec.ManifestKey = outputs, manifestKey
	r.rec.DurationMS = now.Sub(r.rec.UpdatedAt).Milliseconds()
	if err := r.finish(state.Succeeded, ""); err != nil {
		res.Outcome, res.Err = Failed, err
		return
	}
	r.offerTwin(src)
	res.Outcome, res.Manifest, res.Detail = Succeeded, manifestKey, fmt.Sprintf("%d renditions, manifest %s", len(outputs), manifestKey)
	if t := r.twin.copied; t != nil {
		res.Detail += ", copied from the twin " + t.Key
	}
}

// finish records the claim's outcome. It runs past the deadline margin (the claim is held until
// it is written, and a lost answer is recognised), bounded by finishTimeout.
func (r *run) finish(to state.Status, reason string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), finishTimeout)
	defer cancel()
	rec, err := r.p.states.Finish(ctx, r.rec, to, reason, r.p.now())
	if err == nil {
		r.rec = rec
	}
	return err
}

// finishTimeout bounds the bookkeeping an attempt does after its deadline margin: recording its
// outcome, quarantining. The margin (DEADLINE_MARGIN_MS, 5 s by default) leaves room for it.
const finishTimeout = 4 * time.Second

// The in-attempt retry policy: the n-th retry waits a random time in [0, min(retryCap, retryBase·2ⁿ⁻¹)).
const (
	retryBase = 500 * time.Millisecond
	retryCap  = 10 * time.Second
)

// backoff is capped exponential backoff with full jitter: a random duration (from rnd, which
// returns a value in [0, n)) below min(ceiling, base·2^(try-1)).
func backoff(try int, base, ceiling time.Duration, rnd func(n time.Duration) time.Duration) time.Duration {
	d := ceiling
	if try < 31 && base<<(try-1) < ceiling && base<<(try-1) > 0 {
		d = base << (try - 1)
	}
	return rnd(d)
}

// retryable: a failure worth retrying inside the attempt (not a verdict on the file, not a lost
// claim, and time left).
func (r *run) retryable(err error) bool {
	return err != nil && !errors.Is(err, state.ErrLeaseLost) && !errors.Is(err, errPaused) &&
		failure.Classify(err) != failure.IsPermanent && r.ctx.Err() == nil
}

// sleep waits d, or less if ctx ends first: it reports whether the full wait happened.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// contentVersion identifies the bytes about to be processed.
func contentVersion(o storage.Object) string {
	if o.VersionID != "" && o.VersionID != "null" {
		return "v:" + o.VersionID
	}
	return "etag:" + o.ETag
}

// leaseUntil is when this invocation's claim lapses: a Lambda is killed at its deadline, so the
// lease ends a commit window after it (a holder commits only with that much lease left), and a
// retry can take over. Without a deadline (an operator's run), 15 minutes.
func (r *run) leaseUntil() time.Time {
	if r.deadline.IsZero() {
		return r.p.now().Add(15 * time.Minute)
	}
	return r.deadline.Add(2 * r.p.cfg.CommitWindow)
}

func (r *run) claim(src storage.Object) (state.Verdict, state.Record, error) {
	lease := r.leaseUntil()
	req := state.ClaimRequest{
		Bucket: src.Bucket, Key: src.Key,
		ObjectVersion: contentVersion(src), ObjectETag: src.ETag, ObjectSize: src.Size,
		Sequencer: r.ev.Sequencer, RecipeVersion: r.route.version, RecipeName: r.route.entry.Name,
		RequestID: r.requestID, Token: newToken(),
		LeaseUntil: lease, MaxAttempts: r.p.cfg.MaxAttempts, Redrive: r.ev.Redrive,
	}
	var (
		verdict state.Verdict
		rec     state.Record
	)
	err := r.stage("Claim", func(ctx context.Context) (err error) {
		verdict, rec, err = r.p.states.Claim(ctx, req, r.p.now)
		return err
	})
	return verdict, rec, err
}

// process publishes the renditions and commits them; it returns the outputs and the manifest
// key.
func (r *run) process(src storage.Object) ([]state.Output, string, error) {
	published, err := r.outputs(src)
	if err != nil {
		return nil, "", err
	}
	var manifestKey string
	err = r.stage("Commit", func(context.Context) (err error) {
		manifestKey, err = r.commit(src, published)
		return err
	})
	return published, manifestKey, err
}

// outputs publishes the source's renditions into the claim's generation: copies of its twin's
// when the content index names a source with the same bytes rendered with this recipe (looked
// up before the download when S3 knows the bytes' SHA-256), else validated and rendered here.
func (r *run) outputs(src storage.Object) ([]state.Output, error) {
	r.twin.copied, r.twin.stale = nil, nil // what an earlier try of the attempt found
	r.learnt.rows, r.learnt.rejected = nil, ""
	if r.route == noRecipe {
		return nil, failure.Permanent(failure.NoRecipe, "no recipe matches the key %q with content type %q", src.Key, r.learnt.contentType)
	}
	if err := media.CheckSize(src.Size, r.route.limits); err != nil {
		return nil, err
	}
	switch r.route.entry.Kind {
	case recipe.KindRecords:
		return r.recordsOutputs(src)
	case recipe.KindPassthrough:
		return r.passthrough(src)
	}
	if src.SHA256 != "" {
		if outs, ok, err := r.fromTwin(src, src.SHA256); ok || err != nil {
			return outs, err
		}
	}
	data, err := r.download(src)
	if err != nil {
		return nil, err
	}
	if src.SHA256 == "" {
		if outs, ok, err := r.fromTwin(src, r.learnt.sha256); ok || err != nil {
			return outs, err
		}
	}
	return r.rendered(src, data)
}

// download reads the source's bytes and checks them against the SHA-256 S3 declares for them.
func (r *run) download(src storage.Object) ([]byte, error) {
	var data []byte
	err := r.stage("Download", func(ctx context.Context) (err error) {
		data, err = r.p.objects.Get(ctx, src, r.route.limits.MaxBytes)
		return err
	})
	if errors.Is(err, storage.ErrTooLarge) {
		return nil, failure.Permanent(failure.TooLarge, "the file grew past the limit of %d bytes while being read", r.route.limits.MaxBytes)
	}
	if errors.Is(err, storage.ErrPreconditionFailed) || errors.Is(err, storage.ErrNotFound) {
		// Overwritten or deleted since HEAD: the newer object has its own event.
		return nil, failure.Transient(fmt.Errorf("the object changed while being read: %w", err))
	}
	if err != nil {
		return nil, err
	}
	r.m.Add("BytesIn", metrics.Bytes, float64(len(data)))
	sum := sha256.Sum256(data)
	r.learnt.sha256 = hex.EncodeToString(sum[:])
	if src.SHA256 != "" && src.SHA256 != r.learnt.sha256 {
		return nil, failure.Permanent(failure.ChecksumMismatch,
			"the file's SHA-256 is %s but the object declares %s", r.learnt.sha256, src.SHA256)
	}
	return data, nil
}

// rendered validates the source's bytes by content, decodes them, renders the recipe and
// publishes each rendition.
func (r *run) rendered(src storage.Object, data []byte) ([]state.Output, error) {
	var (
		img  media.Decoded
		anim *render.Animation
	)
	err := r.stage("Decode", func(context.Context) (err error) {
		img, anim, err = r.decode(data)
		data = nil // the decoded image is all we need from here on
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := r.colorPolicy(img.Color); err != nil {
		return nil, err
	}
	var outs []render.Output
	err = r.stage("Render", func(ctx context.Context) (err error) {
		outs, err = r.render(ctx, img, anim)
		return err
	})
	img, anim = media.Decoded{}, nil
	if err != nil {
		return nil, err
	}
	published := make([]state.Output, 0, len(outs))
	for _, o := range outs {
		if err := r.ctx.Err(); err != nil {
			return nil, failure.Transient(fmt.Errorf("deadline before publishing %s: %w", o.Name, err))
		}
		var out state.Output
		err := r.stage("Publish", func(ctx context.Context) (err error) {
			trace.SpanFromContext(ctx).SetAttributes(attribute.String("sluice.rendition", o.Name))
			out, err = r.publish(src, o)
			return err
		})
		if err != nil {
			return nil, err
		}
		r.m.Add("BytesOut", metrics.Bytes, float64(out.Size))
		published = append(published, out)
	}
	return published, nil
}

// decode checks the file by its content and decodes it, as the recipe asks: its authorship read
// for the copyright policy, an animation's every frame for the preserve policy, the profile kept
// or converted.
func (r *run) decode(data []byte) (media.Decoded, *render.Animation, error) {
	var err error
	if r.learnt.info, err = media.Inspect(data, r.route.limits); err != nil {
		return media.Decoded{}, nil, err
	}
	if r.route.image().Metadata == recipe.MetadataCopyright {
		if rights := media.ReadRights(r.learnt.info.Format, data); !rights.Empty() {
			r.learnt.rights = &rights
		}
	}
	if anim, err := r.decodeAnimation(data); err != nil || anim != nil {
		return media.Decoded{}, anim, err
	}
	var opts []media.Option
	if r.route.image().Color == recipe.KeepProfile {
		opts = append(opts, media.KeepProfile())
	}
	img, err := media.Decode(data, r.route.renderer.Need, opts...)
	return img, nil, err
}

// render makes the renditions of a still image (with its kept profile and authorship written
// in) or of an animation.
func (r *run) render(ctx context.Context, img media.Decoded, anim *render.Animation) ([]render.Output, error) {
	if anim != nil {
		return r.route.renderer.RenderAnimation(ctx, *anim)
	}
	outs, err := r.route.renderer.Render(ctx, img.Image, image.Pt(img.Width, img.Height))
	if err != nil {
		return nil, err
	}
	if err := embedProfile(outs, img.ICC); err != nil {
		return nil, err
	}
	return outs, embedRights(outs, r.learnt.rights)
}

// decodeAnimation decodes every frame of an animated GIF or WebP when the recipe preserves
// animations, after counting its frames from the container against the limits; nil for a
// still image, or under first_frame (the still decoder then takes the first frame).
func (r *run) decodeAnimation(data []byte) (*render.Animation, error) {
	if r.route.image().Animation != recipe.AnimationPreserve {
		return nil, nil
	}
	f := r.learnt.info.Format
	frames, canvas, err := media.AnimationCost(f, data)
	if err != nil || frames < 2 {
		return nil, nil // a still image, or a container the still decoder will judge
	}
	if err := media.CheckAnimation(frames, canvas, r.route.limits); err != nil {
		return nil, err
	}
	a, err := media.DecodeAnimation(f, data)
	if err != nil {
		return nil, err
	}
	out := &render.Animation{Delays: a.Delays, Loop: a.Loop, Frames: make([]image.Image, len(a.Frames))}
	for i, fr := range a.Frames {
		out.Frames[i] = fr
	}
	r.m.Add("AnimationsPreserved", metrics.Count, 1)
	return out, nil
}

// embedProfile writes the kept source profile, if any, into each rendition.
func embedProfile(outs []render.Output, icc []byte) error {
	if icc == nil {
		return nil
	}
	for i := range outs {
		body, err := media.EmbedProfile(media.Format(outs[i].Format), outs[i].Body, icc)
		if err != nil {
			return fmt.Errorf("rendition %s: %w", outs[i].Name, err)
		}
		outs[i].Body = body
	}
	return nil
}

// embedRights writes the kept authorship, if any, into each JPEG rendition.
func embedRights(outs []render.Output, rights *media.Rights) error {
	if rights == nil {
		return nil
	}
	for i := range outs {
		if outs[i].Format != recipe.JPEG {
			continue
		}
		body, err := media.EmbedRights(outs[i].Body, *rights)
		if err != nil {
			return fmt.Errorf("rendition %s: %w", outs[i].Name, err)
		}
		outs[i].Body = body
	}
	return nil
}

// colorPolicy records what decoding did with the source's colour profile and applies the
// recipe's policy to one it could not evaluate.
func (r *run) colorPolicy(c media.Color) error {
	switch {
	case c == media.Color{}:
		return nil
	case c.Converted:
		r.m.Add("ColorConverted", metrics.Count, 1)
	case c.Kept:
		r.m.Add("ColorKept", metrics.Count, 1)
	case r.route.image().UnsupportedColorProfile == recipe.Quarantine:
		return failure.Permanent(failure.UnsupportedColorProfile, "the embedded colour profile %q cannot be evaluated: %s", c.Profile, c.Unsupported)
	default:
		r.m.Add("ColorAssumedSRGB", metrics.Count, 1)
		r.log.Warn("colour profile not evaluated; pixels taken as sRGB", "profile", c.Profile, "why", c.Unsupported)
	}
	r.learnt.color = &c
	return nil
}

// newToken makes a claim token; crypto/rand.Read does not fail on supported platforms.
func newToken() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// busy is the transient failure of an event that found another claim live.
func busy(why string) error { return failure.Transient(errors.New(why)) }

// busyDelay is when an event that found another claim live is tried again: 10 to 30 seconds,
// jittered so that duplicates do not come back together (claims usually end within seconds).
func busyDelay() time.Duration { return 10*time.Second + mrand.N(20*time.Second) }
