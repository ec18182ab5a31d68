package processor

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/sluice-dev/sluice/pkg/media"
	"github.com/sluice-dev/sluice/pkg/records"
	"github.com/sluice-dev/sluice/pkg/state"
	"github.com/sluice-dev/sluice/pkg/storage"
)

// Manifest is the commit marker of one source's renditions, the only mutable object under a
// source's output prefix: it names one generation, and every output it lists belongs to that
// generation and exists with the listed checksum (they are written before it, and only
// superseded generations are deleted). It names the source version it describes.
type Manifest struct {
	Source        ManifestSource `json:"source"`
	Recipe        string         `json:"recipe,omitempty"` // the routed recipe's name
	RecipeVersion string         `json:"recipe_version"`
	Generation    string         `json:"generation"`
	Fence         int64          `json:"fence"`
	Outputs       []state.Output `json:"outputs"`
	RequestID     string         `json:"request_id"`
	StartedAt     time.Time      `json:"started_at"`
	CompletedAt   time.Time      `json:"completed_at"`
	// CopiedFrom, when set, is the twin whose renditions were copied (DEDUPE).
	CopiedFrom *CopiedFrom `json:"copied_from,omitempty"`
	// Records is a records file's row counts (RowsIn = Valid + Invalid, checked before
	// publishing); the outputs list the valid rows and the rejected rows' file with checksums.
	Records *records.Summary `json:"records,omitempty"`
}

// ManifestSource describes the processed source object.
type ManifestSource struct {
	Bucket    string `json:"bucket"`
	Key       string `json:"key"`
	VersionID string `json:"version_id,omitempty"`
	ETag      string `json:"etag"`
	Size      int64  `json:"size"`
	SHA256    string `json:"sha256,omitempty"`
	Format    string `json:"format,omitempty"`
	Width     int    `json:"width,omitempty"`
	Height    int    `json:"height,omitempty"`
	// Color says what was done with an embedded colour profile: converted to sRGB, or (when it
	// could not be evaluated) taken as sRGB, and why. Absent for untagged and sRGB sources.
	Color *media.Color `json:"color,omitempty"`
	// Rights is the authorship the JPEG renditions carry (recipe metadata "copyright").
	Rights *media.Rights `json:"rights,omitempty"`
}

// source describes src with what this attempt learnt of its content: its SHA-256 once read,
// its format and size once its header was (also when the file was then rejected).
func (r *run) source(src storage.Object) ManifestSource {
	return ManifestSource{
		Bucket: src.Bucket, Key: src.Key, VersionID: src.VersionID, ETag: src.ETag, Size: src.Size,
		SHA256: r.learnt.sha256, Format: string(r.learnt.info.Format), Width: r.learnt.info.Width, Height: r.learnt.info.Height,
		Color: r.learnt.color, Rights: r.learnt.rights,
	}
}

// commit swaps the source's manifest to this claim's generation (putFenced: only while the
// claim holds, never over a later claim's), then sweeps what it superseded: the replaced
// generation, abandoned generations, and any quarantine copy of the source.
func (r *run) commit(src storage.Object, outs []state.Output) (string, error) {
	m := Manifest{
		Source:        r.source(src),
		Recipe:        r.route.entry.Name,
		RecipeVersion: r.route.version,
		Generation:    r.rec.ClaimToken,
		Fence:         r.rec.Fence,
		Outputs:       outs,
		RequestID:     r.requestID,
		StartedAt:     r.rec.UpdatedAt.UTC(),
		CompletedAt:   r.p.now().UTC(),
		CopiedFrom:    r.twin.copied,
		Records:       r.learnt.rows,
	}
	body, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return "", fmt.Errorf("encode manifest: %w", err)
	}
	key := r.p.Keys().Manifest(src.Key)
	// One PutObject is atomic and S3 checks its SHA-256: readers see the old manifest or the
	// whole new one, never a part.
	prev, err := r.putFenced(storage.Put{
		Bucket: r.p.cfg.OutputBucket, Key: key, Body: body, ContentType: "application/json",
		CacheControl: r.route.cache().ManifestCache(),
		Metadata:     r.metadata(src),
	})
	if err != nil {
		return "", err
	}
	var replaced Manifest
	if len(prev) > 0 {
		if err := json.Unmarshal(prev, &replaced); err != nil {
			r.log.Warn("replaced manifest unreadable; the reconciler deletes its generation", "err", err)
		}
		// Another generation's manifest was there to be served (not this claim's own, put by
		// an earlier try of this attempt).
		r.rec.Replaced = r.rec.Replaced || replaced.Generation != r.rec.ClaimToken
	}
	if err := r.sweep(r.rec.ClaimToken, "", slices.Concat(replaced.Outputs, r.rec.Outputs)); err != nil {
		r.log.Warn("superseded outputs not all deleted; the reconciler will", "err", err)
	}
	return key, nil
}

// ReadManifest decodes a manifest.
func ReadManifest(body []byte) (Manifest, error) {
	var m Manifest
	err := json.Unmarshal(body, &m)
	return m, err
}
