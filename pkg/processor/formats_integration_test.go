package processor_test

import (
	"context"
	"image"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/sluice-dev/sluice/pkg/failure"
	"github.com/sluice-dev/sluice/pkg/processor"
	"github.com/sluice-dev/sluice/pkg/recipe"
)

// A WebP rendition is published under its .webp key with its content type.
func TestWebPRenditionIsPublished(t *testing.T) {
	r := newRig(t, func(c *processor.Config) {
		c.Recipe.Renditions = []recipe.Rendition{{Name: "thumb", Mode: recipe.Fill, Width: 128, Height: 128, Format: recipe.WebP}}
	})
	const key = "uploads/w.jpg"
	r.upload(t, key, grayJPEG(t, 400, 300), nil)
	if res := r.proc.Process(context.Background(), "req-webp", r.event(key)); res.Outcome != processor.Succeeded {
		t.Fatalf("outcome %s err %v", res.Outcome, res.Err)
	}
	o, err := r.objects.Head(context.Background(), r.output, r.rendition(t, key, "thumb"))
	if err != nil || o.ContentType != "image/webp" {
		t.Fatalf("head: %+v %v", o, err)
	}
	if rec := r.record(t, key); len(rec.Outputs) != 1 || rec.Outputs[0].Format != "webp" {
		t.Fatalf("outputs %+v", rec.Outputs)
	}
}

// A HEIC and an AVIF photo go through the whole path: accepted by content, decoded (WebAssembly
// decoders), every rendition published as JPEG at the expected size; one over its format's own
// pixel limit is quarantined with the reason.
func TestHEICAndAVIFInputs(t *testing.T) {
	r := newRig(t, func(c *processor.Config) { c.Limits.MaxAVIFPixels = 100_000 })
	for _, name := range []string{"elephants.heic", "elephants.avif"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "images", name))
		if err != nil {
			t.Fatal(err)
		}
		key := "uploads/" + name
		r.upload(t, key, b, nil)
		res := r.proc.Process(context.Background(), "req-"+name, r.event(key))
		if name == "elephants.avif" {
			if res.Outcome != processor.Quarantined || res.Reason != string(failure.TooManyPixels) {
				t.Fatalf("%s over MAX_AVIF_PIXELS: outcome %s, reason %q", name, res.Outcome, res.Reason)
			}
			continue
		}
		if res.Outcome != processor.Succeeded {
			t.Fatalf("%s: outcome %s err %v", name, res.Outcome, res.Err)
		}
		img := decode(t, r.get(t, r.output, r.rendition(t, key, "medium")))
		if got := img.Bounds().Size(); got != image.Pt(600, 338) { // the source is smaller than medium
			t.Errorf("%s: medium is %v", name, got)
		}
	}
	// The same AVIF under a limit that admits it.
	r2 := newRig(t, nil)
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "images", "elephants.avif"))
	if err != nil {
		t.Fatal(err)
	}
	r2.upload(t, "uploads/a.avif", b, nil)
	if res := r2.proc.Process(context.Background(), "req-avif", r2.event("uploads/a.avif")); res.Outcome != processor.Succeeded {
		t.Fatalf("avif: outcome %s err %v", res.Outcome, res.Err)
	}
}

// Valid files that used to be quarantined as corrupt go through the whole path: arithmetic-coded
// and 12-bit JPEGs, a TIFF with JPEG compression, an animated WebP (its first frame), a
// Display P3 HEIC.
func TestFilesOnceCorruptArePublished(t *testing.T) {
	r := newRig(t, nil)
	for _, path := range []string{
		"../media/testdata/arith/arith.jpg", "../media/testdata/arith/arith-prog.jpg",
		"../jpegscale/testdata/twelve/twelve.jpg", "../media/testdata/tiff-jpeg/tiff-jpeg-tiled.tif",
		"../media/testdata/webp/anim-lossy.webp", "../media/testdata/color/p3.heic",
	} {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		key := "uploads/" + filepath.Base(path)
		r.upload(t, key, b, nil)
		if res := r.proc.Process(context.Background(), "req-valid", r.event(key)); res.Outcome != processor.Succeeded {
			t.Errorf("%s: %s %q %s %v", key, res.Outcome, res.Reason, res.Detail, res.Err)
		}
	}
}

// Every published object carries the Cache-Control its recipe says, for a CDN in front of the
// output bucket: renditions (immutable generation keys) a year and immutable by default, the
// manifest a minute; a recipe may say otherwise. Renditions copied from a twin (DEDUPE) too.
func TestPublishedObjectsCarryTheirCacheControl(t *testing.T) {
	custom, err := recipe.Parse([]byte(`{"cache_control":{"renditions":"public, max-age=86400","manifest":"no-cache"}}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		recipe               recipe.Recipe
		renditions, manifest string
	}{
		{recipe.Default(), recipe.DefaultRenditionsCache, recipe.DefaultManifestCache},
		{custom, "public, max-age=86400", "no-cache"},
	} {
		r := newRig(t, func(cfg *processor.Config) { cfg.Recipe, cfg.Dedupe = c.recipe, true })
		body := grayJPEG(t, 400, 300)
		// The second key has the first one's bytes: its renditions are copies of the first one's.
		for i, key := range []string{"uploads/cached.jpg", "uploads/cached-twin.jpg"} {
			r.upload(t, key, body, nil)
			res := r.proc.Process(context.Background(), "req-cache", r.event(key))
			if res.Outcome != processor.Succeeded || strings.Contains(res.Detail, "twin") != (i == 1) {
				t.Fatalf("%s: %s %v (%s)", key, res.Outcome, res.Err, res.Detail)
			}
			head := func(k string) (cache, typ string) {
				out, err := r.env.S3.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(r.output), Key: aws.String(k)})
				if err != nil {
					t.Fatal(err)
				}
				return aws.ToString(out.CacheControl), aws.ToString(out.ContentType)
			}
			for _, name := range []string{"large", "medium", "thumb"} {
				if got, typ := head(r.rendition(t, key, name)); got != c.renditions || !strings.HasPrefix(typ, "image/") {
					t.Errorf("%s rendition %s: Cache-Control %q, Content-Type %q, want %q", key, name, got, typ, c.renditions)
				}
			}
			if got, _ := head(r.proc.Keys().Manifest(key)); got != c.manifest {
				t.Errorf("%s manifest: Cache-Control %q, want %q", key, got, c.manifest)
			}
		}
	}
	if _, err := recipe.Parse([]byte(`{"cache_control":{"manifest":"no-cache\r\nX-Evil: 1"}}`)); err == nil || !strings.Contains(err.Error(), "cache_control.manifest") {
		t.Errorf("a header value with CR LF: %v", err)
	}
}
