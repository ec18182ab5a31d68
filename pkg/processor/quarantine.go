package processor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/sluice-dev/sluice/pkg/failure"
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
}

// quarantine copies the source to the quarantine location with its reason (as object metadata
// and in a JSON report beside it) and records QUARANTINED. The invocation succeeds: retrying a
// bad file cannot help.
func (r *run) quarantine(res *Result, src storage.Object, cause error) {
	var perm *failure.PermanentError
	if !errors.As(cause, &perm) {
		perm = &failure.PermanentError{Reason: failure.Corrupt, Message: cause.Error()}
	}
	ctx := context.WithoutCancel(r.ctx) // finish the bookkeeping even past the deadline
	if err := r.stage("Quarantine", func() error { return r.copyToQuarantine(ctx, src, perm, cause) }); err != nil {
		r.rec.LastError = err.Error()
		if _, ferr := r.p.states.Finish(ctx, r.rec, state.Failed, "", r.p.now()); ferr != nil {
			err = errors.Join(err, ferr)
		}
		res.Outcome, res.Err = Failed, failure.Transient(err)
		return
	}
	r.cleanAbandoned()
	r.rec.Reason, r.rec.Message = string(perm.Reason), perm.Message
	r.rec.DurationMS = r.p.now().Sub(r.rec.UpdatedAt).Milliseconds()
	if _, err := r.p.states.Finish(ctx, r.rec, state.Quarantined, string(perm.Reason), r.p.now()); err != nil {
		res.Outcome, res.Err = Failed, err
		return
	}
	res.Outcome, res.Reason, res.Detail = Quarantined, string(perm.Reason), perm.Message
}

// exhausted ends a file that used up its attempts: QUARANTINED with reason max_attempts.
func (r *run) exhausted(res *Result, src storage.Object) {
	perm := &failure.PermanentError{Reason: failure.MaxAttempts,
		Message: fmt.Sprintf("gave up after %d attempts; last error: %s", r.rec.Attempts, r.rec.LastError)}
	ctx := context.WithoutCancel(r.ctx)
	if err := r.copyToQuarantine(ctx, src, perm, perm); err != nil {
		res.Outcome, res.Err = Failed, failure.Transient(err)
		return
	}
	r.rec.Abandoned = r.rec.Leftovers()
	r.cleanAbandoned()
	if _, err := r.p.states.Terminate(ctx, r.rec, state.Quarantined, r.requestID, string(perm.Reason), perm.Message, r.p.now()); err != nil {
		res.Outcome, res.Err = Failed, failure.Transient(err)
		return
	}
	res.Outcome, res.Reason, res.Detail = Quarantined, string(perm.Reason), perm.Message
}

func (r *run) copyToQuarantine(ctx context.Context, src storage.Object, perm *failure.PermanentError, cause error) error {
	object, report := r.p.Keys().Quarantine(src.Key)
	if _, err := r.p.objects.Copy(ctx, storage.Copy{
		SrcBucket: src.Bucket, SrcKey: src.Key, SrcVersionID: versionOrEmpty(src), IfMatch: src.ETag,
		DstBucket: r.p.cfg.QuarantineBucket, DstKey: object,
		Metadata: map[string]string{"sluice-reason": string(perm.Reason), "sluice-request-id": r.requestID},
	}); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	body, err := json.MarshalIndent(Report{
		Source:        ManifestSource{Bucket: src.Bucket, Key: src.Key, VersionID: src.VersionID, ETag: src.ETag, Size: src.Size},
		Reason:        perm.Reason,
		Message:       perm.Message,
		Error:         cause.Error(),
		RecipeVersion: r.p.recipeVersion,
		RequestID:     r.requestID,
		Attempts:      r.rec.Attempts,
		QuarantinedAt: r.p.now().UTC(),
	}, "", "  ")
	if err != nil {
		return err
	}
	_, err = r.p.objects.Put(ctx, storage.Put{Bucket: r.p.cfg.QuarantineBucket, Key: report, Body: body, ContentType: "application/json"})
	return err
}

func versionOrEmpty(o storage.Object) string {
	if o.VersionID == "null" {
		return ""
	}
	return o.VersionID
}
