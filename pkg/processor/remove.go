package processor

import (
	"context"
	"errors"
	"fmt"

	"github.com/sluice-dev/sluice/pkg/failure"
	"github.com/sluice-dev/sluice/pkg/state"
	"github.com/sluice-dev/sluice/pkg/storage"
)

// remove handles an ObjectRemoved event for a source that no longer exists. It first claims the
// record for the removal (REMOVING: a token-bearing write before any delete, so a re-upload's
// claim waits for it, and a removal waits for a live worker); then, under that claim, it deletes
// the manifest (the commit marker: no reader trusts a half-removed set), every generation the
// manifest and the record name, the abandoned ones, and the quarantine copy and report; then
// Finish writes the DELETED tombstone. A removal that fails releases its claim (REMOVING with no
// lease), so its redelivery, the reconciler or a re-upload takes over at once.
func (r *run) remove(res *Result) {
	req := state.RemoveRequest{Bucket: r.ev.Bucket, Key: r.ev.Key, Sequencer: r.ev.Sequencer, RequestID: r.requestID,
		Token: newToken(), LeaseUntil: r.leaseUntil()}
	var (
		verdict state.Verdict
		rec     state.Record
	)
	err := r.stage("Claim", func(ctx context.Context) (err error) {
		verdict, rec, err = r.p.states.ClaimRemoval(ctx, req, r.p.now)
		return err
	})
	if err != nil {
		res.Outcome, res.Err = Failed, err
		return
	}
	switch verdict {
	case state.Stale:
		res.Outcome, res.Detail = Stale, fmt.Sprintf("removal sequencer %s is older than the record's %s", r.ev.Sequencer, rec.Sequencer)
		return
	case state.Duplicate:
		r.rec = rec
		res.Outcome, res.Detail = Duplicate, "the source's outputs were already removed"
		return
	case state.Busy:
		res.Outcome, res.Err, res.RetryIn = Failed, busy("a worker holds a live claim on this object; the removal waits for it"), busyDelay()
		return
	}
	r.rec, r.claimed = rec, true
	r.route = r.p.routes.made(rec.RecipeName, rec.Key)
	// Under the claim, nobody publishes: if the source exists again (re-created after the
	// event, and perhaps processed before this claim), the removal is moot. Release the claim
	// and process the current object instead.
	src, err := r.p.objects.Head(r.ctx, r.ev.Bucket, r.ev.Key)
	if !errors.Is(err, storage.ErrNotFound) {
		if ferr := r.finish(state.Removing, "source re-created"); ferr != nil || err != nil {
			res.Outcome, res.Err = Failed, failure.Transient(errors.Join(err, ferr))
			return
		}
		r.claimed = false
		r.do(res, src)
		return
	}
	// What the record publishes may be cached by a CDN, even when an earlier removal attempt
	// already deleted the manifest.
	r.rec.Replaced = r.rec.ManifestKey != ""
	var n int
	err = r.stage("Remove", func(context.Context) (err error) {
		n, err = r.removeOutputs()
		return err
	})
	if err != nil {
		if ferr := r.finish(state.Removing, "removal failed: "+err.Error()); ferr != nil {
			err = errors.Join(err, ferr)
		}
		res.Outcome, res.Err = Failed, failure.Transient(err)
		return
	}
	if err := r.finish(state.Deleted, "source removed"); err != nil {
		res.Outcome, res.Err = Failed, failure.Transient(err)
		return
	}
	res.Outcome, res.Detail = Removed, fmt.Sprintf("source removed with the %d renditions it published", n)
}

// removeOutputs deletes, under the removal's claim, what sluice wrote for the source: the
// manifest first (conditional on the manifest read, where S3 enforces it), then every
// generation the manifest and the record name, the abandoned ones and the quarantine evidence
// (sweep). It returns how many output keys the manifest listed.
func (r *run) removeOutputs() (int, error) {
	out := r.p.cfg.OutputBucket
	manifestKey := r.p.Keys().Manifest(r.ev.Key)
	cur, body, err := r.p.objects.Read(r.ctx, out, manifestKey, maxMutableBytes)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return 0, err
	}
	var listed []state.Output
	if err == nil {
		if err := r.holds(); err != nil {
			return 0, err
		}
		if err := r.p.objects.DeleteIf(r.ctx, out, manifestKey, cur.ETag); err != nil {
			return 0, err
		}
		r.rec.Replaced = true
		m, err := ReadManifest(body)
		if err != nil {
			return 0, fmt.Errorf("manifest of %s: %w", r.ev.Key, err)
		}
		listed = m.Outputs
	}
	return len(listed), r.sweep("", "", append(listed, r.rec.Outputs...))
}
