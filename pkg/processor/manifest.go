package processor

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/sluice-dev/sluice/pkg/failure"
	"github.com/sluice-dev/sluice/pkg/media"
	"github.com/sluice-dev/sluice/pkg/state"
	"github.com/sluice-dev/sluice/pkg/storage"
)

// Manifest is the commit marker of one source's renditions, written last: when it exists, every
// output it lists exists with the listed checksum.
type Manifest struct {
	Source        ManifestSource `json:"source"`
	RecipeVersion string         `json:"recipe_version"`
	Outputs       []state.Output `json:"outputs"`
	RequestID     string         `json:"request_id"`
	StartedAt     time.Time      `json:"started_at"`
	CompletedAt   time.Time      `json:"completed_at"`
}

// ManifestSource describes the processed source object.
type ManifestSource struct {
	Bucket    string `json:"bucket"`
	Key       string `json:"key"`
	VersionID string `json:"version_id,omitempty"`
	ETag      string `json:"etag"`
	Size      int64  `json:"size"`
	SHA256    string `json:"sha256"`
	Format    string `json:"format"`
	Width     int    `json:"width"`
	Height    int    `json:"height"`
}

func (r *run) writeManifest(src storage.Object, srcSHA string, info media.Info, outs []state.Output) (string, error) {
	m := Manifest{
		Source: ManifestSource{
			Bucket: src.Bucket, Key: src.Key, VersionID: src.VersionID, ETag: src.ETag, Size: src.Size,
			SHA256: srcSHA, Format: string(info.Format), Width: info.Width, Height: info.Height,
		},
		RecipeVersion: r.p.recipeVersion,
		Outputs:       outs,
		RequestID:     r.requestID,
		StartedAt:     r.rec.UpdatedAt.UTC(),
		CompletedAt:   r.p.now().UTC(),
	}
	body, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return "", fmt.Errorf("encode manifest: %w", err)
	}
	key := r.p.Keys().Manifest(src.Key)
	only, err := r.guard(key)
	if err != nil {
		return "", err
	}
	// One PutObject is atomic and S3 checks its SHA-256: readers see the old manifest or the
	// whole new one, never a part; the precondition keeps a stale worker from replacing it.
	if _, err := r.p.objects.Put(r.ctx, storage.Put{
		Bucket: r.p.cfg.OutputBucket, Key: key, Body: body, ContentType: "application/json",
		Metadata: r.metadata(nil), Only: only,
	}); err != nil {
		return "", failure.Transient(err)
	}
	return key, nil
}
