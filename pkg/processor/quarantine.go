package processor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/sluice-dev/sluice/pkg/failure"
	"github.com/sluice-dev/sluice/pkg/metrics"
	"github.com/sluice-dev/sluice/pkg/records"
	"github.com/sluice-dev/sluice/pkg/state"
	"github.com/sluice-dev/sluice/pkg/storage"
)

// Report is the JSON written beside a quarantined file.
type Report struct {
	Source        ManifestSource `json:"source"`
	Reason        failure.Reason `json:"reason"`
	Message       string         `json:"message"`
	Error         string         `json:"error"`
	RecipeVersion string         `json:"recipe_version"`
	RequestID     string         `json:"request_id"`
	Attempts      int            `json:"attempts"`
	QuarantinedAt time.Time      `json:"quarantined_at"`
	// SourceCopied is false when the source could not be copied beside the report (S3 copies
	// at most 5 GiB in one request, or the copy was refused): the report alone is the evidence.
	SourceCopied bool   `json:"source_copied"`
	CopyError    string `json:"copy_error,omitempty"`
	// Records and RejectedRows: a records file's counts, and the key (in the quarantine bucket)
	// of the list of its bad rows, when they are why it was quarantined.
	Records      *records.Summary `json:"records,omitempty"`
	RejectedRows string           `json:"rejected_rows,omitempty"`
}

// maxCopyBytes is the largest object one CopyObject copies (S3's limit).
const maxCopyBytes = 5 << 30

// quarantine ends the claim QUARANTINED with its reason: the source is copied to its quarantine
// key (unless S3 cannot copy it in one request) and the report is written beside it, both under
// the claim; this claim's unpublished renditions and abandoned generations are deleted; the
// published generation, if any, stays (the manifest names the older version it describes). The
// invocation succeeds: retrying a bad file cannot help. A transient failure of the copy or the
// report leaves the claim FAILED for a retry, except when the attempts are used up
// (max_attempts): then the record ends QUARANTINED all the same.
func (r *run) quarantine(res *Result, src storage.Object, cause error) {
	var perm *failure.PermanentError
	if !errors.As(cause, &perm) {
		perm = &failure.PermanentError{Reason: failure.Corrupt, Message: cause.Error()}
	}
	// Finish the bookkeeping even past the deadline margin.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), 2*finishTimeout)
	defer cancel()
	r.ctx = ctx
	err := r.stage("Quarantine", func(context.Context) error { return r.copyToQuarantine(src, perm, cause) })
	if errors.Is(err, state.ErrLeaseLost) {
		r.m.Add("LeaseLost", metrics.Count, 1)
		r.dropOwnGeneration()
		res.Outcome, res.Detail = Skipped, "lost the claim to another invocation; stopped without quarantining"
		return
	}
	if err != nil && perm.Reason != failure.MaxAttempts {
		r.rec.LastError = err.Error()
		if ferr := r.finish(state.Failed, ""); ferr != nil {
			err = errors.Join(err, ferr)
		}
		res.Outcome, res.Err = Failed, failure.Transient(err)
		return
	}
	if err != nil {
		r.rec.LastError = "quarantine report not written: " + err.Error()
	}
	if err := r.dropUnpublished(); err != nil {
		r.log.Warn("leftovers not all deleted; the reconciler will", "err", err)
	}
	r.rec.Reason, r.rec.Message = string(perm.Reason), perm.Message
	r.rec.DurationMS = r.p.now().Sub(r.rec.UpdatedAt).Milliseconds()
	if err := r.finish(state.Quarantined, string(perm.Reason)); err != nil {
		res.Outcome, res.Err = Failed, err
		return
	}
	res.Outcome, res.Reason, res.Detail = Quarantined, string(perm.Reason), perm.Message
}

// exhausted ends a file that used up its attempts: QUARANTINED with reason max_attempts, under
// the claim Decide gave for it.
func (r *run) exhausted(res *Result, src storage.Object) {
	cause := &failure.PermanentError{Reason: failure.MaxAttempts,
		Message: fmt.Sprintf("gave up after %d attempts; last error: %s", r.rec.Attempts, r.rec.LastError)}
	r.quarantine(res, src, cause)
}

