package ops

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"iter"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sluice-dev/sluice/pkg/processor"
	"github.com/sluice-dev/sluice/pkg/state"
	"github.com/sluice-dev/sluice/pkg/storage"
	"github.com/sluice-dev/sluice/pkg/trigger"
)

// FindingKind is one kind of inconsistency between the staging bucket, the state table and the
// published outputs.
type FindingKind string

// Finding kinds. Each says what --fix does about it.
const (
	NeverProcessed     FindingKind = "never_processed"     // an upload (or its latest version) has no finished record and no manifest: process it
	Stuck              FindingKind = "stuck"               // a claim whose lease expired (the worker died): process it
	FailedAttempts     FindingKind = "failed"              // FAILED, waiting for a delivery that may never come: process it
	OutputMissing      FindingKind = "output_missing"      // a SUCCEEDED record's output or manifest is gone: process it again
	OutputCorrupt      FindingKind = "output_corrupt"      // an output's stored checksum is not the recorded one: process it again
	SourceMissing      FindingKind = "source_missing"      // a record or manifest whose upload is gone: remove its outputs (DELETED)
	OrphanedOutput     FindingKind = "orphaned_output"     // a rendition of a generation nobody can commit any more: delete it
	OrphanedQuarantine FindingKind = "orphaned_quarantine" // a quarantine copy or report no QUARANTINED record keeps: delete it
	Unannounced        FindingKind = "unannounced"         // an outcome committed but never announced (its event, its CDN invalidation): deliver it again, which announces it
)

// announceGrace is how long after its commit an outcome may still be waiting for its writer's
// own announcement before a pass calls it unannounced (an early repair only announces it twice,
// under the same id).
const announceGrace = time.Minute

// priority orders repairs: removals and lost outputs first (a user sees them), then garbage,
// then work to do again.
var priority = map[FindingKind]int{
	SourceMissing: 0, OutputMissing: 1, OutputCorrupt: 2, Unannounced: 3, OrphanedQuarantine: 4, OrphanedOutput: 5,
	Stuck: 6, FailedAttempts: 7, NeverProcessed: 8,
}

// Finding is one inconsistency.
type Finding struct {
	Kind   FindingKind `json:"kind"`
	Bucket string      `json:"bucket"`
	Key    string      `json:"key"` // the upload's key, or the object's for the orphaned kinds
	Detail string      `json:"detail"`
}

// Phase is the part of a reconciliation pass a Cursor stands in.
type Phase string

// The phases, in the order a pass walks them.
const (
	PhaseSources    Phase = "sources"    // the staging listing beside the state table's SourceIndex
	PhaseOutputs    Phase = "outputs"    // the output listing
	PhaseQuarantine Phase = "quarantine" // the quarantine listing
	PhaseDone       Phase = "done"
)

// Cursor is where a reconciliation pass stands, so a run that stops early (its deadline, its
// budget of findings) is resumed by the next one where it left off. The zero Cursor starts a
// pass; so does a done one.
type Cursor struct {
	Pass     time.Time `json:"pass"`     // when the pass began
	Previous time.Time `json:"previous"` // when the pass before it began (zero: none)
	Phase    Phase     `json:"phase"`
	After    string    `json:"after"` // the last key the phase has judged
}

// resume is the cursor a run at now works from.
func (c Cursor) resume(now time.Time) Cursor {
	switch {
	case c.Pass.IsZero():
		return Cursor{Pass: now, Phase: PhaseSources}
	case c.Phase == PhaseDone:
		return Cursor{Pass: now, Previous: c.Pass, Phase: PhaseSources}
	}
	return c
}

// ReconcileOptions bounds one run of a pass.
type ReconcileOptions struct {
	// SamplePercent (0 to 100) is the share of SUCCEEDED records whose manifest and outputs a
	// pass HEADs, picked by a hash of the key and the pass. Records changed since the previous
	// pass began are always checked, and so is every record in a first pass.
	SamplePercent int
	// Until, when set, is when the run stops starting new pages (it always does one).
	Until time.Time
	// MaxFindings, above zero, stops the run right after the object that brings the findings to
	// that many.
	MaxFindings int
}

