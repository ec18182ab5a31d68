package cdn_test

import (
	"context"
	"slices"
	"testing"

	"github.com/sluice-dev/sluice/pkg/cdn"
	"github.com/sluice-dev/sluice/pkg/failure"
	"github.com/sluice-dev/sluice/pkg/testenv"
)

func TestPathEncodesEachSegment(t *testing.T) {
	for key, want := range map[string]string{
		"renditions/uploads/cat.jpg/manifest.json":    "/renditions/uploads/cat.jpg/manifest.json",
		"renditions/uploads/a b/ü?.jpg/manifest.json": "/renditions/uploads/a%20b/%C3%BC%3F.jpg/manifest.json",
		"renditions/uploads/*/manifest.json":          "/renditions/uploads/%2A/manifest.json",
	} {
		if got := cdn.Path(key); got != want {
			t.Errorf("Path(%q) = %q, want %q", key, got, want)
		}
	}
}

// The same reference and keys again create no second invalidation; a distribution that refuses
// (too many in progress) is a transient failure, and the next try creates it.
func TestInvalidateOncePerReference(t *testing.T) {
	cf := testenv.NewCloudFront(t)
	v := cdn.New(cf.Client(), "E2QWRUHAPOMQZL")
	ctx := context.Background()
	keys := []string{"renditions/uploads/a b.jpg/manifest.json"}
	for range 3 {
		if err := v.Invalidate(ctx, "outcome-1", keys); err != nil {
			t.Fatal(err)
		}
	}
	made := cf.Invalidations()
	if len(made) != 1 || made[0].Distribution != "E2QWRUHAPOMQZL" || made[0].CallerReference != "outcome-1" || !slices.Equal(made[0].Paths, []string{"/renditions/uploads/a%20b.jpg/manifest.json"}) {
		t.Fatalf("invalidations %+v, want one", made)
	}
	if err := v.Invalidate(ctx, "outcome-1", []string{"renditions/other/manifest.json"}); err != nil {
		t.Errorf("a reference used with other paths (an older sluice's): %v, want done", err)
	}
	cf.Busy(1)
	err := v.Invalidate(ctx, "outcome-2", keys)
	if failure.Classify(err) != failure.IsTransient {
		t.Fatalf("too many in progress: %v, want a transient error", err)
	}
	if err := v.Invalidate(ctx, "outcome-2", keys); err != nil || len(cf.Invalidations()) != 2 {
		t.Errorf("after the refusal: %v, %d invalidations", err, len(cf.Invalidations()))
	}
}
