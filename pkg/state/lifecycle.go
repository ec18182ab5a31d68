package state

import (
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// The object lifecycle's rules, written once. The processor, the removal, the operator commands
// (backfill, reconcile, redrive, status) and the reconciler ask these; none restates them.

// Claimed reports whether a claim holds the record (PROCESSING or REMOVING), live or not.
func (r Record) Claimed() bool { return r.Status == Processing || r.Status == Removing }

// LeaseLive reports whether a claim holds the record and its lease has not run out at now: its
// holder may still write, so nobody else may claim, remove or clean up.
func (r Record) LeaseLive(now time.Time) bool { return r.Claimed() && r.LeaseExpires.After(now) }

// Stuck reports whether a claim holds the record but its lease ran out (the holder died): the
// next claim takes over.
func (r Record) Stuck(now time.Time) bool { return r.Claimed() && !r.LeaseExpires.After(now) }

// HeldBy reports whether the claim with token still holds the record.
func (r Record) HeldBy(token string) bool { return r.Claimed() && r.ClaimToken == token }

// Follows reports whether the record is about this content of its source (ETag, as a listing
// gives it): not removed, and claimed or ended for that ETag.
func (r Record) Follows(etag string) bool {
	return r.Status != Deleted && r.Status != Removing && r.ObjectETag == etag
}

// Finished reports whether the record ended with an outcome for its content: SUCCEEDED or
// QUARANTINED (FAILED waits for another delivery; DELETED is the source's end, not its content's).
func (r Record) Finished() bool { return r.Status == Succeeded || r.Status == Quarantined }

// Ended reports whether the record finished for this content with a recipe version current
// says is the one in use, so a backfill has nothing to do.
func (r Record) Ended(etag string, current func(recipeVersion string) bool) bool {
	return r.Finished() && r.Follows(etag) && current(r.RecipeVersion)
}

// Committable reports whether the claim whose token is gen may still commit a manifest naming
// its generation: only while it holds the record with a live lease. Once this is false it stays
// false (tokens are never reused, and a holder acts only within its lease), so a generation
// that is neither committable nor the committed one may be deleted by anyone, at any time.
func Committable(rec *Record, gen string, now time.Time) bool {
	return rec != nil && rec.HeldBy(gen) && rec.LeaseLive(now)
}

// MayDeleteOutput is the one rule for deleting a rendition of generation gen. rec is the
// source's record (nil when there is none), read with a consistent read FIRST; committed is the
// generation its manifest names ("" when there is none), read AFTER rec. It may go when it is
// not the committed generation and no live claim can commit it any more: the order of the reads
// matters, since a claim seen not live cannot commit later, and a commit made before the record
// read shows in the manifest read after it. A removal deletes the committed generation too, but
// only under its own claim (see DecideRemove).
func MayDeleteOutput(rec *Record, committed, gen string, now time.Time) bool {
	return gen != committed && !Committable(rec, gen, now)
}

// nextFence is the fencing number of a claim on prev (nil when there is no record) at now:
// above prev's, and above anything a record of this key that expired could have handed out.
func nextFence(prev *Record, now time.Time) int64 {
	f := now.UnixMicro()
	if prev != nil && prev.Fence >= f {
		f = prev.Fence + 1
	}
	return f
}

// MayDeleteEvidence is the rule for deleting a quarantine copy or report of generation gen,
// given the source's record read consistently (nil when there is none): it is not the evidence
// the record keeps for its QUARANTINED outcome, and no live claim can still make it so.
func MayDeleteEvidence(rec *Record, gen string, now time.Time) bool {
	return (rec == nil || rec.QuarantineGen != gen) && !Committable(rec, gen, now)
}

// MayDeleteRejected is the rule for a records file's list of rejected rows of generation gen:
// it is an output of its generation (published with the valid rows) and evidence (kept with a
// quarantine for too many bad rows), so it may go only when both rules let it.
func MayDeleteRejected(rec *Record, committed, gen string, now time.Time) bool {
	return MayDeleteOutput(rec, committed, gen, now) && MayDeleteEvidence(rec, gen, now)
}

// Outcome reports whether the record holds an outcome to announce downstream: SUCCEEDED,
// QUARANTINED or DELETED (FAILED and the claims are not outcomes; another delivery follows).
func (r Record) Outcome() bool { return r.Finished() || r.Status == Deleted }

// OutcomeID names the record's outcome ("" when it has none): a hash of the source (bucket,
// key), its content version, the recipe version, the status and the generation (the claim
// token) that made it. The same outcome always has the same id, however often it is announced,
// so a consumer dedupes by it; a redrive or a re-upload of the same bytes publishes a new
// generation, a new outcome with a new id.
func (r Record) OutcomeID() string {
	if !r.Outcome() {
		return ""
	}
	h := sha256.New()
	for _, f := range []string{r.Bucket, r.Key, r.ObjectVersion, r.RecipeVersion, string(r.Status), r.ClaimToken} {
		h.Write([]byte(f))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Unannounced reports whether the record's outcome was committed but not announced yet: the
// writer died (or its announcement failed) between the two. Its redelivery, the reconciler or
// a replay announces it.
func (r Record) Unannounced() bool { return r.Outcome() && r.Announced != r.OutcomeID() }
