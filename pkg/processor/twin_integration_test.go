package processor_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sluice-dev/sluice/pkg/processor"
	"github.com/sluice-dev/sluice/pkg/trigger"
)

// DEDUPE: a hundred keys with the same bytes are decoded and rendered once; the other 99 publish
// verified copies of the first one's renditions, each into its own generation, with equal
// checksums. Deleting the first key leaves the other 99 intact, and the next upload of those
// bytes renders again and becomes their twin.
func TestHundredKeysWithTheSameBytesRenderOnce(t *testing.T) {
	r := newRig(t, func(c *processor.Config) { c.Dedupe = true })
	ctx := context.Background()
	body := grayJPEG(t, 1200, 800)
	keys := make([]string, 100)
	for i := range keys {
		keys[i] = fmt.Sprintf("uploads/same/%03d.jpg", i)
		r.upload(t, keys[i], body, nil)
	}
	if res := r.proc.Process(ctx, "req-first", r.event(keys[0])); res.Outcome != processor.Succeeded {
		t.Fatalf("first: %s %v", res.Outcome, res.Err)
	}
	var wg sync.WaitGroup
	jobs := make(chan string)
	for range 8 {
		wg.Go(func() {
			for k := range jobs {
				if res := r.proc.Process(ctx, "req", r.event(k)); res.Outcome != processor.Succeeded {
					t.Errorf("%s: %s %v", k, res.Outcome, res.Err)
				}
			}
		})
	}
	for _, k := range keys[1:] {
		jobs <- k
	}
	close(jobs)
	wg.Wait()

	rendered := 0
	var sums []string
	for i, k := range keys {
		m, err := processor.ReadManifest(r.get(t, r.output, r.proc.Keys().Manifest(k)))
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		var s []string
		for _, o := range m.Outputs {
			s = append(s, o.Name+":"+o.SHA256)
		}
		switch {
		case m.CopiedFrom == nil:
			rendered++
		case m.CopiedFrom.Key != keys[0] || m.Source.Key != k || m.Source.Format == "" || m.Source.SHA256 == "":
			t.Errorf("%s: copied from %+v, source %+v", k, m.CopiedFrom, m.Source)
		}
		if i == 0 {
			sums = s
		} else if !slices.Equal(s, sums) {
			t.Errorf("%s lists %v, the first %v", k, s, sums)
		}
		servable(t, r, k)
	}
	if rendered != 1 {
		t.Errorf("%d of 100 rendered, want 1", rendered)
	}

	if _, err := r.env.S3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(r.staging), Key: aws.String(keys[0])}); err != nil {
		t.Fatal(err)
	}
	if res := r.proc.Process(ctx, "req-rm", trigger.ObjectEvent{Action: trigger.Removed, Name: "ObjectRemoved:Delete", Bucket: r.staging, Key: keys[0]}); res.Outcome != processor.Removed {
		t.Fatalf("removal of the twin: %s %v", res.Outcome, res.Err)
	}
	for _, k := range keys[1:] {
		servable(t, r, k)
	}
	if n := len(r.list(t, r.output)); n != 99*4 {
		t.Errorf("%d output keys after the twin's removal, want 4 for each of the 99 others (no temp object, no copy left over)", n)
	}
	// The twin is gone: the next key with those bytes renders, and is the twin from then on.
	for i, k := range []string{"uploads/same/next.jpg", "uploads/same/after.jpg"} {
		r.upload(t, k, body, nil)
		if res := r.proc.Process(ctx, "req-next", r.event(k)); res.Outcome != processor.Succeeded {
			t.Fatalf("%s: %s %v", k, res.Outcome, res.Err)
		}
		m, err := processor.ReadManifest(r.get(t, r.output, r.proc.Keys().Manifest(k)))
		if err != nil {
			t.Fatal(err)
		}
		if want := i == 1; (m.CopiedFrom != nil) != want || (want && m.CopiedFrom.Key != "uploads/same/next.jpg") {
			t.Errorf("%s: copied from %+v", k, m.CopiedFrom)
		}
	}
}

// servable asserts what a reader of key's manifest is promised: it is the record's, and every
// output it lists exists with the listed size and checksum, in the manifest's generation.
func servable(t *testing.T, r *rig, key string) {
	t.Helper()
	m, err := processor.ReadManifest(r.get(t, r.output, r.proc.Keys().Manifest(key)))
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	if rec := r.record(t, key); rec.ManifestKey != r.proc.Keys().Manifest(key) || len(rec.Outputs) != len(m.Outputs) || len(m.Outputs) == 0 {
		t.Errorf("%s: record %s with %d outputs, manifest with %d", key, rec.Status, len(rec.Outputs), len(m.Outputs))
	}
	for _, o := range m.Outputs {
		head, err := r.objects.Head(context.Background(), r.output, o.Key)
		if err != nil || head.SHA256 != o.SHA256 || head.Size != o.Size {
			t.Errorf("%s: %s is %d bytes %s (%v), listed %d bytes %s", key, o.Key, head.Size, head.SHA256, err, o.Size, o.SHA256)
		}
		if out, ok := r.proc.Keys().ParseOutput(o.Key); !ok || out.Gen != m.Generation {
			t.Errorf("%s: %s is not of the manifest's generation %s", key, o.Key, m.Generation)
		}
	}
}
