package state

import (
	"slices"
	"time"
)

// ClaimRequest is what an invocation knows when it asks to process an object.
type ClaimRequest struct {
	Bucket, Key   string
	ObjectVersion string // identity of the content about to be processed: S3 version id, else ETag
	ObjectETag    string
	ObjectSize    int64
	Sequencer     string // the triggering event's S3 sequencer; "" when there is none
	RecipeVersion string
	RecipeName    string // the routed recipe's name (its version is what decides)
	RequestID     string
	Token         string // unique to this claim
	LeaseUntil    time.Time
	MaxAttempts   int
	// Redrive: an operator asks for the object to be processed again even though this content
	// and recipe already ended (SUCCEEDED, QUARANTINED, or FAILED past the attempt limit). A
	// live lease still wins; attempts start again from one.
	Redrive bool
}

// Verdict is what Decide concludes.
type Verdict int

// Verdicts.
const (
	// Claim: write the returned record; the object is ours to process (or, for DecideRemove,
	// to remove).
	Claim Verdict = iota + 1
	// Duplicate: this content was already processed with this recipe (or quarantined, or the
	// source already removed); do nothing.
	Duplicate
	// Busy: another invocation holds a live lease; try again later.
	Busy
	// Exhausted: the attempt limit is reached. It is a claim all the same: write the returned
	// record, then quarantine with reason max_attempts under it.
	Exhausted
	// Stale: the event is older (by S3 sequencer) than the one the record already follows.
	Stale
)

func (v Verdict) String() string {
	switch v {
	case Claim:
		return "claim"
	case Duplicate:
		return "duplicate"
	case Busy:
		return "busy"
	case Exhausted:
		return "exhausted"
	case Stale:
		return "stale"
	}
	return "unknown"
}

// Decide says what to do with prev (nil when there is no record) for req at time now. For Claim
// and Exhausted it also returns the record to write, which Store.Claim writes conditionally on
// prev's revision.
func Decide(prev *Record, req ClaimRequest, now time.Time) (Verdict, Record) {
	if prev == nil {
		r := Record{ID: ID(req.Bucket, req.Key), CreatedAt: now}
		return Claim, claimed(r, req, 1, now)
	}
	sameWork := prev.ObjectVersion == req.ObjectVersion && prev.RecipeVersion == req.RecipeVersion
	switch {
	case SequencerBefore(req.Sequencer, prev.Sequencer):
		return Stale, Record{}
	case prev.LeaseLive(now):
		return Busy, Record{}
	case !sameWork || prev.Status == Deleted || prev.Status == Removing || req.Redrive:
		// New content, a new recipe, a re-created source (or one whose removal died half-way)
		// or a redrive starts a fresh count of attempts; all but a redrive of the same work
		// start from the beginning too.
		r := *prev
		if !sameWork || prev.Status == Deleted || prev.Status == Removing {
			r.Progress = nil
		}
		return Claim, claimed(r, req, 1, now)
	case prev.Status == Succeeded || prev.Status == Quarantined:
		return Duplicate, Record{}
	case prev.progressed():
		// The last claim got further (a checkpoint), stopped at its deadline or killed: it
		// used no attempt, so a file too long for one invocation is not quarantined for it.
		return Claim, claimed(*prev, req, max(prev.Attempts, 1), now)
	case prev.Attempts >= req.MaxAttempts:
		// FAILED, or PROCESSING whose lease ran out (the worker died): both count as attempts.
		return Exhausted, claimed(*prev, req, prev.Attempts, now)
	default:
		return Claim, claimed(*prev, req, prev.Attempts+1, now)
	}
}

func claimed(r Record, req ClaimRequest, attempts int, now time.Time) Record {
	r.Abandoned = r.Leftovers()
	r.Fence = nextFence(&r, now)
	r.transition(Processing, req.RequestID, "", now)
	r.Bucket, r.Key = req.Bucket, req.Key
	r.ObjectVersion, r.ObjectETag, r.ObjectSize = req.ObjectVersion, req.ObjectETag, req.ObjectSize
	if req.Sequencer != "" {
		r.Sequencer = req.Sequencer
	}
	r.RecipeVersion, r.RecipeName = req.RecipeVersion, req.RecipeName
	r.ClaimToken, r.LeaseOwner, r.LeaseExpires = req.Token, req.RequestID, req.LeaseUntil
	r.Attempts = attempts
	r.Reason, r.Message, r.LastError = "", "", ""
	r.DurationMS, r.ExpiresAt, r.Replaced = 0, 0, false
	return r
}

// Leftovers is r.Abandoned plus the token of r's last processing claim if it ended without
// cleaning up (crashed, or failed): the generations whose temp keys and unpublished renditions
// may still exist. A removal's claim writes nothing under its token, so it leaves none. The
// published generation (r.Outputs) is not among them: it stays until a new manifest replaces it.
func (r Record) Leftovers() []string {
	out := r.Abandoned
	if (r.Status == Processing || r.Status == Failed) && r.ClaimToken != "" && !slices.Contains(out, r.ClaimToken) {
		out = append(slices.Clone(out), r.ClaimToken)
	}
	if n := len(out) - MaxAbandoned; n > 0 {
		out = out[n:]
	}
	return out
}

// RemoveRequest is what an invocation knows when a source object was removed.
type RemoveRequest struct {
	Bucket, Key string
	Sequencer   string
	RequestID   string
	Token       string // unique to this claim
	LeaseUntil  time.Time
}

// DecideRemove says what to do with prev (nil when there is no record) when its source was
// removed: Claim with a REMOVING record to write before anything is deleted (its holder deletes
// the outputs, then Finish writes the DELETED tombstone; a record is written even without one,
// so that a late creation event orders before the tombstone), Stale, Duplicate (already removed),
// or Busy while a live claim runs (the removal waits for it; and while the removal holds its
// claim, a re-upload's claim waits for the removal).
func DecideRemove(prev *Record, req RemoveRequest, now time.Time) (Verdict, Record) {
	r := Record{ID: ID(req.Bucket, req.Key), Bucket: req.Bucket, Key: req.Key, CreatedAt: now}
	if prev != nil {
		switch {
		case SequencerBefore(req.Sequencer, prev.Sequencer):
			return Stale, Record{}
		case prev.Status == Deleted:
			return Duplicate, Record{}
		case prev.LeaseLive(now):
			return Busy, Record{}
		}
		r = *prev
		r.Abandoned = r.Leftovers()
	}
	r.Fence = nextFence(&r, now)
	r.transition(Removing, req.RequestID, "source removed", now)
	if req.Sequencer != "" {
		r.Sequencer = req.Sequencer
	}
	r.ClaimToken, r.LeaseOwner, r.LeaseExpires = req.Token, req.RequestID, req.LeaseUntil
	r.Reason, r.Message, r.LastError, r.ExpiresAt, r.Replaced = "", "", "", 0, false
	return Claim, r
}
