// Package processor is sluice's core: for one object event it claims the object in the state
// table, validates the file by content, renders the recipe, publishes each rendition through a
// temp key (put with SHA-256 → verify → conditional copy → delete temp), writes the manifest
// last as the commit marker, and records the outcome, or quarantines the file with its reason.
package processor

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"log/slog"
	mrand "math/rand/v2"
	"net/url"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/sluice-dev/sluice/pkg/failure"
	"github.com/sluice-dev/sluice/pkg/media"
	"github.com/sluice-dev/sluice/pkg/metrics"
	"github.com/sluice-dev/sluice/pkg/recipe"
	"github.com/sluice-dev/sluice/pkg/render"
	"github.com/sluice-dev/sluice/pkg/state"
	"github.com/sluice-dev/sluice/pkg/storage"
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
	Copy(ctx context.Context, c storage.Copy) (string, error)
	Delete(ctx context.Context, bucket, key string) error
}

// stateStore is what the processor needs of the state table.
type stateStore interface {
	Get(ctx context.Context, id string) (state.Record, bool, error)
	Claim(ctx context.Context, req state.ClaimRequest, now func() time.Time) (state.Verdict, state.Record, error)
	ClaimRemoval(ctx context.Context, req state.RemoveRequest, now func() time.Time) (state.Verdict, state.Record, error)
	Holds(ctx context.Context, rec state.Record, now time.Time) error
	Finish(ctx context.Context, rec state.Record, to state.Status, reason string, now time.Time) (state.Record, error)
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
	cfg           Config
	objects       objectStore
	states        stateStore
	renderer      *render.Renderer
	recipeVersion string
	log           *slog.Logger
	metrics       *metrics.Emitter
	now           func() time.Time
	maxCopyBytes  int64    // the largest source quarantine copies (S3's one-request limit)
	queue         queueAPI // nil: a busy message waits out the queue's visibility timeout
}

// WithQueue lets the processor shorten the visibility of an SQS message that must come back
// soon (cfg.QueueURL names the queue).
func (p *Processor) WithQueue(q queueAPI) *Processor {
	p.queue = q
	return p
}

// New wires a processor. recipeVersion identifies the recipe and watermark in use.
func New(cfg Config, objects objectStore, states stateStore, renderer *render.Renderer, recipeVersion string, log *slog.Logger, m *metrics.Emitter) *Processor {
	return &Processor{cfg: cfg, objects: objects, states: states, renderer: renderer, recipeVersion: recipeVersion, log: log, metrics: m, now: time.Now, maxCopyBytes: maxCopyBytes}
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
	Err     error   `json:"-"`
	// RetryIn, for a Failed event, is when trying again may help (another worker holds the
	// object now): the SQS message is made visible again then, not after the whole timeout.
	RetryIn time.Duration `json:"-"`
}

// Keys is the key scheme. Renditions are immutable generations: each claim publishes under
// its own generation (its claim token), which only it ever writes, and the manifest at a stable
// key names the one generation that is published. Temp keys carry the generation too, so
// concurrent attempts never share one.
//
//	<output prefix><seg>/manifest.json            the only mutable object: swapped with If-Match
//	<output prefix><seg>/<gen>/<name>.<ext>        a published (or superseded) rendition
//	<temp prefix><gen>/<seg>/<name>.<ext>          before verification
//	<quarantine prefix><seg>/<gen>/source          a quarantined source, and its report beside it
//	<quarantine prefix><seg>/<gen>/report.json
type Keys struct{ cfg Config }

// S3's limit on a key, and the length of a generation (a claim token: 12 random bytes in hex).
const (
	maxKeyBytes = 1024
	genBytes    = 24
	// longest thing a derived key puts after the source segment: "/" + generation + "/" + a
	// 32-byte rendition name + ".webp"; "/manifest.json" and "/report.json" are shorter.
	maxSuffixBytes = 1 + genBytes + 1 + 32 + 5
)

