package processor_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"reflect"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/sluice-dev/sluice/pkg/processor"
	"github.com/sluice-dev/sluice/pkg/state"
	"github.com/sluice-dev/sluice/pkg/trigger"
)

// errorType is what Lambda reports as an invocation error's errorType (aws-lambda-go names the
// error's type, through a pointer).
func errorType(err error) string {
	t := reflect.TypeOf(err)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Name()
}

// The handler's errors say what failed in Lambda's errorType: a payload of no known shape, or
// events to retry (not joinError or wrapError).
func TestHandlerErrorsAreNamedTypes(t *testing.T) {
	r := newRig(t, nil)
	_, err := r.proc.Handle(context.Background(), json.RawMessage(`{"hello":"world"}`))
	var bad *processor.UnrecognisedPayloadError
	if !errors.As(err, &bad) || errorType(err) != "UnrecognisedPayloadError" || !errors.Is(err, trigger.ErrUnrecognised) {
		t.Errorf("unknown payload: errorType %q (%v)", errorType(err), err)
	}

	const key = "uploads/held.jpg"
	r.upload(t, key, grayJPEG(t, 300, 200), nil)
	if _, _, err := r.states.Claim(context.Background(), state.ClaimRequest{
		Bucket: r.staging, Key: key, ObjectVersion: "etag:other", RecipeVersion: "r", RequestID: "req-other",
		Token: "tok", LeaseUntil: time.Now().Add(time.Minute), MaxAttempts: 5,
	}, time.Now); err != nil {
		t.Fatal(err)
	}
	_, err = r.proc.Handle(context.Background(), json.RawMessage(s3Body(r.staging, key)))
	var failed *processor.EventsFailedError
	if !errors.As(err, &failed) || errorType(err) != "EventsFailedError" || len(failed.Failed) != 1 || failed.Failed[0].Key != key {
		t.Errorf("a busy event: errorType %q (%v)", errorType(err), err)
	}
}

// An S3 Batch Operations invocation gets one answer per task, in its schema and with its id: a
// published file Succeeded with its manifest key, a bad one Succeeded as quarantined with its
// reason, a busy one TemporaryFailure (Batch Operations retries it), a gone one and an unreadable
// task PermanentFailure.
func TestS3BatchOperationsAnswersEachTask(t *testing.T) {
	r := newRig(t, nil)
	r.upload(t, "uploads/good.jpg", grayJPEG(t, 300, 200), nil)
	r.upload(t, "uploads/bad.jpg", []byte("not an image"), nil)
	r.upload(t, "uploads/busy.jpg", grayJPEG(t, 300, 200), nil)
	r.holdClaim(t, "uploads/busy.jpg")
	task := func(id, key string) map[string]any {
		return map[string]any{"taskId": id, "s3Key": url.QueryEscape(key), "s3BucketArn": "arn:aws:s3:::" + r.staging}
	}
	raw, _ := json.Marshal(map[string]any{"invocationSchemaVersion": "1.0", "invocationId": "inv-1", "job": map[string]any{"id": "job"},
		"tasks": []any{task("good", "uploads/good.jpg"), task("bad", "uploads/bad.jpg"), task("busy", "uploads/busy.jpg"),
			task("gone", "uploads/gone.jpg"), map[string]any{"taskId": "garbled", "s3Key": "%zz", "s3BucketArn": "arn:aws:s3:::" + r.staging}}})
	out, err := r.proc.Handle(context.Background(), raw)
	if err != nil {
		t.Fatal(err)
	}
	resp := out.(events.S3BatchJobResponse)
	if resp.InvocationSchemaVersion != "1.0" || resp.InvocationID != "inv-1" || resp.TreatMissingKeysAs != "PermanentFailure" {
		t.Errorf("answer %+v", resp)
	}
	want := map[string][2]string{
		"good":    {"Succeeded", r.proc.Keys().Manifest("uploads/good.jpg")},
		"bad":     {"Succeeded", "quarantined:unsupported_type"},
		"busy":    {"TemporaryFailure", ""},
		"gone":    {"PermanentFailure", "the object no longer exists"},
		"garbled": {"PermanentFailure", ""},
	}
	for _, res := range resp.Results {
		w := want[res.TaskID]
		if res.ResultCode != w[0] || (w[1] != "" && res.ResultString != w[1]) || res.ResultString == "" {
			t.Errorf("task %s: %s %q, want %s %q", res.TaskID, res.ResultCode, res.ResultString, w[0], w[1])
		}
		delete(want, res.TaskID)
	}
	if len(want) != 0 {
		t.Errorf("tasks not answered: %v", want)
	}
}