// Reconcile runs a whole pass over the uploads under prefix in bucket and checks every output:
// see ReconcileFrom.
func (o *Ops) Reconcile(ctx context.Context, bucket, prefix string) ([]Finding, error) {
	found, _, err := o.ReconcileFrom(ctx, bucket, prefix, Cursor{}, ReconcileOptions{SamplePercent: 100})
	return found, err
}

// ReconcileFrom compares the uploads under prefix in bucket, their state records, their
// published outputs and their quarantine copies, from cursor from, and lists every
// inconsistency, most urgent first, with the cursor to resume from (PhaseDone once the pass is
// complete). It reads; it changes nothing.
//
// It holds a page at a time, never a listing or the table: the staging listing and the
// records' keys (the SourceIndex, in the same order) are merged a step at a time and each page
// of up to state.MaxBatchGet sources is judged on one BatchGetItem of their records; the output
// and quarantine listings are judged a page at a time the same way. Objects written after the
// run started are left to the next run, and an object is called orphaned only by the
// lifecycle's rules (state.MayDeleteOutput, state.MayDeleteEvidence), judged on fresh reads of
// its own source's record and manifest: never the generation a manifest names, never one a live
// claim may still commit, never a source outside bucket and prefix.
func (o *Ops) ReconcileFrom(ctx context.Context, bucket, prefix string, from Cursor, opt ReconcileOptions) ([]Finding, Cursor, error) {
	now := o.now()
	rc := &reconciliation{o: o, bucket: bucket, prefix: prefix, opt: opt, cur: from.resume(now), start: now}
	err := rc.run(ctx)
	sort.Slice(rc.found, func(i, j int) bool {
		a, b := rc.found[i], rc.found[j]
		if a.Kind != b.Kind {
			return priority[a.Kind] < priority[b.Kind]
		}
		return a.Key < b.Key
	})
	return rc.found, rc.cur, err
}

// reconciliation is one run of a pass.
type reconciliation struct {
	o              *Ops
	bucket, prefix string
	opt            ReconcileOptions
	cur            Cursor
	start          time.Time // leases are judged at it; objects written after it wait
	found          []Finding
}

// errPaused stops a walk when the run's budget is spent; the cursor says where.
var errPaused = errors.New("reconciliation paused")

func (rc *reconciliation) run(ctx context.Context) error {
	for rc.cur.Phase != PhaseDone {
		var err error
		next := PhaseDone
		switch rc.cur.Phase {
		case PhaseSources:
			err, next = rc.sources(ctx), PhaseOutputs
		case PhaseOutputs:
			err, next = rc.outputs(ctx), PhaseQuarantine
		case PhaseQuarantine:
			err = rc.quarantine(ctx)
		default:
			return fmt.Errorf("reconcile cursor: unknown phase %q", rc.cur.Phase)
		}
		if errors.Is(err, errPaused) {
			return nil
		}
		if err != nil {
			return err
		}
		rc.cur.Phase, rc.cur.After = next, ""
	}
	return nil
}

func (rc *reconciliation) add(kind FindingKind, bucket, key, format string, args ...any) {
	rc.found = append(rc.found, Finding{Kind: kind, Bucket: bucket, Key: key, Detail: fmt.Sprintf(format, args...)})
}

// judged moves the cursor past key; errPaused once the findings budget is spent.
func (rc *reconciliation) judged(key string) error {
	rc.cur.After = key
	if rc.opt.MaxFindings > 0 && len(rc.found) >= rc.opt.MaxFindings {
		return errPaused
	}
	return nil
}

// paged ends a page: errPaused once the run is past its time (so a run always does one page).
func (rc *reconciliation) paged() error {
	if !rc.opt.Until.IsZero() && !rc.o.now().Before(rc.opt.Until) {
		return errPaused
	}
	return nil
}

// source is one key of the sources phase: an upload, a record, or both.
type source struct {
	key    string
	upload *storage.Object // nil: no upload
}

