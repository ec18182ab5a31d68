// Package announce tells the systems downstream of sluice what became of each source object: one
// event per outcome (SUCCEEDED, QUARANTINED, DELETED) on an Amazon EventBridge bus, source
// "sluice", detail types "Object Processed", "Object Quarantined" and "Object Deleted".
//
// Delivery is at least once. The state record remembers which outcome was announced
// (state.Record.Announced); an outcome committed but not announced (the writer died in between,
// or PutEvents failed) is announced by the object's next delivery or by the reconciler. Every
// announcement of one outcome carries the same id (state.Record.OutcomeID, in the detail's
// event_id; EventBridge's own event id differs on each put), so a consumer that dedupes by it sees
// each outcome once.
package announce

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/pkg/state"
)

// Source is the events' source.
const Source = "sluice"

// The events' detail types.
const (
	Processed   = "Object Processed"
	Quarantined = "Object Quarantined"
	Deleted     = "Object Deleted"
)

// DetailType is the detail type of an outcome with status s ("" for a status that is no outcome).
func DetailType(s state.Status) string {
	switch s {
	case state.Succeeded:
		return Processed
	case state.Quarantined:
		return Quarantined
	case state.Deleted:
		return Deleted
	}
	return ""
}

// Detail is an event's detail: what a consumer reads.
type Detail struct {
	// EventID is the outcome's id: equal on every announcement of it (and on a replay).
	EventID string       `json:"event_id"`
	Status  state.Status `json:"status"`
	Bucket  string       `json:"bucket"`
	Key     string       `json:"key"`
	// VersionID is the source's S3 version id ("" in a bucket without versioning); ETag and Size
	// are the content's.
	VersionID     string `json:"version_id,omitempty"`
	ETag          string `json:"etag"`
	Size          int64  `json:"size"`
	Sequencer     string `json:"sequencer,omitempty"`
	RecipeVersion string `json:"recipe_version"`
	// Generation names the claim that made the outcome: the outputs' keys contain it.
	Generation string `json:"generation"`
	// Manifest and Outputs, for Object Processed: what was published.
	Manifest string         `json:"manifest,omitempty"`
	Outputs  []state.Output `json:"outputs,omitempty"`
	// Reason and Message, for Object Quarantined: why.
	Reason  string    `json:"reason,omitempty"`
	Message string    `json:"message,omitempty"`
	At      time.Time `json:"at"`
}

// DetailOf is the detail announcing rec's outcome; false when rec holds none.
func DetailOf(rec state.Record) (Detail, bool) {
	if !rec.Outcome() {
		return Detail{}, false
	}
	d := Detail{
		EventID: rec.OutcomeID(), Status: rec.Status, Bucket: rec.Bucket, Key: rec.Key,
		ETag: rec.ObjectETag, Size: rec.ObjectSize, Sequencer: rec.Sequencer,
		RecipeVersion: rec.RecipeVersion, Generation: rec.ClaimToken, At: rec.UpdatedAt.UTC(),
	}
	if v, ok := strings.CutPrefix(rec.ObjectVersion, "v:"); ok {
		d.VersionID = v
	}
	switch rec.Status {
	case state.Succeeded:
		d.Manifest, d.Outputs = rec.ManifestKey, rec.Outputs
	case state.Quarantined:
		d.Reason, d.Message = rec.Reason, rec.Message
	}
	return d, true
}

// Encode is the detail as EventBridge carries it.
func (d Detail) Encode() (string, error) {
	b, err := json.Marshal(d)
	if err != nil {
		return "", fmt.Errorf("encode the event of %s/%s: %w", d.Bucket, d.Key, err)
	}
	return string(b), nil
}
