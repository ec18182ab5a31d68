package processor_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

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
