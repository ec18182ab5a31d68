package processor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

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
	payload, err := trigger.Parse(raw)
	if err != nil {
		p.log.Error("unrecognised payload", "request_id", requestID, "err", err, "bytes", len(raw))
		return nil, err
	}
	switch payload.Kind {
	case trigger.KindTest:
		p.log.Info("s3:TestEvent ignored", "request_id", requestID)
		return Response{Kind: payload.Kind}, nil
	case trigger.KindSQS:
		resp := events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{}}
		for _, msg := range payload.Messages {
			if msg.Err != nil {
				p.log.Error("SQS message body is not an S3 event; reported as failed so it reaches the DLQ",
					"request_id", requestID, "message_id", msg.ID, "err", msg.Err)
				resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: msg.ID})
				continue
			}
			for _, ev := range msg.Events {
				if res := p.Process(ctx, requestID, ev); res.Err != nil {
					resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: msg.ID})
					break
				}
			}
		}
		return resp, nil
	}
	resp := Response{Kind: payload.Kind, Results: make([]Result, 0, len(payload.Events))}
	var errs []error
	for _, ev := range payload.Events {
		res := p.Process(ctx, requestID, ev)
		resp.Results = append(resp.Results, res)
		if res.Err != nil {
			errs = append(errs, fmt.Errorf("s3://%s/%s: %w", ev.Bucket, ev.Key, res.Err))
		}
	}
	return resp, errors.Join(errs...)
}
