package state

import "time"

// ClaimRequest is what an invocation knows when it asks to process an object.
type ClaimRequest struct {
	Bucket, Key   string
	ObjectVersion string // identity of the content about to be processed: S3 version id, else ETag
	ObjectETag    string
	ObjectSize    int64
	Sequencer     string
	RecipeVersion string
	RequestID     string
	Token         string // unique to this claim
	LeaseUntil    time.Time
	MaxAttempts   int
}

// Verdict is what Decide concludes.
type Verdict int

// Verdicts.
const (
	// Claim: write the returned record; the object is ours to process.
	Claim Verdict = iota + 1
	// Duplicate: this content was already processed with this recipe (or quarantined); do nothing.
	Duplicate
	// Busy: another invocation holds a live lease; try again later.
	Busy
	// Exhausted: the attempt limit is reached; quarantine with reason max_attempts.
	Exhausted
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
	}
	return "unknown"
}

// Decide says what to do with prev (nil when there is no record) for req at time now. For Claim
// it also returns the record to write, which Store.Claim writes conditionally on prev's revision.
func Decide(prev *Record, req ClaimRequest, now time.Time) (Verdict, Record) {
	if prev == nil {
		r := Record{ID: ID(req.Bucket, req.Key), CreatedAt: now}
		return Claim, claimed(r, req, 1, now)
	}
	sameWork := prev.ObjectVersion == req.ObjectVersion && prev.RecipeVersion == req.RecipeVersion
	leaseLive := prev.Status == Processing && prev.LeaseExpires.After(now)
	switch {
	case leaseLive:
		return Busy, Record{}
	case !sameWork:
		// New content or a new recipe starts a fresh count of attempts.
		return Claim, claimed(*prev, req, 1, now)
	case prev.Status == Succeeded || prev.Status == Quarantined:
		return Duplicate, Record{}
	case prev.Attempts >= req.MaxAttempts:
		// FAILED, or PROCESSING whose lease ran out (the worker died): both count as attempts.
		return Exhausted, Record{}
	default:
		return Claim, claimed(*prev, req, prev.Attempts+1, now)
	}
}

func claimed(r Record, req ClaimRequest, attempts int, now time.Time) Record {
	r.transition(Processing, req.RequestID, "", now)
	r.Bucket, r.Key = req.Bucket, req.Key
	r.ObjectVersion, r.ObjectETag, r.ObjectSize = req.ObjectVersion, req.ObjectETag, req.ObjectSize
	r.Sequencer = req.Sequencer
	r.RecipeVersion = req.RecipeVersion
	r.ClaimToken, r.LeaseOwner, r.LeaseExpires = req.Token, req.RequestID, req.LeaseUntil
	r.Attempts = attempts
	r.Reason, r.Message, r.LastError = "", "", ""
	r.Outputs, r.ManifestKey, r.DurationMS, r.ExpiresAt = nil, "", 0, 0
	return r
}
