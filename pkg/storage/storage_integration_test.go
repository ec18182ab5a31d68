package storage_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/sluice-dev/sluice/pkg/storage"
	"github.com/sluice-dev/sluice/pkg/testenv"
)

func TestPutHeadCopyWithChecksums(t *testing.T) {
	env := testenv.Open(t)
	bucket := env.Bucket(t)
	st := storage.New(env.S3)
	ctx := context.Background()

	body := []byte("sluice smoke test body")
	w, err := st.Put(ctx, storage.Put{Bucket: bucket, Key: "tmp/a b+é.txt", Body: body, ContentType: "text/plain"})
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%x", sha256.Sum256(body))
	if w.SHA256 != want || w.Stored != want {
		t.Fatalf("Put SHA256 = %s, stored %s, want %s", w.SHA256, w.Stored, want)
	}

	head, err := st.Head(ctx, bucket, "tmp/a b+é.txt")
	if err != nil {
		t.Fatal(err)
	}
	if head.SHA256 != want || head.Size != int64(len(body)) || head.ETag != w.ETag {
		t.Fatalf("Head = %+v, want sha256 %s size %d etag %s", head, want, len(body), w.ETag)
	}

	if _, err := st.Copy(ctx, storage.Copy{SrcBucket: bucket, SrcKey: "tmp/a b+é.txt", IfMatch: w.ETag, DstBucket: bucket, DstKey: "final/a b+é.txt"}); err != nil {
		t.Fatalf("copy with the right ETag: %v", err)
	}
	got, err := st.Head(ctx, bucket, "final/a b+é.txt")
	if err != nil {
		t.Fatal(err)
	}
	if got.SHA256 != want || got.Size != int64(len(body)) {
		t.Fatalf("copied object = %+v, want sha256 %s size %d", got, want, len(body))
	}

	_, err = st.Copy(ctx, storage.Copy{SrcBucket: bucket, SrcKey: "tmp/a b+é.txt", IfMatch: "0123456789abcdef0123456789abcdef", DstBucket: bucket, DstKey: "final/other"})
	if !errors.Is(err, storage.ErrPreconditionFailed) {
		t.Fatalf("copy with a wrong ETag: err = %v, want ErrPreconditionFailed", err)
	}
	if _, err := st.Head(ctx, bucket, "final/other"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a failed copy left an object behind (head err = %v)", err)
	}
}

func TestServerRejectsWrongChecksum(t *testing.T) {
	env := testenv.Open(t)
	bucket := env.Bucket(t)
	// What the output protocol relies on: S3 refuses a body whose SHA-256 differs from the one sent.
	wrong := sha256.Sum256([]byte("something else"))
	_, err := env.S3.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String("k"), Body: strings.NewReader("body"),
		ChecksumAlgorithm: s3types.ChecksumAlgorithmSha256,
		ChecksumSHA256:    aws.String(base64.StdEncoding.EncodeToString(wrong[:])),
	})
	if err == nil {
		t.Fatal("PutObject with a wrong SHA-256 succeeded")
	}
	if _, err := storage.New(env.S3).Head(context.Background(), bucket, "k"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("the refused object exists (head err = %v)", err)
	}
}

func TestGetHonoursLimit(t *testing.T) {
	env := testenv.Open(t)
	bucket := env.Bucket(t)
	st := storage.New(env.S3)
	ctx := context.Background()
	if _, err := st.Put(ctx, storage.Put{Bucket: bucket, Key: "big", Body: make([]byte, 1000)}); err != nil {
		t.Fatal(err)
	}
	head, err := st.Head(ctx, bucket, "big")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Get(ctx, head, 999); !errors.Is(err, storage.ErrTooLarge) {
		t.Fatalf("Get past the limit: err = %v, want ErrTooLarge", err)
	}
	b, err := st.Get(ctx, head, 1000)
	if err != nil || len(b) != 1000 {
		t.Fatalf("Get at the limit: %d bytes, err %v", len(b), err)
	}
}

// Conditional writes are what fences the manifest: MinIO, like S3, enforces If-Match and
// If-None-Match on PutObject.
func TestConditionalPut(t *testing.T) {
	env := testenv.Open(t)
	bucket := env.Bucket(t)
	st := storage.New(env.S3)
	ctx := context.Background()
	put := func(body string, only storage.Precondition) error {
		_, err := st.Put(ctx, storage.Put{Bucket: bucket, Key: "m.json", Body: []byte(body), ContentType: "application/json", Only: only})
		return err
	}
	if err := put("one", storage.Replacing(storage.Object{}, false)); err != nil {
		t.Fatalf("create if absent: %v", err)
	}
	if err := put("two", storage.Precondition{IfAbsent: true}); !errors.Is(err, storage.ErrPreconditionFailed) {
		t.Fatalf("create over an existing object: err = %v, want ErrPreconditionFailed", err)
	}
	cur, err := st.Head(ctx, bucket, "m.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := put("three", storage.Precondition{IfMatch: "0123456789abcdef0123456789abcdef"}); !errors.Is(err, storage.ErrPreconditionFailed) {
		t.Fatalf("replace a changed object: err = %v, want ErrPreconditionFailed", err)
	}
	if err := put("four", storage.Replacing(cur, true)); err != nil {
		t.Fatalf("replace the object seen: %v", err)
	}
	if got := string(getBody(t, env, bucket, "m.json")); got != "four" {
		t.Fatalf("body %q, want the one write whose precondition held", got)
	}
}