// sources merges the staging listing with the records' keys, both in key order, and judges them
// a page at a time.
func (rc *reconciliation) sources(ctx context.Context) error {
	uploads, stopUploads := iter.Pull2(walk(func(f func(storage.Object) error) error {
		return rc.o.objects.ListAfter(ctx, rc.bucket, rc.prefix, rc.cur.After, f)
	}))
	defer stopUploads()
	records, stopRecords := iter.Pull2(walk(func(f func(string) error) error {
		return rc.o.states.Keys(ctx, rc.bucket, rc.prefix, rc.cur.After, f)
	}))
	defer stopRecords()
	up, upErr, upOK := uploads()
	key, keyErr, keyOK := records()
	page := make([]source, 0, state.MaxBatchGet)
	for upOK || keyOK {
		if err := errors.Join(upErr, keyErr); err != nil {
			return err
		}
		var s source
		switch {
		case upOK && (!keyOK || up.Key <= key):
			ob := up
			s = source{key: ob.Key, upload: &ob}
			if keyOK && key == ob.Key {
				key, keyErr, keyOK = records()
			}
			up, upErr, upOK = uploads()
		default:
			s = source{key: key}
			key, keyErr, keyOK = records()
		}
		if page = append(page, s); len(page) == cap(page) {
			if err := rc.judgeSources(ctx, page); err != nil {
				return err
			}
			page = page[:0]
		}
	}
	if err := errors.Join(upErr, keyErr); err != nil {
		return err
	}
	if len(page) == 0 {
		return nil
	}
	return rc.judgeSources(ctx, page)
}

// sourceFields are the attributes the sources phase reads of each record.
var sourceFields = []string{"bucket", "key", "status", "object_etag", "lease_expires", "updated_at", "attempts", "last_error", "outputs", "manifest_key",
	"object_version", "recipe_version", "claim_token", "announced"}

// judgeSources reads the page's records (one consistent BatchGetItem) and judges each source.
func (rc *reconciliation) judgeSources(ctx context.Context, page []source) error {
	ids := make([]string, len(page))
	for i, s := range page {
		ids[i] = state.ID(rc.bucket, s.key)
	}
	recs, err := rc.o.states.GetMany(ctx, ids, state.Read{Fields: sourceFields})
	if err != nil {
		return err
	}
	records := make([]*state.Record, len(page))
	for i := range page {
		if rec, ok := recs[ids[i]]; ok {
			records[i] = &rec
		}
	}
	lost, err := rc.checkPageOutputs(ctx, page, records)
	if err != nil {
		return err
	}
	for i, s := range page {
		if err := rc.judgeSource(ctx, s, records[i]); err != nil {
			return err
		}
		if lost[i] != nil {
			rc.found = append(rc.found, *lost[i])
		}
		if err := rc.judged(s.key); err != nil {
			return err
		}
	}
	return rc.paged()
}

// headsInFlight bounds the HEADs a page's output checks have in flight.
const headsInFlight = 16

// checkPageOutputs checks, in parallel, the manifest and outputs of the page's records that this
// pass checks (outputsDue); a finding by page index, nil where all is well or nothing was checked.
func (rc *reconciliation) checkPageOutputs(ctx context.Context, page []source, records []*state.Record) ([]*Finding, error) {
	lost := make([]*Finding, len(page))
	errs := make([]error, len(page))
	slots := make(chan struct{}, headsInFlight)
	var wg sync.WaitGroup
	for i, s := range page {
		if !rc.outputsDue(s, records[i]) {
			continue
		}
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			lost[i], errs[i] = rc.o.checkOutputs(ctx, *records[i])
		})
	}
	wg.Wait()
	return lost, errors.Join(errs...)
}

// outputsDue reports whether this pass checks the outputs of s's record: a SUCCEEDED record
// whose upload is there, sampled.
func (rc *reconciliation) outputsDue(s source, rec *state.Record) bool {
	return s.upload != nil && rec != nil && rec.Status == state.Succeeded && rc.sampled(*rec)
}

