package ops

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
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
)

// priority orders repairs: removals and lost outputs first (a user sees them), then garbage,
// then work to do again.
var priority = map[FindingKind]int{
	SourceMissing: 0, OutputMissing: 1, OutputCorrupt: 2, OrphanedQuarantine: 3, OrphanedOutput: 4,
	Stuck: 5, FailedAttempts: 6, NeverProcessed: 7,
}

// Finding is one inconsistency.
type Finding struct {
	Kind   FindingKind `json:"kind"`
	Bucket string      `json:"bucket"`
	Key    string      `json:"key"` // the upload's key, or the object's for the orphaned kinds
	Detail string      `json:"detail"`
}

// Reconcile compares the uploads under prefix in bucket, their state records, their published
// outputs and their quarantine copies, and lists every inconsistency, most urgent first. It
// reads; it changes nothing. Objects written after the run started are left to the next run,
// and an object is called orphaned only by the lifecycle's rules (state.MayDeleteOutput,
// state.MayDeleteEvidence), judged on fresh reads of its own source's record and manifest: never
// the generation a manifest names, never one a live claim may still commit, never a source
// outside bucket and prefix.
func (o *Ops) Reconcile(ctx context.Context, bucket, prefix string) ([]Finding, error) {
	start := o.now()
	uploads := map[string]storage.Object{}
	if err := o.objects.List(ctx, bucket, prefix, func(ob storage.Object) error {
		uploads[ob.Key] = ob
		return nil
	}); err != nil {
		return nil, err
	}
	records := map[string]state.Record{}
	if err := o.states.Scan(ctx, state.Read{Segments: o.Segments}, func(r state.Record) error {
		if r.Bucket == bucket && strings.HasPrefix(r.Key, prefix) {
			records[r.Key] = r
		}
		return nil
	}); err != nil {
		return nil, err
	}
	var found []Finding
	add := func(kind FindingKind, b, key, format string, args ...any) {
		found = append(found, Finding{Kind: kind, Bucket: b, Key: key, Detail: fmt.Sprintf(format, args...)})
	}
	keys := o.proc.Keys()
	for key, up := range uploads {
		rec, ok := records[key]
		switch {
		case !ok:
			if published, err := o.publishedFor(ctx, up); err != nil {
				return nil, err
			} else if !published {
				add(NeverProcessed, bucket, key, "no state record, and no manifest for this content and recipe")
			}
		case rec.Stuck(start):
			add(Stuck, bucket, key, "%s since %s; lease expired %s", rec.Status, rec.UpdatedAt.Format(time.RFC3339), rec.LeaseExpires.Format(time.RFC3339))
		case rec.Status == state.Failed:
			add(FailedAttempts, bucket, key, "FAILED after %d of %d attempts: %s", rec.Attempts, o.cfg.MaxAttempts, rec.LastError)
		case rec.LeaseLive(start):
			// being processed or removed now
		case !rec.Follows(up.ETag):
			add(NeverProcessed, bucket, key, "the record is %s for ETag %s; the upload is ETag %s", rec.Status, rec.ObjectETag, up.ETag)
		}
	}
	segs := map[string]state.Record{}
	for key, rec := range records {
		segs[keys.Segment(key)] = rec
		if rec.Status == state.Deleted || rec.LeaseLive(start) {
			continue
		}
		if _, ok := uploads[key]; !ok {
			add(SourceMissing, bucket, key, "%s, but the upload is gone", rec.Status)
			continue
		}
		if rec.Status == state.Succeeded {
			f, err := o.checkOutputs(ctx, rec)
			if err != nil {
				return nil, err
			}
			if f != nil {
				found = append(found, *f)
			}
		}
	}
	more, err := o.reconcileOutputs(ctx, bucket, prefix, start, uploads, segs)
	if err != nil {
		return nil, err
	}
	found = append(found, more...)
	sort.Slice(found, func(i, j int) bool {
		if found[i].Kind != found[j].Kind {
			return priority[found[i].Kind] < priority[found[j].Kind]
		}
		return found[i].Key < found[j].Key
	})
	return found, nil
}

// publishedFor reports whether up, which has no state record (it expired, STATE_TTL_DAYS), has a
// manifest for its content and the current recipe: then it is done.
func (o *Ops) publishedFor(ctx context.Context, up storage.Object) (bool, error) {
	m, found, err := o.manifest(ctx, up.Key)
	if err != nil || !found {
		return false, err
	}
	return m.Source.Bucket == up.Bucket && m.Source.ETag == up.ETag && m.RecipeVersion == o.proc.RecipeVersion(), nil
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
		head, err := o.objects.Head(ctx, o.cfg.OutputBucket, out.Key)
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

// reconcileOutputs lists the output and quarantine prefixes for objects written before start
// that their source's record does not account for, and judges each (orphanOf).
func (o *Ops) reconcileOutputs(ctx context.Context, bucket, prefix string, start time.Time, uploads map[string]storage.Object, segs map[string]state.Record) ([]Finding, error) {
	keys := o.proc.Keys()
	var found []Finding
	judge := func(kind FindingKind, ob storage.Object) error {
		orphan, detail, err := o.orphanOf(ctx, kind, ob.Bucket, ob.Key, bucket, prefix)
		if err == nil && orphan {
			found = append(found, Finding{Kind: kind, Bucket: ob.Bucket, Key: ob.Key, Detail: detail})
		}
		return err
	}
	err := o.objects.List(ctx, o.cfg.OutputBucket, o.cfg.OutputPrefix, func(ob storage.Object) error {
		out, ok := keys.ParseOutput(ob.Key)
		if !ok || !ob.LastModified.Before(start) {
			return nil
		}
		rec, known := segs[out.Seg]
		switch {
		case out.Manifest && known:
			return nil // the record's findings cover its manifest
		case out.Manifest && !strings.HasPrefix(out.Seg, "_/") && !strings.HasPrefix(out.Seg, prefix):
			return nil // a plain segment is its source's key: another prefix's source
		case out.Manifest:
			return o.strayManifest(ctx, ob, bucket, prefix, uploads, &found)
		case known && listsKey(rec.Outputs, ob.Key):
			return nil
		}
		return judge(OrphanedOutput, ob)
	})
	if err != nil {
		return nil, err
	}
	err = o.objects.List(ctx, o.cfg.QuarantineBucket, o.cfg.QuarantinePrefix, func(ob storage.Object) error {
		seg, gen, ok := keys.ParseQuarantine(ob.Key)
		if !ok || !ob.LastModified.Before(start) {
			return nil
		}
		if rec, known := segs[seg]; known && rec.QuarantineGen == gen {
			return nil
		}
		return judge(OrphanedQuarantine, ob)
	})
	return found, err
}

// strayManifest looks at a manifest whose source has no record (it expired): if its source is
// in bucket under prefix and the upload is gone, the removal was lost: SourceMissing.
func (o *Ops) strayManifest(ctx context.Context, ob storage.Object, bucket, prefix string, uploads map[string]storage.Object, found *[]Finding) error {
	_, body, err := o.objects.Read(ctx, ob.Bucket, ob.Key, 1<<20)
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	m, err := processor.ReadManifest(body)
	if err != nil {
		return nil // not one of ours to judge
	}
	if _, up := uploads[m.Source.Key]; m.Source.Bucket == bucket && strings.HasPrefix(m.Source.Key, prefix) && !up {
		*found = append(*found, Finding{Kind: SourceMissing, Bucket: bucket, Key: m.Source.Key, Detail: "a manifest without a record, and the upload is gone"})
	}
	return nil
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
	if kind == OrphanedQuarantine {
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
