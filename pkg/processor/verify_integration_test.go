package processor

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/pkg/storage"
	"github.com/sluice-dev/sluice/pkg/testenv"
)

// Against a server that does not report the stored checksum in the PUT's answer, verify falls
// back to a HEAD; a stored object that differs from what was sent fails transiently either way.
func TestVerifyUsesTheStoredChecksumOrAHead(t *testing.T) {
	env := testenv.Open(t)
	bucket := env.Bucket(t)
	objects := storage.New(env.S3)
	r := &run{p: &Processor{cfg: Config{OutputBucket: bucket}, objects: objects}, ctx: context.Background(), log: slog.New(slog.NewJSONHandler(io.Discard, nil))}
	body := []byte("rendition bytes")
	w, err := objects.Put(context.Background(), storage.Put{Bucket: bucket, Key: "tmp/x", Body: body, ContentType: "image/jpeg"})
	if err != nil || w.Stored == "" {
		t.Fatalf("put: %+v %v (MinIO reports the stored checksum)", w, err)
	}
	if err := r.verify("tmp/x", w); err != nil {
		t.Fatalf("stored checksum: %v", err)
	}
	headOnly := w
	headOnly.Stored = ""
	if err := r.verify("tmp/x", headOnly); err != nil {
		t.Fatalf("HEAD fallback: %v", err)
	}
	other := headOnly
	other.SHA256 = strings.Repeat("0", 64)
	if err := r.verify("tmp/x", other); err == nil {
		t.Fatal("HEAD fallback accepted a different object")
	}
	mismatch := w
	mismatch.Stored = strings.Repeat("1", 64)
	if err := r.verify("tmp/x", mismatch); err == nil {
		t.Fatal("a stored checksum that differs was accepted")
	}
}