// judgeSource judges an upload against its record (nil: none), then the record against its
// upload (checkPageOutputs judges its outputs).
func (rc *reconciliation) judgeSource(ctx context.Context, s source, rec *state.Record) error {
	if up := s.upload; up != nil {
		switch {
		case rec == nil:
			if published, err := rc.o.publishedFor(ctx, *up); err != nil {
				return err
			} else if !published {
				rc.add(NeverProcessed, rc.bucket, s.key, "no state record, and no manifest for this content and recipe")
			}
		case rec.Stuck(rc.start):
			rc.add(Stuck, rc.bucket, s.key, "%s since %s; lease expired %s", rec.Status, rec.UpdatedAt.Format(time.RFC3339), rec.LeaseExpires.Format(time.RFC3339))
		case rec.Status == state.Failed:
			rc.add(FailedAttempts, rc.bucket, s.key, "FAILED after %d of %d attempts: %s", rec.Attempts, rc.o.cfg.MaxAttempts, rec.LastError)
		case rec.LeaseLive(rc.start):
			// being processed or removed now
		case !rec.Follows(up.ETag):
			rc.add(NeverProcessed, rc.bucket, s.key, "the record is %s for ETag %s; the upload is ETag %s", rec.Status, rec.ObjectETag, up.ETag)
		}
	}
	if rec != nil && rc.o.cfg.Announces() && rec.Unannounced() && rec.UpdatedAt.Before(rc.start.Add(-announceGrace)) {
		rc.add(Unannounced, rc.bucket, s.key, "%s since %s, never announced", rec.Status, rec.UpdatedAt.Format(time.RFC3339))
	}
	if rec == nil || rec.Status == state.Deleted || rec.LeaseLive(rc.start) {
		return nil
	}
	if s.upload == nil {
		rc.add(SourceMissing, rc.bucket, s.key, "%s, but the upload is gone", rec.Status)
	}
	return nil
}

// sampled reports whether this pass checks rec's outputs: every record in a first pass or one
// that changed since the previous pass began, otherwise a stable SamplePercent of them.
func (rc *reconciliation) sampled(rec state.Record) bool {
	if rc.opt.SamplePercent >= 100 || rc.cur.Previous.IsZero() || !rec.UpdatedAt.Before(rc.cur.Previous) {
		return true
	}
	h := fnv.New32a()
	h.Write([]byte(rc.cur.Pass.UTC().Format(time.RFC3339Nano)))
	h.Write([]byte(rec.Key))
	return int(h.Sum32()%100) < rc.opt.SamplePercent
}

// listedFields are the attributes the output and quarantine phases read of each record.
var listedFields = []string{"bucket", "key", "status", "outputs", "quarantine_gen"}

// listed walks a listing from the cursor a page of up to state.MaxBatchGet objects at a time,
// reads the records of the page's sources with one BatchGetItem (segOf gives an object's
// source segment; a plain one under prefix is the source's key, a hashed one is resolved by the
// judge's own reads) and judges each object with its record (nil: none known).
func (rc *reconciliation) listed(ctx context.Context, bucket, prefix string, segOf func(key string) (string, bool), judge func(storage.Object, *state.Record) error) error {
	page := make([]storage.Object, 0, state.MaxBatchGet)
	idOf := func(key string) (string, bool) {
		seg, ok := segOf(key)
		if !ok || strings.HasPrefix(seg, "_/") || !strings.HasPrefix(seg, rc.prefix) {
			return "", false
		}
		return state.ID(rc.bucket, seg), true
	}
	flush := func() error {
		var ids []string
		for _, ob := range page {
			if id, ok := idOf(ob.Key); ok {
				ids = append(ids, id)
			}
		}
		recs, err := rc.o.states.GetMany(ctx, ids, state.Read{Fields: listedFields})
		if err != nil {
			return err
		}
		for _, ob := range page {
			var recp *state.Record
			if id, ok := idOf(ob.Key); ok {
				if rec, found := recs[id]; found {
					recp = &rec
				}
			}
			if err := judge(ob, recp); err != nil {
				return err
			}
			if err := rc.judged(ob.Key); err != nil {
				return err
			}
		}
		page = page[:0]
		return rc.paged()
	}
	err := rc.o.objects.ListAfter(ctx, bucket, prefix, rc.cur.After, func(ob storage.Object) error {
		if page = append(page, ob); len(page) == cap(page) {
			return flush()
		}
		return nil
	})
	if err != nil || len(page) == 0 {
		return err
	}
	return flush()
}

