// Package state keeps one record per source object in DynamoDB and changes it only with
// conditional writes: a claim is a compare-and-swap on the record's revision, and every later
// write of an invocation holds only while its claim token is still the record's.
package state

import "time"

// Status is where a source object stands.
type Status string

// The statuses. PROCESSING and REMOVING are claims, with a token and a lease; the others are
// terminal except FAILED, which a later delivery may claim again until the attempt limit.
// REMOVING is a removal's claim: its holder deletes the source's outputs and then writes the
// DELETED tombstone, whose sequencer orders late events after it.
const (
	Processing  Status = "PROCESSING"
	Removing    Status = "REMOVING"
	Succeeded   Status = "SUCCEEDED"
	Failed      Status = "FAILED"
	Quarantined Status = "QUARANTINED"
	Deleted     Status = "DELETED"
)

// Output is one published rendition.
type Output struct {
	Name string `dynamodbav:"name" json:"name"`
	// Bucket is where it is when not in the output bucket: a records file's list of rejected
	// rows sits in the quarantine bucket, beside where the source's quarantine entry would be.
	Bucket string `dynamodbav:"bucket,omitempty" json:"bucket,omitempty"`
	Key    string `dynamodbav:"key" json:"key"`
	Size   int64  `dynamodbav:"size" json:"size"`
	SHA256 string `dynamodbav:"sha256" json:"sha256"`
	Width  int    `dynamodbav:"width" json:"width"`
	Height int    `dynamodbav:"height" json:"height"`
	Format string `dynamodbav:"format" json:"format"`
}

// Transition is one entry of a record's audit trail.
type Transition struct {
	At        time.Time `dynamodbav:"at"`
	RequestID string    `dynamodbav:"request_id"`
	From      Status    `dynamodbav:"from"`
	To        Status    `dynamodbav:"to"`
	Reason    string    `dynamodbav:"reason,omitempty"`
}

// MaxAbandoned bounds Record.Abandoned; older entries are left to the temp prefix's lifecycle
// rule and the reconciler.
const MaxAbandoned = 10

// MaxHistory bounds the audit trail kept on a record; older transitions are dropped.
const MaxHistory = 20

// Record is the state of one source object.
type Record struct {
	ID     string `dynamodbav:"id"` // bucket + "/" + key
	Bucket string `dynamodbav:"bucket"`
	Key    string `dynamodbav:"key"`
	Status Status `dynamodbav:"status"`
	Rev    int64  `dynamodbav:"rev"` // bumped by every write; claims compare-and-swap on it
	// WriteID is unique to each write: a write whose answer was lost (the SDK retried it and the
	// condition then failed) re-reads the record and recognises itself by it.
	WriteID       string `dynamodbav:"write_id"`
	ObjectVersion string `dynamodbav:"object_version"`
	ObjectETag    string `dynamodbav:"object_etag"`
	ObjectSize    int64  `dynamodbav:"object_size"`
	Sequencer     string `dynamodbav:"sequencer,omitempty"`
	RecipeVersion string `dynamodbav:"recipe_version"`
	RecipeName    string `dynamodbav:"recipe_name,omitempty"` // the recipe the object was routed to

	// ClaimToken is the latest claim's token, kept after the claim ends. It names the claim's
	// generation: the outputs and temp keys only that claim writes.
	ClaimToken string `dynamodbav:"claim_token,omitempty"`
	// Fence is the latest claim's fencing number, written on everything it publishes: it only
	// grows, across the record's lifetimes too (a claim after the record expired starts from the
	// clock), so a stale writer can never replace what a later claim published.
	Fence        int64     `dynamodbav:"fence"`
	LeaseOwner   string    `dynamodbav:"lease_owner,omitempty"` // the request id holding the claim
	LeaseExpires time.Time `dynamodbav:"lease_expires"`
	Attempts     int       `dynamodbav:"attempts"`
	// Abandoned lists the tokens (generations) of earlier claims on this record that ended
	// without cleaning up (a crash, a lost lease, a failure): their temp keys and unpublished
	// renditions are deleted by the claim that ends the record next. Bounded by MaxAbandoned.
	Abandoned []string `dynamodbav:"abandoned,omitempty"`

	Reason    string `dynamodbav:"reason,omitempty"`
	Message   string `dynamodbav:"message,omitempty"`
	LastError string `dynamodbav:"last_error,omitempty"`

	// Outputs and ManifestKey are what the manifest publishes: a claim keeps them until its own
	// manifest replaces them, so they always name the committed generation.
	Outputs     []Output `dynamodbav:"outputs,omitempty"`
	ManifestKey string   `dynamodbav:"manifest_key,omitempty"`
	// QuarantineGen is the generation whose quarantine copy and report are the evidence of the
	// QUARANTINED outcome; the claim that publishes or removes the source deletes them.
	QuarantineGen string `dynamodbav:"quarantine_gen,omitempty"`
	DurationMS    int64  `dynamodbav:"duration_ms,omitempty"`
	// Replaced: the claim replaced or removed a manifest that was published, so a CDN may
	// still serve the old one (pkg/cdn invalidates it when the outcome is announced).
	Replaced bool `dynamodbav:"replaced,omitempty"`
	// Announced is the OutcomeID of the last outcome announced downstream (its event on the bus,
	// pkg/announce, and its CDN invalidation, pkg/cdn): an outcome whose id it is not was
	// committed but not yet announced.
	Announced string `dynamodbav:"announced,omitempty"`
	// Progress is how far a long attempt got (a streamed records file's checkpoint): the next
	// claim on the same content and recipe resumes there. A claim that recorded progress does
	// not use up an attempt (Decide).
	Progress *Progress `dynamodbav:"progress,omitempty"`

	CreatedAt time.Time    `dynamodbav:"created_at"`
	UpdatedAt time.Time    `dynamodbav:"updated_at"`
	ExpiresAt int64        `dynamodbav:"expires_at,omitempty"` // TTL, epoch seconds
	History   []Transition `dynamodbav:"history,omitempty"`
}

// Progress is a checkpoint of a claim's work.
type Progress struct {
	Token string    `dynamodbav:"token"` // the claim that recorded it
	Gen   string    `dynamodbav:"gen"`   // the generation whose temp keys its outputs go to
	Data  string    `dynamodbav:"data"`  // what the processor needs to resume (its own JSON)
	At    time.Time `dynamodbav:"at"`
}

// progressed reports whether the record's latest claim recorded progress.
func (r Record) progressed() bool { return r.Progress != nil && r.Progress.Token == r.ClaimToken }

// ID is the record key of a source object.
func ID(bucket, key string) string { return bucket + "/" + key }

// transition moves r to status `to`, appending to the bounded audit trail.
func (r *Record) transition(to Status, requestID, reason string, now time.Time) {
	r.History = append(r.History, Transition{At: now, RequestID: requestID, From: r.Status, To: to, Reason: reason})
	if n := len(r.History) - MaxHistory; n > 0 {
		r.History = append([]Transition(nil), r.History[n:]...)
	}
	r.Status = to
	r.UpdatedAt = now
}