// Segment is the form of a source key inside every key sluice derives from it. A key that is
// valid UTF-8 without control characters, whose "/"-separated segments are neither empty nor
// "." or "..", that does not start with "_/", and whose derived keys all fit S3's 1024 bytes,
// is used as it is: the outputs of "uploads/a.jpg" sit under "renditions/uploads/a.jpg/". Any
// other key becomes "_/" and the hex SHA-256 of its bytes. So distinct source keys never share
// an output, and no derived key leaves its prefix, whatever a consumer makes of "..", "//" or
// control characters; the manifest and the state record keep the source key as it is.
func (k Keys) Segment(sourceKey string) string {
	room := maxKeyBytes - maxSuffixBytes - max(len(k.cfg.OutputPrefix), len(k.cfg.TempPrefix)+genBytes+1, len(k.cfg.QuarantinePrefix))
	if len(sourceKey) <= room && plainKey(sourceKey) {
		return sourceKey
	}
	sum := sha256.Sum256([]byte(sourceKey))
	return "_/" + hex.EncodeToString(sum[:])
}

// plainKey reports whether key can stand in derived keys unchanged (see Keys.Segment).
func plainKey(key string) bool {
	return cleanKey(key) && !strings.HasPrefix(key, "_/")
}

// cleanKey: valid UTF-8, no control characters, no empty, "." or ".." segment.
func cleanKey(key string) bool {
	if key == "" || !utf8.ValidString(key) {
		return false
	}
	for _, r := range key {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return false
		}
	}
	for seg := range strings.SplitSeq(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

// Final is where generation gen publishes a rendition.
func (k Keys) Final(sourceKey, gen, name, ext string) string {
	return k.cfg.OutputPrefix + k.Segment(sourceKey) + "/" + gen + "/" + name + "." + ext
}

// Manifest is the commit marker of a source's renditions: it names the published generation.
func (k Keys) Manifest(sourceKey string) string {
	return k.cfg.OutputPrefix + k.Segment(sourceKey) + "/manifest.json"
}

// Temp is where generation gen writes a rendition before it is verified.
func (k Keys) Temp(gen, sourceKey, name, ext string) string {
	return k.cfg.TempPrefix + gen + "/" + k.Segment(sourceKey) + "/" + name + "." + ext
}

// Quarantine is where generation gen copies a rejected source, and where its report sits.
func (k Keys) Quarantine(sourceKey, gen string) (object, report string) {
	base := k.cfg.QuarantinePrefix + k.Segment(sourceKey) + "/" + gen + "/"
	return base + "source", base + "report.json"
}

// ParseQuarantine reads a key under the quarantine prefix: the source's segment and the
// generation; ok is false for a key sluice does not write there.
func (k Keys) ParseQuarantine(key string) (seg, gen string, ok bool) {
	rest, ok := strings.CutPrefix(key, k.cfg.QuarantinePrefix)
	if !ok {
		return "", "", false
	}
	for _, file := range []string{"/source", "/report.json"} {
		if head, found := strings.CutSuffix(rest, file); found {
			i := strings.LastIndexByte(head, '/')
			if i > 0 && isGeneration(head[i+1:]) {
				return head[:i], head[i+1:], true
			}
		}
	}
	return "", "", false
}

// OutputKey is a key under the output prefix, read back: a manifest, or a rendition of one
// generation. Seg is the source's segment (see Segment).
type OutputKey struct {
	Seg, Gen, File string
	Manifest       bool
}

// ParseOutput reads a key under the output prefix; ok is false for a key sluice does not write
// there. It is unambiguous: a manifest is the only key ending in "/manifest.json" (renditions
// end in an image extension), and a rendition's generation is the 24-hex-digit segment before
// its file name.
func (k Keys) ParseOutput(key string) (OutputKey, bool) {
	rest, ok := strings.CutPrefix(key, k.cfg.OutputPrefix)
	if !ok {
		return OutputKey{}, false
	}
	if seg, ok := strings.CutSuffix(rest, "/manifest.json"); ok && seg != "" {
		return OutputKey{Seg: seg, Manifest: true}, true
	}
	i := strings.LastIndexByte(rest, '/')
	if i < 0 {
		return OutputKey{}, false
	}
	j := strings.LastIndexByte(rest[:i], '/')
	if j <= 0 || !isGeneration(rest[j+1:i]) {
		return OutputKey{}, false
	}
	return OutputKey{Seg: rest[:j], Gen: rest[j+1 : i], File: rest[i+1:]}, true
}

func isGeneration(s string) bool {
	if len(s) != genBytes {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Ours reports whether bucket/key is one of sluice's own outputs (final, temp or quarantine):
// such a key is never processed, whatever the trigger says.
func (k Keys) Ours(bucket, key string) bool {
	return (bucket == k.cfg.OutputBucket && (strings.HasPrefix(key, k.cfg.OutputPrefix) || strings.HasPrefix(key, k.cfg.TempPrefix))) ||
		(bucket == k.cfg.QuarantineBucket && strings.HasPrefix(key, k.cfg.QuarantinePrefix))
}

// candidates lists every key a recipe's renditions may have under key(name, ext): both
// extensions for an "auto" format, whose choice depends on the source.
func (k Keys) candidates(rc recipe.Recipe, key func(name, ext string) string) []string {
	var out []string
	for _, rd := range rc.Renditions {
		formats := []recipe.Format{rd.Format}
		if rd.Format == recipe.Auto {
			formats = []recipe.Format{recipe.JPEG, recipe.PNG}
		}
		for _, f := range formats {
			out = append(out, key(rd.Name, render.Output{Format: f}.Ext()))
		}
	}
	return out
}

// Location is one object: a bucket and a key.
type Location struct{ Bucket, Key string }

// Parts of a generation, for sweep.
type genParts struct{ temps, renditions, evidence bool }

// generationKeys lists the keys of the chosen parts generation gen of a source may have
// written: temp keys and renditions as the current recipe names them (the reconciler finds any
// other), the quarantine copy and report.
func (k Keys) generationKeys(rc recipe.Recipe, sourceKey, gen string, parts genParts) []Location {
	var out []Location
	in := func(bucket string, keys []string) {
		for _, key := range keys {
			out = append(out, Location{bucket, key})
		}
	}
	if parts.temps {
		in(k.cfg.OutputBucket, k.candidates(rc, func(name, ext string) string { return k.Temp(gen, sourceKey, name, ext) }))
	}
	if parts.renditions {
		in(k.cfg.OutputBucket, k.candidates(rc, func(name, ext string) string { return k.Final(sourceKey, gen, name, ext) }))
	}
	if parts.evidence {
		object, report := k.Quarantine(sourceKey, gen)
		in(k.cfg.QuarantineBucket, []string{object, report})
	}
	return out
}

// RecipeVersion identifies the recipe (and watermark) this processor renders with.
func (p *Processor) RecipeVersion() string { return p.recipeVersion }

// Keys returns the processor's key scheme.
func (p *Processor) Keys() Keys { return Keys{cfg: p.cfg} }

// Process handles one object event. Only transient failures come back as Result.Err: bad
// files are quarantined and count as handled.
func (p *Processor) Process(ctx context.Context, requestID string, ev trigger.ObjectEvent) Result {
	res := Result{Bucket: ev.Bucket, Key: ev.Key}
	log := p.log.With("request_id", requestID, "bucket", ev.Bucket, "key", ev.Key)
	m := metrics.NewSet()
	start := p.now()
	defer func() {
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
	err := r.stage("Head", func() (err error) {
		src, err = r.p.objects.Head(r.ctx, r.ev.Bucket, r.ev.Key)
		return err
	})
	switch {
	case errors.Is(err, storage.ErrNotFound) && r.ev.Action == trigger.Removed:
		r.remove(res)
	case errors.Is(err, storage.ErrNotFound):
		res.Outcome, res.Detail = Skipped, "the object no longer exists"
	case err != nil:
		res.Outcome, res.Err = Failed, err
	default:
		// A creation, or a removal of a key that still has a current object (re-created since,
		// or a non-current version was removed): either way the current object is what counts.
		r.do(res, src)
	}
}

// run is the work on one object.
type run struct {
	p         *Processor
	ctx       context.Context
	requestID string
	ev        trigger.ObjectEvent
	log       *slog.Logger
	m         *metrics.Set
	rec       state.Record // the claimed record (claimed), or the one found
	claimed   bool
	deadline  time.Time // the invocation's deadline, if it has one
}

// stage times one step and records it as a metric.
func (r *run) stage(name string, f func() error) error {
	t := r.p.now()
	err := f()
	r.m.Add("Stage"+name, metrics.Milliseconds, float64(r.p.now().Sub(t).Milliseconds()))
	return err
}

// do processes the object src, which a HEAD just found.
func (r *run) do(res *Result, src storage.Object) {
	res.Version = contentVersion(src)
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
		return
	}
	r.rec.Outputs, r.rec.ManifestKey = outputs, manifestKey
	r.rec.DurationMS = now.Sub(r.rec.UpdatedAt).Milliseconds()
	if err := r.finish(state.Succeeded, ""); err != nil {
		res.Outcome, res.Err = Failed, err
		return
	}
	res.Outcome, res.Detail = Succeeded, fmt.Sprintf("%d renditions, manifest %s", len(outputs), manifestKey)
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
	return err != nil && !errors.Is(err, state.ErrLeaseLost) && failure.Classify(err) != failure.IsPermanent && r.ctx.Err() == nil
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
	return r.deadline.Add(2 * state.CommitWindow)
}

func (r *run) claim(src storage.Object) (state.Verdict, state.Record, error) {
	lease := r.leaseUntil()
	req := state.ClaimRequest{
		Bucket: src.Bucket, Key: src.Key,
		ObjectVersion: contentVersion(src), ObjectETag: src.ETag, ObjectSize: src.Size,
		Sequencer: r.ev.Sequencer, RecipeVersion: r.p.recipeVersion,
		RequestID: r.requestID, Token: newToken(),
		LeaseUntil: lease, MaxAttempts: r.p.cfg.MaxAttempts, Redrive: r.ev.Redrive,
	}
	var (
		verdict state.Verdict
		rec     state.Record
	)
	err := r.stage("Claim", func() (err error) {
		verdict, rec, err = r.p.states.Claim(r.ctx, req, r.p.now)
		return err
	})
	return verdict, rec, err
}

// process validates, renders and publishes; it returns the outputs and the manifest key.
func (r *run) process(src storage.Object) ([]state.Output, string, error) {
	if err := media.CheckSize(src.Size, r.p.cfg.Limits); err != nil {
		return nil, "", err
	}
	var data []byte
	err := r.stage("Download", func() (err error) {
		data, err = r.p.objects.Get(r.ctx, src, r.p.cfg.Limits.MaxBytes)
		return err
	})
	if errors.Is(err, storage.ErrTooLarge) {
		return nil, "", failure.Permanent(failure.TooLarge, "the file grew past the limit of %d bytes while being read", r.p.cfg.Limits.MaxBytes)
	}
	if errors.Is(err, storage.ErrPreconditionFailed) || errors.Is(err, storage.ErrNotFound) {
		// Overwritten or deleted since HEAD: the newer object has its own event.
		return nil, "", failure.Transient(fmt.Errorf("the object changed while being read: %w", err))
	}
	if err != nil {
		return nil, "", err
	}
	r.m.Add("BytesIn", metrics.Bytes, float64(len(data)))
	sum := sha256.Sum256(data)
	srcSHA := hex.EncodeToString(sum[:])
	if src.SHA256 != "" && src.SHA256 != srcSHA {
		return nil, "", failure.Permanent(failure.ChecksumMismatch,
			"the file's SHA-256 is %s but the object declares %s", srcSHA, src.SHA256)
	}
	info, err := media.Inspect(data, r.p.cfg.Limits)
	if err != nil {
		return nil, "", err
	}
	var outs []render.Output
	err = r.stage("Transform", func() error {
		img, err := media.Decode(data, r.p.renderer.Need)
		if err != nil {
			return err
		}
		data = nil // the decoded image is all we need from here on
		outs, err = r.p.renderer.Render(r.ctx, img.Image, image.Pt(img.Width, img.Height))
		return err
	})
	if err != nil {
		return nil, "", err
	}
	published := make([]state.Output, 0, len(outs))
	for _, o := range outs {
		if err := r.ctx.Err(); err != nil {
			return nil, "", failure.Transient(fmt.Errorf("deadline before publishing %s: %w", o.Name, err))
		}
		var out state.Output
		err := r.stage("Publish", func() (err error) {
			out, err = r.publish(src, o)
			return err
		})
		if err != nil {
			return nil, "", err
		}
		r.m.Add("BytesOut", metrics.Bytes, float64(out.Size))
		published = append(published, out)
	}
	var manifestKey string
	err = r.stage("Manifest", func() (err error) {
		manifestKey, err = r.commit(src, srcSHA, info, published)
		return err
	})
	return published, manifestKey, err
}

// publish runs the output protocol for one rendition: put to a temp key with its SHA-256 →
// verify the stored checksum → copy to the generation's final key only if the temp object is
// still the one verified → delete the temp key. The final key belongs to this claim's
// generation, which no other claim writes, so the copy needs no fence: nothing is visible until
// the manifest names the generation (commit).
func (r *run) publish(src storage.Object, o render.Output) (state.Output, error) {
	keys := r.p.Keys()
	gen := r.rec.ClaimToken
	tmp := keys.Temp(gen, src.Key, o.Name, o.Ext())
	final := keys.Final(src.Key, gen, o.Name, o.Ext())
	w, err := r.p.objects.Put(r.ctx, storage.Put{
		Bucket: r.p.cfg.OutputBucket, Key: tmp, Body: o.Body, ContentType: o.ContentType(),
		Metadata: r.metadata(src),
	})
	if err != nil {
		return state.Output{}, err
	}
	if err := r.verify(tmp, o.Body, w); err != nil {
		return state.Output{}, err
	}
	if _, err := r.p.objects.Copy(r.ctx, storage.Copy{
		SrcBucket: r.p.cfg.OutputBucket, SrcKey: tmp, IfMatch: w.ETag,
		DstBucket: r.p.cfg.OutputBucket, DstKey: final,
	}); err != nil {
		return state.Output{}, failure.Transient(err)
	}
	r.deleteTemp(tmp)
	return state.Output{
		Name: o.Name, Key: final, Size: int64(len(o.Body)), SHA256: w.SHA256,
		Width: o.Width, Height: o.Height, Format: string(o.Format),
	}, nil
}

// verify checks that the temp object holds exactly the bytes sent: by the SHA-256 S3 computed
// over what it stored, reported in the PUT's answer (S3 also refuses a PUT whose bytes do not
// match the SHA-256 sent with them), or, from a server that does not report one, by a HEAD of
// the size and stored checksum.
func (r *run) verify(tmp string, body []byte, w storage.Written) error {
	if w.Stored != "" {
		if w.Stored != w.SHA256 {
			return failure.Transient(fmt.Errorf("verify %s: stored sha256 %s, wrote %s", tmp, w.Stored, w.SHA256))
		}
		return nil
	}
	head, err := r.p.objects.Head(r.ctx, r.p.cfg.OutputBucket, tmp)
	if err != nil {
		return err
	}
	if head.Size != int64(len(body)) || head.SHA256 != w.SHA256 {
		return failure.Transient(fmt.Errorf("verify %s: stored %d bytes sha256 %s, wrote %d bytes sha256 %s",
			tmp, head.Size, head.SHA256, len(body), w.SHA256))
	}
	return nil
}

// Metadata keys sluice writes on what it publishes.
const (
	fenceKey        = "sluice-fence"      // the claim's fencing number
	genKey          = "sluice-generation" // the claim's generation
	sourceBucketKey = "sluice-source-bucket"
	sourceKeyKey    = "sluice-source-key" // URL-escaped (metadata is ASCII)
)

// metadata is the metadata of everything this claim publishes for src: the recipe version, the
// claim's fence and generation, and the source it came from (the reconciler reads it back).
func (r *run) metadata(src storage.Object) map[string]string {
	return map[string]string{
		"sluice-recipe": r.p.recipeVersion, "sluice-source-version": r.rec.ObjectVersion,
		fenceKey: strconv.FormatInt(r.rec.Fence, 10), genKey: r.rec.ClaimToken,
		sourceBucketKey: src.Bucket, sourceKeyKey: url.QueryEscape(src.Key),
	}
}

// SourceOf reads back, from an output's or a quarantine object's metadata, the source it was
// written for and the generation that wrote it.
func SourceOf(o storage.Object) (bucket, key, gen string, ok bool) {
	key, err := url.QueryUnescape(o.Metadata[sourceKeyKey])
	bucket, gen = o.Metadata[sourceBucketKey], o.Metadata[genKey]
	return bucket, key, gen, err == nil && bucket != "" && key != "" && isGeneration(gen)
}

// putFenced writes the mutable object bucket/key (the manifest) only for a claim that still
// holds the record, and never over what a later claim wrote: it re-checks the
// claim (consistent read), reads the current object (its body, for the caller's clean-up), and
// puts with If-Match on what it read (If-None-Match when absent), refusing when the current
// object carries a later fence. S3 and MinIO both enforce the precondition on PutObject, so a
// writer that lost the race between the read and the put fails instead of overwriting.
func (r *run) putFenced(p storage.Put) (prev []byte, err error) {
	if err := r.p.states.Holds(r.ctx, r.rec, r.p.now()); err != nil {
		return nil, err
	}
	// The lease had at least a commit window left: the read and the put finish within it.
	ctx, cancel := context.WithTimeout(r.ctx, state.CommitWindow/2)
	defer cancel()
	cur, body, err := r.p.objects.Read(ctx, p.Bucket, p.Key, maxMutableBytes)
	found := err == nil
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return nil, err
	}
	if fence, _ := strconv.ParseInt(cur.Metadata[fenceKey], 10, 64); found && fence > r.rec.Fence {
		return nil, fmt.Errorf("s3://%s/%s was written by a later claim (fence %d > %d): %w",
			p.Bucket, p.Key, fence, r.rec.Fence, state.ErrLeaseLost)
	}
	p.Only = storage.Replacing(cur, found)
	if _, err := r.p.objects.Put(ctx, p); err != nil {
		if errors.Is(err, storage.ErrPreconditionFailed) {
			return nil, fmt.Errorf("s3://%s/%s changed under this claim: %w", p.Bucket, p.Key, state.ErrLeaseLost)
		}
		return nil, failure.Transient(err)
	}
	return body, nil
}

// maxMutableBytes bounds a manifest read back.
const maxMutableBytes = 1 << 20

// sweep deletes, under this claim, what the record's generations left that is neither the
// committed generation's renditions nor the evidence generation's quarantine copy: the
// renditions listed (by the record, or a replaced manifest) of other generations, and the temp
// keys, renditions and quarantine copies of the abandoned generations, of the previous evidence
// and of this claim's own. None of it can be committed or kept as evidence any more
// (state.MayDeleteOutput, state.MayDeleteEvidence). The record then lists no abandoned
// generation and keeps evidence as its evidence generation.
func (r *run) sweep(committed, evidence string, listed []state.Output) error {
	keys := r.p.Keys()
	var doomed []Location
	for _, o := range listed {
		if k, _ := keys.ParseOutput(o.Key); k.Gen != committed {
			doomed = append(doomed, Location{r.p.cfg.OutputBucket, o.Key})
		}
	}
	gens := append(slices.Clone(r.rec.Abandoned), r.rec.ClaimToken, r.rec.QuarantineGen)
	slices.Sort(gens)
	for _, gen := range slices.Compact(gens) {
		// This claim's own committed generation: publish deleted its temp keys, and it wrote no
		// quarantine copy.
		if gen != "" && !(gen == r.rec.ClaimToken && gen == committed) {
			doomed = append(doomed, keys.generationKeys(r.p.cfg.Recipe, r.ev.Key, gen,
				genParts{temps: true, renditions: gen != committed, evidence: gen != evidence})...)
		}
	}
	var errs []error
	for _, l := range doomed {
		if err := r.p.objects.Delete(context.WithoutCancel(r.ctx), l.Bucket, l.Key); err != nil {
			errs = append(errs, err)
		}
	}
	r.rec.Abandoned, r.rec.QuarantineGen = nil, evidence
	return errors.Join(errs...)
}

// dropOwnGeneration deletes what this claim wrote once it lost the claim: its generation can
// never be committed or kept as evidence now (state.MayDeleteOutput, state.MayDeleteEvidence).
func (r *run) dropOwnGeneration() {
	for _, l := range r.p.Keys().generationKeys(r.p.cfg.Recipe, r.ev.Key, r.rec.ClaimToken, genParts{true, true, true}) {
		if err := r.p.objects.Delete(context.WithoutCancel(r.ctx), l.Bucket, l.Key); err != nil {
			r.log.Warn("output not deleted; the reconciler will", "bucket", l.Bucket, "output_key", l.Key, "err", err)
		}
	}
}

// deleteTemp removes a temp object; one left behind (this failing) expires by lifecycle rule.
func (r *run) deleteTemp(key string) {
	if err := r.p.objects.Delete(context.WithoutCancel(r.ctx), r.p.cfg.OutputBucket, key); err != nil {
		r.log.Warn("temp object not deleted", "temp_key", key, "err", err)
	}
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
