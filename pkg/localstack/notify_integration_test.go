package localstack_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sluice-dev/sluice/pkg/testenv"
)

// MinIO → webhook → hub → this test's listener, and aws-lambda-go decodes the key.
func TestMinioNotificationReachesSubscriber(t *testing.T) {
	env := testenv.Open(t)
	bucket := env.Bucket(t)
	bodies := make(chan []byte, 10)
	env.Notify(t, bucket, []string{"s3:ObjectCreated:*"}, "uploads/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies <- b
	}))

	const key = "uploads/summer 2026/a+b ünïcode.jpg"
	ctx := context.Background()
	// Outside the filter prefix: must not be delivered.
	if _, err := env.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("other/x"), Body: strings.NewReader("x")}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader("hello")}); err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-bodies:
		var ev events.S3Event
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Fatalf("events.S3Event cannot parse MinIO's body: %v\n%s", err, b)
		}
		if len(ev.Records) != 1 {
			t.Fatalf("want 1 record, got %d: %s", len(ev.Records), b)
		}
		r := ev.Records[0]
		if r.EventName != "s3:ObjectCreated:Put" || r.S3.Bucket.Name != bucket {
			t.Errorf("event %q on bucket %q, want s3:ObjectCreated:Put on %q", r.EventName, r.S3.Bucket.Name, bucket)
		}
		if r.S3.Object.URLDecodedKey != key {
			t.Errorf("URLDecodedKey = %q (raw %q), want %q", r.S3.Object.URLDecodedKey, r.S3.Object.Key, key)
		}
		if r.S3.Object.Size != 5 || r.S3.Object.Sequencer == "" {
			t.Errorf("size %d sequencer %q, want 5 and a sequencer", r.S3.Object.Size, r.S3.Object.Sequencer)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no notification within 20s")
	}
	select {
	case b := <-bodies:
		t.Fatalf("an event outside the prefix was delivered: %s", b)
	case <-time.After(500 * time.Millisecond):
	}
}
