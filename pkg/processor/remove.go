package processor

import (
	"errors"
	"fmt"
	"slices"

	"github.com/sluice-dev/sluice/pkg/failure"
	"github.com/sluice-dev/sluice/pkg/state"
)

// remove handles an ObjectRemoved event for a source that no longer exists. It deletes the
// manifest first (the commit marker: no reader trusts a half-removed set), then every rendition
// the record lists or the recipe may have written, the quarantine copy and its report, and the
// temp keys of abandoned attempts; then it writes the DELETED tombstone, conditional on the
// record not having changed meanwhile. A removal while a worker holds a live lease waits for it
// (a transient failure, retried), so the worker cannot publish after the removal.
func (r *run) remove(res *Result) {
	var (
		prev  state.Record
		found bool
	)
	err := r.stage("Claim", func() (err error) {
		prev, found, err = r.p.states.Get(r.ctx, state.ID(r.ev.Bucket, r.ev.Key))
		return err
	})
	if err != nil {
		res.Outcome, res.Err = Failed, err
		return
	}
	var prevp *state.Record
	if found {
		prevp = &prev
	}
	req := state.RemoveRequest{Bucket: r.ev.Bucket, Key: r.ev.Key, Sequencer: r.ev.Sequencer, RequestID: r.requestID}
	verdict, tomb := state.DecideRemove(prevp, req, r.p.now())
	switch verdict {
	case state.Stale:
		res.Outcome, res.Detail = Stale, fmt.Sprintf("removal sequencer %s is older than the record's %s", r.ev.Sequencer, prev.Sequencer)
		return
	case state.Duplicate:
		res.Outcome, res.Detail = Duplicate, "the source's outputs were already removed"
		return
	case state.Busy:
		res.Outcome, res.Err = Failed, failure.Transient(errors.New("a worker holds a live lease on this object; the removal waits for it"))
		return
	}
	var n int
	if found {
		err = r.stage("Remove", func() (err error) {
			n, err = r.removeOutputs(prev.Status, tomb)
			return err
		})
		if err != nil {
			res.Outcome, res.Err = Failed, failure.Transient(err)
			return
		}
	}
	if _, err := r.p.states.Bury(r.ctx, tomb, prevp); err != nil {
		res.Outcome, res.Err = Failed, failure.Transient(err)
		return
	}
	res.Outcome, res.Detail = Removed, fmt.Sprintf("source removed; %d possible output keys deleted", n)
}

// removeOutputs deletes what sluice wrote for the source, manifest first; it returns how many
// keys it asked S3 to delete (absent ones included: S3 does not say).
func (r *run) removeOutputs(was state.Status, tomb state.Record) (int, error) {
	keys := r.p.Keys()
	out := r.p.cfg.OutputBucket
	type target struct{ bucket, key string }
	targets := []target{{out, keys.Manifest(r.ev.Key)}}
	if tomb.ManifestKey != "" && tomb.ManifestKey != targets[0].key {
		targets = append(targets, target{out, tomb.ManifestKey})
	}
	finals := keys.candidates(r.p.cfg.Recipe, func(name, ext string) string { return keys.Final(r.ev.Key, name, ext) })
	for _, o := range tomb.Outputs {
		if !slices.Contains(finals, o.Key) {
			finals = append(finals, o.Key)
		}
	}
	for _, k := range finals {
		targets = append(targets, target{out, k})
	}
	if was == state.Quarantined {
		object, report := keys.Quarantine(r.ev.Key)
		targets = append(targets, target{r.p.cfg.QuarantineBucket, object}, target{r.p.cfg.QuarantineBucket, report})
	}
	for _, owner := range tomb.Abandoned {
		for _, k := range keys.candidates(r.p.cfg.Recipe, func(name, ext string) string { return keys.Temp(owner, r.ev.Key, name, ext) }) {
			targets = append(targets, target{out, k})
		}
	}
	for _, t := range targets {
		if err := r.p.objects.Delete(r.ctx, t.bucket, t.key); err != nil {
			return 0, err
		}
	}
	return len(targets), nil
}
