package trigger_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/sluice-dev/sluice/pkg/trigger"
)

func load(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "events", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseFixtures(t *testing.T) {
	const tricky = "uploads/summer 2026/a+b ünïcode.jpg"
	cases := []struct {
		file   string
		kind   trigger.Kind
		bucket string
		key    string
	}{
		{"aws-lambda-go-s3-event.json", trigger.KindS3, "sourcebucket", "Happy Face.jpg"},
		{"minio-notification.json", trigger.KindS3, "sluice-staging", tricky},
		{"s3-put.json", trigger.KindS3, "sluice-staging", "uploads/sample.jpg"},
		{"s3-put-tricky-key.json", trigger.KindS3, "sluice-staging", tricky},
		{"eventbridge-object-created.json", trigger.KindEventBridge, "sluice-staging", "uploads/eventbridge/sample.jpg"},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			p, err := trigger.Parse(load(t, c.file))
			if err != nil {
				t.Fatal(err)
			}
			if p.Kind != c.kind || len(p.Events) != 1 {
				t.Fatalf("kind %s with %d events, want %s with 1", p.Kind, len(p.Events), c.kind)
			}
			ev := p.Events[0]
			if ev.Action != trigger.Created || ev.Bucket != c.bucket || ev.Key != c.key {
				t.Fatalf("got %+v, want created %s/%q", ev, c.bucket, c.key)
			}
		})
	}
}

func TestParseSQSBatch(t *testing.T) {
	p, err := trigger.Parse(load(t, "sqs-s3.json"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Kind != trigger.KindSQS || len(p.Messages) != 2 {
		t.Fatalf("kind %s, %d messages", p.Kind, len(p.Messages))
	}
	if m := p.Messages[0]; m.Err != nil || len(m.Events) != 1 || m.Events[0].Key != "uploads/sample.jpg" || m.ID == "" {
		t.Errorf("first message: %+v", m)
	}
	if m := p.Messages[1]; m.Err != nil || len(m.Events) != 0 {
		t.Errorf("second message (an s3:TestEvent) should carry no events: %+v", m)
	}
}

func TestParseTestEventAndGarbage(t *testing.T) {
	p, err := trigger.Parse(load(t, "s3-test-event.json"))
	if err != nil || p.Kind != trigger.KindTest {
		t.Fatalf("s3:TestEvent: kind %s err %v", p.Kind, err)
	}
	for _, raw := range []string{``, `[]`, `{}`, `{"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{}}]}`, `not json`} {
		if _, err := trigger.Parse([]byte(raw)); !errors.Is(err, trigger.ErrUnrecognised) {
			t.Errorf("Parse(%q) err = %v, want ErrUnrecognised", raw, err)
		}
	}
}

func TestParseRemovedAndOtherEvents(t *testing.T) {
	raw := `{"Records":[
	 {"eventSource":"aws:s3","eventName":"ObjectRemoved:Delete","s3":{"bucket":{"name":"b"},"object":{"key":"a%20b","sequencer":"01"}}},
	 {"eventSource":"aws:s3","eventName":"ObjectRestore:Completed","s3":{"bucket":{"name":"b"},"object":{"key":"c"}}},
	 {"eventSource":"aws:s3","eventName":"ObjectCreated:Copy","s3":{"bucket":{"name":"b"},"object":{"key":"d+e"}}}]}`
	p, err := trigger.Parse([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Events) != 2 || p.Events[0].Action != trigger.Removed || p.Events[0].Key != "a b" ||
		p.Events[1].Action != trigger.Created || p.Events[1].Key != "d e" {
		t.Fatalf("events %+v", p.Events)
	}
}

func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("..", "..", "testdata", "events", "*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no event files: %v", err)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		p, err := trigger.Parse(raw)
		if err != nil {
			return
		}
		evs := p.Events
		for _, m := range p.Messages {
			evs = append(evs, m.Events...)
		}
		for _, ev := range evs {
			if ev.Bucket == "" || ev.Key == "" {
				t.Fatalf("parsed an event without bucket or key: %+v", ev)
			}
		}
	})
}

// S3 Batch Operations tasks, schema 1.0 (the bucket as an ARN) and 2.0 (by name): keys come
// URL-decoded; a task whose key cannot be decoded keeps its id and its reason, to be answered;
// an unknown schema is refused.
func TestParseBatchOperations(t *testing.T) {
	v1, err := trigger.Parse(load(t, "s3-batch-operations-1.0.json"))
	if err != nil || v1.Kind != trigger.KindBatch || v1.SchemaVersion != "1.0" || len(v1.Tasks) != 1 {
		t.Fatalf("1.0: %+v %v", v1, err)
	}
	if ev := v1.Tasks[0].Event; ev.Bucket != "sluice-staging" || ev.Key != "uploads/sample.jpg" || v1.Tasks[0].ID != "dGFza2lkZ29lc2hlcmUK" {
		t.Errorf("1.0 task %+v", v1.Tasks[0])
	}
	v2, err := trigger.Parse(load(t, "s3-batch-operations-2.0.json"))
	if err != nil || v2.SchemaVersion != "2.0" || len(v2.Tasks) != 2 || v2.InvocationID == "" {
		t.Fatalf("2.0: %+v %v", v2, err)
	}
	if ev := v2.Tasks[0].Event; ev.Bucket != "sluice-staging" || ev.Key != "uploads/summer 2026/a+b ünïcode.jpg" {
		t.Errorf("2.0 task %+v", v2.Tasks[0])
	}
	bad, err := trigger.Parse([]byte(`{"invocationSchemaVersion":"2.0","invocationId":"i","tasks":[{"taskId":"t","s3Key":"a%zz","s3Bucket":"b"}]}`))
	if err != nil || len(bad.Tasks) != 1 || bad.Tasks[0].Err == nil || bad.Tasks[0].ID != "t" {
		t.Errorf("undecodable key: %+v %v", bad, err)
	}
	if _, err := trigger.Parse([]byte(`{"invocationSchemaVersion":"3.0","tasks":[]}`)); !errors.Is(err, trigger.ErrUnrecognised) {
		t.Errorf("schema 3.0: %v", err)
	}
}
