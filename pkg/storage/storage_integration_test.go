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
