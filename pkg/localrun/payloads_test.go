package localrun_test

import (
	"os"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/pkg/localrun"
)

func TestPayloadsOneOrSeveral(t *testing.T) {
	one, err := os.ReadFile("../../testdata/events/s3-put.json")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := localrun.Payloads(one); err != nil || len(got) != 1 {
		t.Fatalf("one event: %d payloads, %v", len(got), err)
	}
	several, err := os.ReadFile("../../testdata/events/minio-notifications.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := localrun.Payloads(several); err != nil || len(got) != 3 {
		t.Fatalf("a MinIO log of three notifications: %d payloads, %v", len(got), err)
	}
	for _, bad := range []string{`{"hello":"world"}`, "", `{"Records":[`} {
		_, err := localrun.Payloads([]byte(bad))
		if err == nil {
			t.Errorf("Payloads(%q): no error", bad)
		} else if bad == `{"hello":"world"}` && !strings.Contains(err.Error(), "an SQS event whose messages hold S3 events") {
			t.Errorf("Payloads(%q): %v; want the shapes the handler takes named", bad, err)
		}
	}
}
