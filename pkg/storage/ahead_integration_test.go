package storage_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sluice-dev/sluice/pkg/storage"
	"github.com/sluice-dev/sluice/pkg/testenv"
)

// ListAhead lists child prefixes in parallel and still hands over exactly what ListAfter does,
// in the same order, from the start or from any key: objects directly under the prefix between
// child prefixes, a child of more than one page, keys whose URL encoding sorts differently from
// the keys themselves ("a b" < "a+" < "a/", but "a+b" < "a%2B" when encoded).
func TestListAheadKeepsTheListingOrder(t *testing.T) {
	env := testenv.Open(t)
	bucket := env.Bucket(t)
	ctx := context.Background()
	keys := []string{"p/a b", "p/a+", "p/a.jpg", "p/a/1", "p/a/2", "p/c", "p/d/x", "p/d e/y", "p/z", "q/outside"}
	for i := range 1203 {
		keys = append(keys, fmt.Sprintf("p/b/%04d", i))
	}
	parallel := make(chan struct{}, 16)
	errs := make(chan error, len(keys))
	for _, k := range keys {
		parallel <- struct{}{}
		go func() {
			defer func() { <-parallel }()
			_, err := env.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(k), Body: strings.NewReader("")})
			errs <- err
		}()
	}
	for range keys {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	st := storage.New(env.S3)
	collect := func(list func(func(storage.Object) error) error) []string {
		var got []string
		if err := list(func(o storage.Object) error { got = append(got, o.Key); return nil }); err != nil {
			t.Fatal(err)
		}
		return got
	}
	for _, after := range []string{"", "p/a+", "p/a/1", "p/b/0999", "p/b/1202", "p/d e/y", "p/zz"} {
		want := collect(func(f func(storage.Object) error) error { return st.ListAfter(ctx, bucket, "p/", after, f) })
		for _, ahead := range []int{2, 4} {
			got := collect(func(f func(storage.Object) error) error { return st.ListAhead(ctx, bucket, "p/", after, ahead, f) })
			if !slices.Equal(got, want) {
				t.Errorf("after %q, %d ahead: %d keys, want %d; first differences: %v", after, ahead, len(got), len(want), firstDiff(got, want))
			}
		}
	}
}

func firstDiff(a, b []string) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return fmt.Sprintf("at %d: %q vs %q", i, a[i], b[i])
		}
	}
	return "one is a prefix of the other"
}