func getBody(t *testing.T, env *testenv.Env, bucket, key string) []byte {
	t.Helper()
	out, err := env.S3.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestStreamedUploadChecksItsParts: a streamed upload of three parts completes with the
// composite checksum its parts make (so Stored is the whole SHA-256), and one under a part is a
// plain PUT; either reads back byte for byte.
func TestStreamedUploadChecksItsParts(t *testing.T) {
	env := testenv.Open(t)
	bucket := env.Bucket(t)
	st := storage.New(env.S3)
	ctx := context.Background()
	for _, size := range []int{1000, 2*storage.PartSize + 12345} {
		body := make([]byte, size)
		for i := range body {
			body[i] = byte(i * 7 / 13)
		}
		key := fmt.Sprintf("up/%d", size)
		up := st.NewUpload(ctx, storage.Put{Bucket: bucket, Key: key, ContentType: "application/x-ndjson"})
		for rest := body; len(rest) > 0; {
			n := min(len(rest), 1<<20+3)
			if _, err := up.Write(rest[:n]); err != nil {
				t.Fatal(err)
			}
			rest = rest[n:]
		}
		w, err := up.Close()
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("%x", sha256.Sum256(body))
		if w.SHA256 != want || w.Stored != want || w.Size != int64(size) {
			t.Fatalf("%d bytes: written %+v, want sha256 %s", size, w, want)
		}
		if got := getBody(t, env, bucket, key); string(got) != string(body) {
			t.Fatalf("%d bytes: read back %d different bytes", size, len(got))
		}
	}
}

// TestStreamedUploadResumesFromACheckpoint: an upload checkpointed mid-part, that went on to
// send another part and then died, is resumed by another Upload from the checkpoint: the part
// sent after it is sent again, the pending bytes come back from their key, and the object is
// the bytes written, its composite checksum verified.
func TestStreamedUploadResumesFromACheckpoint(t *testing.T) {
	env := testenv.Open(t)
	bucket := env.Bucket(t)
	st := storage.New(env.S3)
	ctx := context.Background()
	body := make([]byte, 3*storage.PartSize+777)
	for i := range body {
		body[i] = byte(i*31/7 + i>>13)
	}
	p := storage.Put{Bucket: bucket, Key: "up/resumed", ContentType: "application/x-ndjson"}
	cut := storage.PartSize + storage.PartSize/2
	first := st.NewUpload(ctx, p)
	if _, err := first.Write(body[:cut]); err != nil {
		t.Fatal(err)
	}
	state, err := first.Checkpoint("up/resumed.pending")
	if err != nil || state.Parts != 1 || state.Pending == "" || state.Size != int64(cut) {
		t.Fatalf("checkpoint %+v %v", state, err)
	}
	if _, err := first.Write(body[cut : 2*storage.PartSize+10]); err != nil { // sends part 2, then dies
		t.Fatal(err)
	}
	second, err := st.ResumeUpload(ctx, p, state)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := second.Write(body[cut:]); err != nil {
		t.Fatal(err)
	}
	w, err := second.Close()
	want := fmt.Sprintf("%x", sha256.Sum256(body))
	if err != nil || w.SHA256 != want || w.Stored != want || w.Size != int64(len(body)) {
		t.Fatalf("close %+v %v, want sha256 %s", w, err, want)
	}
	if got := getBody(t, env, bucket, "up/resumed"); string(got) != string(body) {
		t.Fatal("the resumed object differs from the bytes written")
	}
	// An upload that no longer exists cannot be resumed.
	if _, err := st.ResumeUpload(ctx, p, state); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("resume of a completed upload: %v", err)
	}
}

// TestCopyLargeCopiesInParts: an object over the one-request copy limit is copied range by
// range, with the metadata, type and cache control given (a multipart copy copies none), and
// only while the source has the ETag named; a refused copy leaves nothing.
func TestCopyLargeCopiesInParts(t *testing.T) {
	env := testenv.Open(t)
	bucket := env.Bucket(t)
	st := storage.New(env.S3)
	ctx := context.Background()
	body := make([]byte, 12<<20+5)
	for i := range body {
		body[i] = byte(i * 13 / 11)
	}
	w, err := st.Put(ctx, storage.Put{Bucket: bucket, Key: "src", Body: body, ContentType: "application/x-ndjson"})
	if err != nil {
		t.Fatal(err)
	}
	defer func(size int64) { storage.CopyPartBytes = size }(storage.CopyPartBytes)
	storage.CopyPartBytes = 5 << 20
	c := storage.Copy{SrcBucket: bucket, SrcKey: "src", IfMatch: w.ETag, DstBucket: bucket, DstKey: "dst",
		Metadata: map[string]string{"sha256": w.SHA256, "sluice-generation": "g"}, ContentType: "application/x-ndjson", CacheControl: "max-age=60"}
	if _, err := st.CopyLarge(ctx, c, int64(len(body))); err != nil {
		t.Fatal(err)
	}
	head, err := st.Head(ctx, bucket, "dst")
	if err != nil || head.SHA256 != w.SHA256 || head.Size != int64(len(body)) || head.ContentType != "application/x-ndjson" || head.Metadata["sluice-generation"] != "g" {
		t.Fatalf("copy: %+v %v", head, err)
	}
	if got := getBody(t, env, bucket, "dst"); string(got) != string(body) {
		t.Fatal("the copy's bytes differ")
	}
	c.DstKey, c.IfMatch = "refused", "0123456789abcdef0123456789abcdef"
	if _, err := st.CopyLarge(ctx, c, int64(len(body))); !errors.Is(err, storage.ErrPreconditionFailed) {
		t.Fatalf("copy of a changed source: %v", err)
	}
	if _, err := st.Head(ctx, bucket, "refused"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a refused copy left an object: %v", err)
	}
}
