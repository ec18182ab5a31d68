package ops

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/sluice-dev/sluice/pkg/state"
	"github.com/sluice-dev/sluice/pkg/storage"
	"github.com/sluice-dev/sluice/pkg/trigger"
)

// FindingKind is one kind of inconsistency between the staging bucket, the state table and the
// published outputs.
type FindingKind string

// Finding kinds. Each says what --fix does about it.
const (
	NeverProcessed FindingKind = "never_processed" // an upload (or its latest version) has no finished record: process it
	Stuck          FindingKind = "stuck"           // PROCESSING with an expired lease (the worker died): process it
	FailedAttempts FindingKind = "failed"          // FAILED, waiting for a delivery that may never come: process it
	OutputMissing  FindingKind = "output_missing"  // a SUCCEEDED record's output or manifest is gone: process it again
	OutputCorrupt  FindingKind = "output_corrupt"  // an output's stored checksum is not the recorded one: process it again
	SourceMissing  FindingKind = "source_missing"  // a record with outputs whose upload is gone: remove them (DELETED)
	OrphanedOutput FindingKind = "orphaned_output" // an output no SUCCEEDED record lists: delete it
)

// Finding is one inconsistency.
type Finding struct {
	Kind   FindingKind `json:"kind"`
	Bucket string      `json:"bucket"`
	Key    string      `json:"key"` // the upload's key, or the output's for orphaned_output
	Detail string      `json:"detail"`
}

// Reconcile compares the uploads under prefix in bucket, the state records and the output
// bucket, and lists every inconsistency, sorted by kind and key. It reads; it changes nothing.
func (o *Ops) Reconcile(ctx context.Context, bucket, prefix string) ([]Finding, error) {
	now := o.now()
	uploads := map[string]storage.Object{}
	if err := o.objects.List(ctx, bucket, prefix, func(ob storage.Object) error {
		uploads[ob.Key] = ob
		return nil
	}); err != nil {
		return nil, err
	}
	records := map[string]state.Record{}
	if err := o.states.Scan(ctx, func(r state.Record) error {
		if r.Bucket == bucket && strings.HasPrefix(r.Key, prefix) {
			records[r.Key] = r
		}
		return nil
	}); err != nil {
		return nil, err
	}
	outputs := map[string]storage.Object{}
	if err := o.objects.List(ctx, o.cfg.OutputBucket, o.cfg.OutputPrefix, func(ob storage.Object) error {
		outputs[ob.Key] = ob
		return nil
	}); err != nil {
		return nil, err
	}

	var found []Finding
	add := func(kind FindingKind, b, key, format string, args ...any) {
		found = append(found, Finding{Kind: kind, Bucket: b, Key: key, Detail: fmt.Sprintf(format, args...)})
	}
	for key, up := range uploads {
		rec, ok := records[key]
		switch {
		case !ok:
			add(NeverProcessed, bucket, key, "no state record")
		case rec.Status == state.Processing && !rec.LeaseExpires.After(now):
			add(Stuck, bucket, key, "PROCESSING since %s; lease expired %s", rec.UpdatedAt.Format("2006-01-02T15:04:05Z"), rec.LeaseExpires.Format("2006-01-02T15:04:05Z"))
		case rec.Status == state.Failed:
			add(FailedAttempts, bucket, key, "FAILED after %d of %d attempts: %s", rec.Attempts, o.cfg.MaxAttempts, rec.LastError)
		case rec.Status == state.Processing:
			// a live lease: being processed now
		case rec.ObjectETag != up.ETag || rec.Status == state.Deleted:
			add(NeverProcessed, bucket, key, "the record is %s for ETag %s; the upload is ETag %s", rec.Status, rec.ObjectETag, up.ETag)
		}
	}
	listed := map[string]bool{}
	for key, rec := range records {
		if rec.Status != state.Succeeded {
			continue
		}
		listed[rec.ManifestKey] = true
		for _, out := range rec.Outputs {
			listed[out.Key] = true
		}
		if _, ok := uploads[key]; !ok {
			add(SourceMissing, bucket, key, "SUCCEEDED with %d outputs, but the upload is gone", len(rec.Outputs))
			continue
		}
		if _, ok := outputs[rec.ManifestKey]; !ok {
			add(OutputMissing, bucket, key, "manifest %s is missing", rec.ManifestKey)
			continue
		}
		for _, out := range rec.Outputs {
			if _, ok := outputs[out.Key]; !ok {
				add(OutputMissing, bucket, key, "%s is missing", out.Key)
				break
			}
			head, err := o.objects.Head(ctx, o.cfg.OutputBucket, out.Key)
			if err != nil {
				return nil, err
			}
			if head.SHA256 != out.SHA256 {
				add(OutputCorrupt, bucket, key, "%s has sha256 %s, recorded %s", out.Key, head.SHA256, out.SHA256)
				break
			}
		}
	}
	for key := range outputs {
		if !listed[key] {
			add(OrphanedOutput, o.cfg.OutputBucket, key, "no SUCCEEDED record lists it")
		}
	}
	sort.Slice(found, func(i, j int) bool {
		if found[i].Kind != found[j].Kind {
			return found[i].Kind < found[j].Kind
		}
		return found[i].Key < found[j].Key
	})
	return found, nil
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

// Fix repairs what Reconcile found: it processes again what was never processed, stuck, failed
// or lost an output, lets the processor remove the outputs of uploads that are gone, and deletes
// orphaned outputs.
func (o *Ops) Fix(ctx context.Context, findings []Finding, opt FixOptions, prog Progress) (Counts, error) {
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
		case OrphanedOutput:
			k := KindDone
			if err := o.objects.Delete(ctx, f.Bucket, f.Key); err != nil {
				errs = append(errs, err)
				k = KindFailed
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