// outputs judges the output listing: renditions no record lists and manifests without a record.
func (rc *reconciliation) outputs(ctx context.Context) error {
	keys := rc.o.proc.Keys()
	segOf := func(key string) (string, bool) {
		out, ok := keys.ParseOutput(key)
		return out.Seg, ok
	}
	return rc.listed(ctx, rc.o.cfg.OutputBucket, rc.o.cfg.OutputPrefix, segOf, func(ob storage.Object, rec *state.Record) error {
		out, ok := keys.ParseOutput(ob.Key)
		if !ok || !ob.LastModified.Before(rc.start) {
			return nil
		}
		switch {
		case out.Manifest && rec != nil:
			return nil // the sources phase judges the record's manifest
		case out.Manifest && !strings.HasPrefix(out.Seg, "_/") && !strings.HasPrefix(out.Seg, rc.prefix):
			return nil // a plain segment is its source's key: another prefix's source
		case out.Manifest:
			return rc.strayManifest(ctx, ob)
		case rec != nil && listsKey(rec.Outputs, ob.Key):
			return nil
		}
		return rc.judge(ctx, OrphanedOutput, ob)
	})
}

// quarantine judges the quarantine listing: copies and reports no QUARANTINED record keeps.
func (rc *reconciliation) quarantine(ctx context.Context) error {
	keys := rc.o.proc.Keys()
	segOf := func(key string) (string, bool) {
		seg, _, ok := keys.ParseQuarantine(key)
		return seg, ok
	}
	return rc.listed(ctx, rc.o.cfg.QuarantineBucket, rc.o.cfg.QuarantinePrefix, segOf, func(ob storage.Object, rec *state.Record) error {
		_, gen, ok := keys.ParseQuarantine(ob.Key)
		if !ok || !ob.LastModified.Before(rc.start) || (rec != nil && (rec.QuarantineGen == gen || listsKey(rec.Outputs, ob.Key))) {
			return nil
		}
		return rc.judge(ctx, OrphanedQuarantine, ob)
	})
}

// judge adds ob as a finding of kind if orphanOf says it is one.
func (rc *reconciliation) judge(ctx context.Context, kind FindingKind, ob storage.Object) error {
	orphan, detail, err := rc.o.orphanOf(ctx, kind, ob.Bucket, ob.Key, rc.bucket, rc.prefix)
	if err == nil && orphan {
		rc.add(kind, ob.Bucket, ob.Key, "%s", detail)
	}
	return err
}

// strayManifest looks at a manifest whose source's record was not found by its segment (it
// expired, or the segment is hashed): if its source is in bucket under prefix, has no record
// (the sources phase judges those) and its upload is gone, the removal was lost: SourceMissing.
func (rc *reconciliation) strayManifest(ctx context.Context, ob storage.Object) error {
	_, body, err := rc.o.objects.Read(ctx, ob.Bucket, ob.Key, 1<<20)
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	m, err := processor.ReadManifest(body)
	if err != nil || m.Source.Bucket != rc.bucket || !strings.HasPrefix(m.Source.Key, rc.prefix) {
		return nil // not one of ours to judge
	}
	if _, found, err := rc.o.states.Get(ctx, state.ID(rc.bucket, m.Source.Key)); err != nil || found {
		return err
	}
	if _, err := rc.o.objects.Head(ctx, rc.bucket, m.Source.Key); !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	rc.add(SourceMissing, rc.bucket, m.Source.Key, "a manifest without a record, and the upload is gone")
	return nil
}