// copyToQuarantine copies the source to its quarantine key, with the reason as metadata, and
// writes the report beside it, each only while the claim holds (both keys are this claim's
// generation's). A source S3 will not copy in one request (over 5 GiB, or refused) gets the
// report alone.
func (r *run) copyToQuarantine(src storage.Object, perm *failure.PermanentError, cause error) error {
	if err := r.holds(); err != nil {
		return err
	}
	object, report := r.p.Keys().Quarantine(src.Key, r.rec.ClaimToken)
	rep := Report{
		Source:        r.source(src),
		Reason:        perm.Reason,
		Message:       perm.Message,
		Error:         cause.Error(),
		RecipeVersion: r.route.version,
		RequestID:     r.requestID,
		Attempts:      r.rec.Attempts,
		QuarantinedAt: r.p.now().UTC(),
		SourceCopied:  true,
		Records:       r.learnt.rows,
	}
	if r.learnt.rejected != "" {
		rep.RejectedRows = r.p.Keys().Rejected(src.Key, r.rec.ClaimToken)
		if _, err := r.p.objects.Copy(r.ctx, storage.Copy{
			SrcBucket: r.p.cfg.OutputBucket, SrcKey: r.learnt.rejected,
			DstBucket: r.p.cfg.QuarantineBucket, DstKey: rep.RejectedRows,
		}); err != nil {
			return err
		}
	}
	switch {
	case src.Size > r.p.maxCopyBytes:
		rep.SourceCopied, rep.CopyError = false, fmt.Sprintf("%d bytes: over the %d bytes one copy request may copy", src.Size, r.p.maxCopyBytes)
	default:
		meta := r.metadata(src)
		meta["sluice-reason"], meta["sluice-request-id"] = string(perm.Reason), r.requestID
		_, err := r.p.objects.Copy(r.ctx, storage.Copy{
			SrcBucket: src.Bucket, SrcKey: src.Key, SrcVersionID: versionOrEmpty(src), IfMatch: src.ETag,
			DstBucket: r.p.cfg.QuarantineBucket, DstKey: object,
			Metadata: meta,
		})
		switch {
		case err == nil:
		case errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrCopyRefused):
			rep.SourceCopied, rep.CopyError = false, err.Error()
		default:
			return err
		}
	}
	body, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	// The report's key belongs to this claim's generation: nobody else writes it, so it needs no
	// swap (and the processor may not read the quarantine bucket), only the claim.
	if err := r.holds(); err != nil {
		return err
	}
	_, err = r.p.objects.Put(r.ctx, storage.Put{Bucket: r.p.cfg.QuarantineBucket, Key: report, Body: body, ContentType: "application/json",
		Metadata: r.metadata(src)})
	return err
}

// dropUnpublished sweeps, on a path that ends without committing (quarantine), this claim's own
// renditions and every abandoned generation except the one the manifest names, and the previous
// evidence: this claim's quarantine copy is the evidence now. The published set stays, and the
// record lists it as the manifest does.
func (r *run) dropUnpublished() error {
	committed := ""
	if len(r.rec.Outputs) > 0 || len(r.rec.Abandoned) > 0 {
		// Something may be published, by this record's claims or an abandoned one's.
		_, body, err := r.p.objects.Read(r.ctx, r.p.cfg.OutputBucket, r.p.Keys().Manifest(r.ev.Key), maxMutableBytes)
		switch {
		case errors.Is(err, storage.ErrNotFound):
		case err != nil:
			return err
		default:
			m, err := ReadManifest(body)
			if err != nil {
				return fmt.Errorf("manifest of %s: %w", r.ev.Key, err)
			}
			committed = m.Generation
			r.rec.Outputs, r.rec.ManifestKey = m.Outputs, r.p.Keys().Manifest(r.ev.Key)
		}
	}
	return r.sweep(committed, r.rec.ClaimToken, nil)
}

func versionOrEmpty(o storage.Object) string {
	if o.VersionID == "null" {
		return ""
	}
	return o.VersionID
}
