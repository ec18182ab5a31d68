package processor

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"go.opentelemetry.io/otel/trace"

	"github.com/sluice-dev/sluice/pkg/tracing"
	"github.com/sluice-dev/sluice/pkg/trigger"
)

// Response is what the handler returns for a direct S3 or EventBridge invocation (Lambda
// ignores it for asynchronous invokes; `invoke` prints it).
type Response struct {
	Kind    trigger.Kind `json:"kind"`
	Results []Result     `json:"results"`
}

// Handle is the Lambda entry point for every supported payload shape. For SQS it answers with
// batch item failures naming only the messages that failed transiently (or could not be read,
// so that they reach the DLQ instead of vanishing); for the other shapes a transient failure of
// any record fails the invocation so that Lambda retries it, and records already done come back
// as duplicates.
func (p *Processor) Handle(ctx context.Context, raw json.RawMessage) (any, error) {
	requestID := "local"
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		requestID = lc.AwsRequestID
	}
	ctx = tracing.Invocation(ctx, tracing.LambdaHeader(ctx))
	log := p.log.With("request_id", requestID)
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		log = log.With("trace_id", tracing.XRayTraceID(sc.TraceID()))
	}
	payload, err := trigger.Parse(raw)
	if err != nil {
		log.Error("unrecognised payload", "err", err, "bytes", len(raw))
		return nil, &UnrecognisedPayloadError{Err: err}
	}
	switch payload.Kind {
	case trigger.KindTest:
		log.Info("s3:TestEvent ignored")
		return Response{Kind: payload.Kind}, nil
	case trigger.KindSQS:
		return p.handleSQS(ctx, requestID, log, payload.Messages), nil
	case trigger.KindBatch:
		return p.handleBatch(ctx, requestID, payload), nil
	}
	resp := Response{Kind: payload.Kind, Results: make([]Result, 0, len(payload.Events))}
	failed := &EventsFailedError{}
	for _, ev := range payload.Events {
		res := p.Process(ctx, requestID, ev)
		resp.Results = append(resp.Results, res)
		if res.Err != nil {
			failed.Failed = append(failed.Failed, res)
		}
	}
	if len(failed.Failed) > 0 {
		return resp, failed
	}
	return resp, nil
}

// The handler's errors are named types: Lambda reports an error's type name as its errorType,
// so an alarm or a log query can tell a bad payload from events to retry.

// UnrecognisedPayloadError: the invocation's payload is no shape the handler knows (S3, SQS,
// EventBridge, S3 Batch Operations, s3:TestEvent). Retrying cannot help.
type UnrecognisedPayloadError struct{ Err error }

func (e *UnrecognisedPayloadError) Error() string { return "unrecognised payload: " + e.Err.Error() }
func (e *UnrecognisedPayloadError) Unwrap() error { return e.Err }

// EventsFailedError: events of a direct S3 or EventBridge invocation failed transiently; Lambda
// retries the invocation, and the events already done come back as duplicates.
type EventsFailedError struct{ Failed []Result }

func (e *EventsFailedError) Error() string {
	parts := make([]string, len(e.Failed))
	for i, r := range e.Failed {
		parts[i] = fmt.Sprintf("s3://%s/%s: %v", r.Bucket, r.Key, r.Err)
	}
	return fmt.Sprintf("%d of the invocation's events failed and will be retried: %s", len(e.Failed), strings.Join(parts, "; "))
}

func (e *EventsFailedError) Unwrap() []error {
	errs := make([]error, len(e.Failed))
	for i, r := range e.Failed {
		errs[i] = r.Err
	}
	return errs
}