// walk turns a callback walk into a sequence, so that two walks can be merged a step at a time
// (iter.Pull2).
func walk[T any](list func(func(T) error) error) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		err := list(func(v T) error {
			if !yield(v, nil) {
				return errStopWalk
			}
			return nil
		})
		if err != nil && !errors.Is(err, errStopWalk) {
			var zero T
			yield(zero, err)
		}
	}
}

var errStopWalk = errors.New("walk stopped")

// publishedFor reports whether up, which has no state record (it expired, STATE_TTL_DAYS), has a
// manifest for its content and the current recipe: then it is done.
func (o *Ops) publishedFor(ctx context.Context, up storage.Object) (bool, error) {
	m, found, err := o.manifest(ctx, up.Key)
	if err != nil || !found {
		return false, err
	}
	return m.Source.Bucket == up.Bucket && m.Source.ETag == up.ETag && o.proc.Current(up.Key, m.RecipeVersion), nil
}

// manifest reads the manifest of source key; found is false when there is none.
func (o *Ops) manifest(ctx context.Context, key string) (processor.Manifest, bool, error) {
	_, body, err := o.objects.Read(ctx, o.cfg.OutputBucket, o.proc.Keys().Manifest(key), 1<<20)
	if errors.Is(err, storage.ErrNotFound) {
		return processor.Manifest{}, false, nil
	}
	if err != nil {
		return processor.Manifest{}, false, err
	}
	m, err := processor.ReadManifest(body)
	if err != nil {
		return processor.Manifest{}, false, fmt.Errorf("manifest of %s: %w", key, err)
	}
	return m, true, nil
}

// checkOutputs checks a SUCCEEDED record's manifest and outputs: present, with the recorded
// checksum.
func (o *Ops) checkOutputs(ctx context.Context, rec state.Record) (*Finding, error) {
	f := func(kind FindingKind, format string, args ...any) (*Finding, error) {
		return &Finding{Kind: kind, Bucket: rec.Bucket, Key: rec.Key, Detail: fmt.Sprintf(format, args...)}, nil
	}
	if _, err := o.objects.Head(ctx, o.cfg.OutputBucket, rec.ManifestKey); errors.Is(err, storage.ErrNotFound) {
		return f(OutputMissing, "manifest %s is missing", rec.ManifestKey)
	} else if err != nil {
		return nil, err
	}
	for _, out := range rec.Outputs {
		head, err := o.objects.Head(ctx, cmp.Or(out.Bucket, o.cfg.OutputBucket), out.Key)
		if errors.Is(err, storage.ErrNotFound) {
			return f(OutputMissing, "%s is missing", out.Key)
		}
		if err != nil {
			return nil, err
		}
		if head.SHA256 != out.SHA256 {
			return f(OutputCorrupt, "%s has sha256 %s, recorded %s", out.Key, head.SHA256, out.SHA256)
		}
	}
	return nil, nil
}

func listsKey(outs []state.Output, key string) bool {
	for _, o := range outs {
		if o.Key == key {
			return true
		}
	}
	return false
}

// orphanOf judges one object of the output (OrphanedOutput) or quarantine (OrphanedQuarantine)
// bucket with fresh reads, in the order the lifecycle rule needs: the object's metadata names
// its source and generation; the source must be in bucket under prefix; the source's record is
// read consistently first, then its manifest. Fix calls it again right before deleting.
func (o *Ops) orphanOf(ctx context.Context, kind FindingKind, objBucket, key, bucket, prefix string) (bool, string, error) {
	head, err := o.objects.Head(ctx, objBucket, key)
	if errors.Is(err, storage.ErrNotFound) {
		return false, "", nil
	}
	if err != nil {
		return false, "", err
	}
	srcBucket, srcKey, gen, ok := processor.SourceOf(head)
	if !ok || srcBucket != bucket || !strings.HasPrefix(srcKey, prefix) {
		return false, "", nil // not sluice's, or another run's sources
	}
	var recp *state.Record
	rec, found, err := o.states.Get(ctx, state.ID(srcBucket, srcKey))
	if err != nil {
		return false, "", err
	}
	if found {
		recp = &rec
	}
	now := o.now()
	rejected := kind == OrphanedQuarantine && o.proc.Keys().IsRejected(key)
	if kind == OrphanedQuarantine && !rejected {
		return state.MayDeleteEvidence(recp, gen, now), fmt.Sprintf("generation %s of %s is not the evidence its record keeps", gen, srcKey), nil
	}
	m, hasManifest, err := o.manifest(ctx, srcKey)
	if err != nil {
		return false, "", err
	}
	committed := ""
	if hasManifest {
		committed = m.Generation
	}
	if rejected {
		return state.MayDeleteRejected(recp, committed, gen, now), fmt.Sprintf("generation %s of %s is neither published nor the evidence its record keeps", gen, srcKey), nil
	}
	return state.MayDeleteOutput(recp, committed, gen, now), fmt.Sprintf("generation %s of %s is not published and nobody can commit it", gen, srcKey), nil
}

