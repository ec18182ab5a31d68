package processor_test

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sluice-dev/sluice/pkg/cdn"
	"github.com/sluice-dev/sluice/pkg/processor"
	"github.com/sluice-dev/sluice/pkg/testenv"
	"github.com/sluice-dev/sluice/pkg/trigger"
)

// A CDN in front of the output bucket is told once per version of what it may hold stale: a
// first publish invalidates nothing (renditions live under generation keys no one rewrites); an
// overwrite, delivered five times (three of them at once), invalidates the source's manifest
// path once, named by the outcome; its removal, delivered twice, once more.
func TestOverwriteAndRemovalInvalidateOncePerVersion(t *testing.T) {
	cf := testenv.NewCloudFront(t)
	r := newRig(t, func(c *processor.Config) { c.Distribution = "E2QWRUHAPOMQZL" })
	r.proc.WithCDN(cdn.New(cf.Client(), r.cfg.Distribution))
	ctx := context.Background()
	const key = "uploads/cdn/a b.jpg"
	path := cdn.Path(r.proc.Keys().Manifest(key))
	deliver := func(ev trigger.ObjectEvent, n int) []processor.Outcome {
		out := make([]processor.Outcome, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { out[i] = r.proc.Process(ctx, "req", ev).Outcome })
		}
		wg.Wait()
		slices.Sort(out)
		return out
	}

	r.upload(t, key, grayJPEG(t, 640, 480), nil)
	if got := deliver(r.event(key), 1); got[0] != processor.Succeeded {
		t.Fatalf("first upload: %v", got)
	}
	if n := len(cf.Invalidations()); n != 0 {
		t.Fatalf("a first publish made %d invalidations, want none", n)
	}

	r.upload(t, key, grayJPEG(t, 800, 600), nil)
	outcomes := deliver(r.event(key), 3)
	outcomes = append(outcomes, deliver(r.event(key), 1)...)
	outcomes = append(outcomes, deliver(r.event(key), 1)...)
	if n := slices.Index(outcomes, processor.Succeeded); n < 0 || slices.Contains(outcomes[n+1:], processor.Succeeded) {
		t.Fatalf("overwrite deliveries: %v, want one succeeded", outcomes)
	}
	overwrite := r.record(t, key)
	made := cf.Invalidations()
	if len(made) != 1 || made[0].CallerReference != overwrite.OutcomeID() || !slices.Equal(made[0].Paths, []string{path}) {
		t.Fatalf("after the overwrite: %+v, want one invalidation of %s named %s", made, path, overwrite.OutcomeID())
	}

	if _, err := r.env.S3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(r.staging), Key: aws.String(key)}); err != nil {
		t.Fatal(err)
	}
	removed := trigger.ObjectEvent{Action: trigger.Removed, Name: "ObjectRemoved:Delete", Bucket: r.staging, Key: key}
	if got := deliver(removed, 2); !slices.Equal(got, []processor.Outcome{processor.Duplicate, processor.Removed}) && !slices.Equal(got, []processor.Outcome{processor.Failed, processor.Removed}) {
		t.Fatalf("removal deliveries: %v", got)
	}
	deliver(removed, 1)
	tomb := r.record(t, key)
	made = cf.Invalidations()
	if len(made) != 2 || made[1].CallerReference != tomb.OutcomeID() || !slices.Equal(made[1].Paths, []string{path}) || tomb.Unannounced() {
		t.Errorf("after the removal: %+v (record unannounced: %v), want a second invalidation of %s", made, tomb.Unannounced(), path)
	}
}
