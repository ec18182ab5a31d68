package processor_test

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/sluice-dev/sluice/pkg/metrics"
	"github.com/sluice-dev/sluice/pkg/processor"
	"github.com/sluice-dev/sluice/pkg/render"
)

// Item 10: a watermark read from S3 is pinned by the recipe. Replacing the object in place never
// gives containers different recipe versions: pinned by version id, every container keeps
// reading the pinned bytes; pinned by ETag, a new container refuses to start, naming the field
// to update, instead of rendering with other bytes.
func TestWatermarkFromS3IsPinned(t *testing.T) {
	r := newRig(t, nil)
	ctx := context.Background()
	assets := r.env.Bucket(t)
	if _, err := r.env.S3.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String(assets),
		VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled}}); err != nil {
		t.Fatal(err)
	}
	put := func(body []byte) (etag, version string) {
		out, err := r.env.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(assets), Key: aws.String("brand/logo.png"), Body: bytes.NewReader(body)})
		if err != nil {
			t.Fatal(err)
		}
		return strings.Trim(aws.ToString(out.ETag), `"`), aws.ToString(out.VersionId)
	}
	etag, version := put(render.DefaultWatermark)
	other := image.NewNRGBA(image.Rect(0, 0, 40, 20))
	for i := range other.Pix {
		other.Pix[i] = 200
	}
	other.Set(3, 3, color.NRGBA{255, 0, 0, 255})
	var replacement bytes.Buffer
	if err := png.Encode(&replacement, other); err != nil {
		t.Fatal(err)
	}

	r.cfg.Recipe.Watermark.Source = "s3://" + assets + "/brand/logo.png"
	r.cfg.Recipe.Watermark.VersionID = version
	r.build(t)
	byVersion := r.proc.RecipeVersion()
	r.cfg.Recipe.Watermark.VersionID, r.cfg.Recipe.Watermark.ETag = "", etag
	r.build(t) // the ETag pin holds while the object is unchanged

	put(replacement.Bytes()) // replaced in place
	r.cfg.Recipe.Watermark.VersionID, r.cfg.Recipe.Watermark.ETag = version, ""
	r.build(t)
	if got := r.proc.RecipeVersion(); got != byVersion {
		t.Errorf("pinned by version id: recipe version %s after the object was replaced, was %s", got, byVersion)
	}
	r.cfg.Recipe.Watermark.VersionID, r.cfg.Recipe.Watermark.ETag = "", etag
	_, err := processor.Build(ctx, r.cfg, r.env.S3, r.env.DDB, slog.New(slog.NewJSONHandler(io.Discard, nil)), metrics.New(io.Discard, "processor"))
	if err == nil || !strings.Contains(err.Error(), "watermark.etag") {
		t.Errorf("pinned by ETag, the object replaced: Build err = %v, want a refusal naming watermark.etag", err)
	}
}
