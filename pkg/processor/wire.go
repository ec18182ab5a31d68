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
	"github.com/sluice-dev/sluice/pkg/records"
	"github.com/sluice-dev/sluice/pkg/render"
	"github.com/sluice-dev/sluice/pkg/state"
	"github.com/sluice-dev/sluice/pkg/storage"
)

// maxWatermarkBytes bounds a watermark PNG read from S3.
const maxWatermarkBytes = 4 << 20

// getter reads an object as a HEAD saw it (storage.Store.Get).
type getter interface {
	Get(ctx context.Context, o storage.Object, limit int64) ([]byte, error)
}

// readWatermark reads exactly the watermark the recipe pins (by version id, or by ETag).
func readWatermark(ctx context.Context, objects getter, w recipe.Watermark) ([]byte, error) {
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

// Build wires a processor from its configuration and SDK clients: once per cold start. It
// makes each recipe ready (reading an image recipe's watermark, whose bytes are part of its
// version; compiling a records recipe's schema), and fails naming the recipe that cannot be.
func Build(ctx context.Context, cfg Config, s3c *s3.Client, ddb *dynamodb.Client, log *slog.Logger, m *metrics.Emitter) (*Processor, error) {
	objects := storage.New(s3c)
	routing := cfg.Routing()
	routes := make([]*route, 0, len(routing.Recipes))
	for i, e := range routing.Recipes {
		rt, err := ready(ctx, cfg, objects, e)
		if err != nil {
			return nil, fmt.Errorf("recipes[%d] %q: %w", i, e.Name, err)
		}
		log.Info("recipe ready", "recipe", e.Name, "kind", e.Kind, "recipe_version", rt.version, "canary", rt.canary != nil)
		routes = append(routes, rt)
	}
	log.Info("processor ready", "recipes", len(routes), "output_bucket", cfg.OutputBucket, "state_table", cfg.StateTable)
	states := state.New(ddb, cfg.StateTable, cfg.StateTTL)
	return newProcessor(cfg, objects, states, newRouter(routes, routing.Unmatched), log, m), nil
}

// ready makes one recipe ready to run.
func ready(ctx context.Context, cfg Config, objects getter, e recipe.Entry) (*route, error) {
	rt := &route{entry: e, limits: cfg.Limits}
	switch {
	case e.MaxBytes > 0:
		rt.limits.MaxBytes = e.MaxBytes
	case e.Kind != recipe.KindImage:
		rt.limits.MaxBytes = recipe.DefaultStreamMaxBytes
	}
	var err error
	switch e.Kind {
	case recipe.KindImage:
		err = rt.readyImage(ctx, objects)
	case recipe.KindRecords:
		rt.plan, err = records.Compile(*e.Records)
		rt.version = e.Version()
	default:
		rt.version = e.Version()
	}
	if err == nil && e.Canary != nil {
		if rt.canary, err = ready(ctx, cfg, objects, e.CanaryEntry()); err != nil {
			err = fmt.Errorf("canary: %w", err)
		}
	}
	return rt, err
}

// readyImage reads the image recipe's watermark (embedded, or from S3) and makes its renderer.
func (rt *route) readyImage(ctx context.Context, objects getter) error {
	rc := rt.image()
	wmBytes := render.DefaultWatermark
	if w := rc.Watermark; w.Source != "default" {
		var err error
		if wmBytes, err = readWatermark(ctx, objects, w); err != nil {
			return err
		}
	}
	var wm image.Image
	if rc.UsesWatermark() {
		var err error
		if wm, err = render.DecodeWatermark(wmBytes); err != nil {
			return fmt.Errorf("watermark %s: %w", rc.Watermark.Source, err)
		}
	}
	rt.version = rt.entry.Version(wmBytes)
	rt.renderer = render.New(rc, wm)
	return nil
}
