package processor

import (
	"context"
	"errors"
	"fmt"
	"image"
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sluice-dev/sluice/pkg/metrics"
	"github.com/sluice-dev/sluice/pkg/recipe"
	"github.com/sluice-dev/sluice/pkg/render"
	"github.com/sluice-dev/sluice/pkg/state"
	"github.com/sluice-dev/sluice/pkg/storage"
)

// maxWatermarkBytes bounds a watermark PNG read from S3.
const maxWatermarkBytes = 4 << 20

// readWatermark reads exactly the watermark the recipe pins (by version id, or by ETag).
func readWatermark(ctx context.Context, objects *storage.Store, w recipe.Watermark) ([]byte, error) {
	bucket, key, _ := w.WatermarkS3()
	b, err := objects.Get(ctx, storage.Object{Bucket: bucket, Key: key, VersionID: w.VersionID, ETag: w.ETag}, maxWatermarkBytes)
	if errors.Is(err, storage.ErrPreconditionFailed) {
		return nil, fmt.Errorf("watermark %s: the object no longer has the ETag %s the recipe pins: it was replaced; set watermark.etag (or version_id) to the new one: %w", w.Source, w.ETag, err)
	}
	if err != nil {
		return nil, fmt.Errorf("watermark %s: %w", w.Source, err)
	}
	return b, nil
}

// Build wires a processor from its configuration and SDK clients: once per cold start. It reads
// the watermark (embedded, or from S3) because its bytes are part of the recipe version.
func Build(ctx context.Context, cfg Config, s3c *s3.Client, ddb *dynamodb.Client, log *slog.Logger, m *metrics.Emitter) (*Processor, error) {
	objects := storage.New(s3c)
	wmBytes := render.DefaultWatermark
	if w := cfg.Recipe.Watermark; w.Source != "default" {
		var err error
		if wmBytes, err = readWatermark(ctx, objects, w); err != nil {
			return nil, err
		}
	}
	var wm image.Image
	if cfg.Recipe.UsesWatermark() {
		var err error
		if wm, err = render.DecodeWatermark(wmBytes); err != nil {
			return nil, fmt.Errorf("watermark %s: %w", cfg.Recipe.Watermark.Source, err)
		}
	}
	version := cfg.Recipe.Version(wmBytes)
	states := state.New(ddb, cfg.StateTable, cfg.StateTTL)
	log.Info("processor ready", "recipe_version", version, "renditions", len(cfg.Recipe.Renditions),
		"output_bucket", cfg.OutputBucket, "state_table", cfg.StateTable)
	return New(cfg, objects, states, render.New(cfg.Recipe, wm), version, log, m), nil
}