// FixOptions says how Fix works.
type FixOptions struct {
	Concurrency int
	// Force redrives never processed, stuck and failed files too (attempts start again from
	// one), as an operator asking for it means. Without it they are processed as a delivery
	// would, so a file that keeps failing still ends at MAX_ATTEMPTS: what a scheduled,
	// unattended reconciler needs. Missing or corrupt outputs are always redriven (the record
	// says the work is done).
	Force bool
}

// Fix repairs what Reconcile over bucket and prefix found, in the order found: it lets the
// processor remove the outputs of uploads that are gone, processes again what lost an output,
// was never processed, stuck or failed, and deletes orphaned objects, each judged again right
// before its delete.
func (o *Ops) Fix(ctx context.Context, bucket, prefix string, findings []Finding, opt FixOptions, prog Progress) (Counts, error) {
	var tally Tally
	tally.Total.Store(int64(len(findings)))
	if prog != nil {
		prog.SetTotal(int64(len(findings)))
	}
	send, wait := dispatch(ctx, func(in <-chan job) { o.runJobs(ctx, in, opt.Concurrency, 0, &tally, prog) })
	var errs []error
	for _, f := range findings {
		var ev trigger.ObjectEvent
		switch f.Kind {
		case OrphanedOutput, OrphanedQuarantine:
			k, err := o.deleteOrphan(ctx, f, bucket, prefix)
			if err != nil {
				errs = append(errs, err)
			}
			tally.add(k)
			if prog != nil {
				prog.Finished(k, f.Key, resultOfFix(f, k))
			}
			continue
		case SourceMissing:
			ev = trigger.ObjectEvent{Action: trigger.Removed, Name: "sluice:Reconcile", Bucket: f.Bucket, Key: f.Key}
		case Unannounced:
			// A delivery of the outcome's own event finds it done and announces it.
			rec, _, err := o.states.Get(ctx, state.ID(f.Bucket, f.Key))
			if err != nil {
				errs = append(errs, err)
				tally.add(KindFailed)
				continue
			}
			ev = trigger.ObjectEvent{Action: trigger.Created, Name: "sluice:Reconcile", Bucket: f.Bucket, Key: f.Key}
			if rec.Status == state.Deleted {
				ev.Action = trigger.Removed
			}
		default:
			force := opt.Force || f.Kind == OutputMissing || f.Kind == OutputCorrupt
			ev = trigger.ObjectEvent{Action: trigger.Created, Name: "sluice:Reconcile", Bucket: f.Bucket, Key: f.Key, Redrive: force}
		}
		if !send(job{ev: ev}) {
			break
		}
	}
	wait()
	return tally.Snapshot(), errors.Join(append(errs, ctx.Err())...)
}

// deleteOrphan deletes an orphaned object if it still is one.
func (o *Ops) deleteOrphan(ctx context.Context, f Finding, bucket, prefix string) (Kind, error) {
	orphan, _, err := o.orphanOf(ctx, f.Kind, f.Bucket, f.Key, bucket, prefix)
	switch {
	case err != nil:
		return KindFailed, err
	case !orphan:
		return KindSkipped, nil
	}
	if err := o.objects.Delete(ctx, f.Bucket, f.Key); err != nil {
		return KindFailed, err
	}
	return KindDone, nil
}