// handleSQS processes a batch of SQS messages and names the ones to retry. Messages delivered for
// the first time go first and redelivered ones last: a message that crashed the process (out of
// memory, the timeout) comes back redelivered, and behind the others it takes fewer innocent
// batch-mates down with it. A message that found its object claimed by another worker is made
// visible again after a short, jittered delay (cfg.QueueURL), not after the whole timeout.
func (p *Processor) handleSQS(ctx context.Context, requestID string, log *slog.Logger, msgs []trigger.Message) events.SQSEventResponse {
	resp := events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{}}
	order := slices.Clone(msgs)
	slices.SortStableFunc(order, func(a, b trigger.Message) int { return cmp.Compare(min(a.Receives, 2), min(b.Receives, 2)) })
	for _, msg := range order {
		if msg.Err != nil {
			log.Error("SQS message body is not an S3 event; reported as failed so it reaches the DLQ",
				"message_id", msg.ID, "err", msg.Err)
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: msg.ID})
			continue
		}
		for _, ev := range msg.Events {
			res := p.Process(ctx, requestID, ev)
			if res.Err == nil {
				continue
			}
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: msg.ID})
			if res.RetryIn > 0 {
				p.retryIn(ctx, log, msg, res.RetryIn)
			}
			break
		}
	}
	return resp
}

// retryIn makes msg visible again after d (it is reported as failed); without a queue, or if
// SQS refuses, the queue's visibility timeout applies.
func (p *Processor) retryIn(ctx context.Context, log *slog.Logger, msg trigger.Message, d time.Duration) {
	if p.queue == nil || p.cfg.QueueURL == "" || msg.ReceiptHandle == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if _, err := p.queue.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl: aws.String(p.cfg.QueueURL), ReceiptHandle: aws.String(msg.ReceiptHandle), VisibilityTimeout: int32(d.Seconds()),
	}); err != nil {
		log.Warn("message visibility not shortened; it waits out the queue's timeout", "message_id", msg.ID, "err", err)
	}
}

// S3 Batch Operations result codes.
const (
	batchSucceeded = "Succeeded"
	batchRetry     = "TemporaryFailure"
	batchFailed    = "PermanentFailure"
)

// maxBatchResult bounds a task's result string (the job's completion report keeps it).
const maxBatchResult = 1024

// handleBatch runs each S3 Batch Operations task through the same path as any event and
// answers it: Succeeded with the manifest key, "duplicate", "quarantined:<reason>", "removed"
// or why it was skipped; TemporaryFailure for what a retry may cure (a transient fault, another
// worker's claim, the deadline), which Batch Operations retries; PermanentFailure for an object
// that is gone or a task that cannot be read.
func (p *Processor) handleBatch(ctx context.Context, requestID string, pl trigger.Payload) events.S3BatchJobResponse {
	resp := events.S3BatchJobResponse{
		InvocationSchemaVersion: pl.SchemaVersion, InvocationID: pl.InvocationID, TreatMissingKeysAs: batchFailed,
		Results: make([]events.S3BatchJobResult, 0, len(pl.Tasks)),
	}
	for _, t := range pl.Tasks {
		code, text := batchFailed, ""
		if t.Err != nil {
			text = t.Err.Error()
		} else {
			code, text = batchResult(p.Process(ctx, requestID, t.Event))
		}
		if len(text) > maxBatchResult {
			text = text[:maxBatchResult]
		}
		resp.Results = append(resp.Results, events.S3BatchJobResult{TaskID: t.ID, ResultCode: code, ResultString: text})
	}
	return resp
}

// batchResult is a task's result code and string for an event's result.
func batchResult(res Result) (code, text string) {
	switch res.Outcome {
	case Succeeded:
		return batchSucceeded, res.Manifest
	case Duplicate:
		return batchSucceeded, "duplicate"
	case Quarantined:
		return batchSucceeded, "quarantined:" + res.Reason
	case Removed:
		return batchSucceeded, "removed"
	case Failed:
		return batchRetry, res.Err.Error()
	case Skipped, Stale:
		if res.Detail == objectGone {
			return batchFailed, res.Detail
		}
	}
	return batchSucceeded, string(res.Outcome) + ": " + res.Detail
}
