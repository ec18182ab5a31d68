// Package queue is sluice's SQS adapter for operators: it sends S3-shaped event messages to the
// processing queue (a backfill through the deployed processor), and moves dead letters back to
// it (a redrive of the DLQ).
package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/sluice-dev/sluice/pkg/trigger"
)

// sqsAPI is the part of the SQS client the adapter uses.
type sqsAPI interface {
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, optFns ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
	GetQueueAttributes(ctx context.Context, in *sqs.GetQueueAttributesInput, optFns ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
}

// Queue talks to SQS.
type Queue struct{ api sqsAPI }

// New wraps an SQS client.
func New(api sqsAPI) *Queue { return &Queue{api: api} }

// maxBatch is SQS's limit on entries per batch call.
const maxBatch = 10

// S3Message is the body S3 sends to a queue when an object is created: one record, the key
// URL-encoded as S3 encodes it. The processor reads it like a real notification.
func S3Message(ev trigger.ObjectEvent) (string, error) {
	type object struct {
		Key       string `json:"key"`
		Size      int64  `json:"size"`
		ETag      string `json:"eTag,omitempty"`
		VersionID string `json:"versionId,omitempty"`
	}
	rec := map[string]any{
		"eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
		"eventTime": time.Now().UTC().Format("2006-01-02T15:04:05.000Z"),
		"s3": map[string]any{
			"s3SchemaVersion": "1.0", "configurationId": "sluice-backfill",
			"bucket": map[string]any{"name": ev.Bucket, "arn": "arn:aws:s3:::" + ev.Bucket},
			"object": object{Key: url.QueryEscape(ev.Key), Size: ev.Size, ETag: ev.ETag, VersionID: ev.VersionID},
		},
	}
	b, err := json.Marshal(map[string]any{"Records": []any{rec}})
	return string(b), err
}

// Send sends bodies to the queue at url in batches of ten, retrying the entries SQS reports as
// failed (three times); sent is called once per body sent.
func (q *Queue) Send(ctx context.Context, queueURL string, bodies []string, sent func()) error {
	for start := 0; start < len(bodies); start += maxBatch {
		batch := bodies[start:min(start+maxBatch, len(bodies))]
		pending := map[string]string{}
		for i, b := range batch {
			pending[strconv.Itoa(i)] = b
		}
		for try := 0; len(pending) > 0; try++ {
			if try == 3 {
				return fmt.Errorf("send to %s: %d messages still refused after %d tries", queueURL, len(pending), try)
			}
			entries := make([]types.SendMessageBatchRequestEntry, 0, len(pending))
			for id, b := range pending {
				entries = append(entries, types.SendMessageBatchRequestEntry{Id: aws.String(id), MessageBody: aws.String(b)})
			}
			out, err := q.api.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(queueURL), Entries: entries})
			if err != nil {
				return fmt.Errorf("send to %s: %w", queueURL, err)
			}
			for _, ok := range out.Successful {
				if _, was := pending[aws.ToString(ok.Id)]; was {
					delete(pending, aws.ToString(ok.Id))
					if sent != nil {
						sent()
					}
				}
			}
		}
	}
	return nil
}

// Depth is the approximate number of visible messages in the queue.
func (q *Queue) Depth(ctx context.Context, queueURL string) (int64, error) {
	out, err := q.api.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(queueURL), AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages},
	})
	if err != nil {
		return 0, fmt.Errorf("depth of %s: %w", queueURL, err)
	}
	n, err := strconv.ParseInt(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessages)], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("depth of %s: %w", queueURL, err)
	}
	return n, nil
}

// Move receives messages from src and sends each body to dst, deleting it from src only once
// sent (a crash in between sends a message twice, which the processor's claims make harmless),
// at most rate messages per second (0: no limit), until src answers empty twice in a row or ctx
// ends. moved is called once per message moved.
func (q *Queue) Move(ctx context.Context, src, dst string, rate float64, moved func()) error {
	var gap time.Duration
	if rate > 0 {
		gap = time.Duration(float64(time.Second) / rate)
	}
	for empty := 0; empty < 2; {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := int32(maxBatch)
		if gap > time.Second {
			n = 1
		}
		out, err := q.api.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(src), MaxNumberOfMessages: n, WaitTimeSeconds: 1, VisibilityTimeout: 60,
		})
		if err != nil {
			return fmt.Errorf("receive from %s: %w", src, err)
		}
		if len(out.Messages) == 0 {
			empty++
			continue
		}
		empty = 0
		start := time.Now()
		bodies := make([]string, len(out.Messages))
		for i, m := range out.Messages {
			bodies[i] = aws.ToString(m.Body)
		}
		if err := q.Send(ctx, dst, bodies, moved); err != nil {
			return err
		}
		entries := make([]types.DeleteMessageBatchRequestEntry, len(out.Messages))
		for i, m := range out.Messages {
			entries[i] = types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle}
		}
		del, err := q.api.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(src), Entries: entries})
		if err != nil {
			return fmt.Errorf("delete from %s: %w", src, err)
		}
		if len(del.Failed) > 0 {
			return errors.New("delete from " + src + ": " + aws.ToString(del.Failed[0].Message))
		}
		if wait := time.Duration(len(bodies))*gap - time.Since(start); wait > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	return nil
}

// Target is a queue the deployed processor reads: a backfill sends it object events.
type Target struct {
	Queue *Queue
	URL   string
}

// SendEvents sends one S3-shaped message per event.
func (t Target) SendEvents(ctx context.Context, evs []trigger.ObjectEvent, sent func()) error {
	bodies := make([]string, len(evs))
	for i, ev := range evs {
		b, err := S3Message(ev)
		if err != nil {
			return err
		}
		bodies[i] = b
	}
	return t.Queue.Send(ctx, t.URL, bodies, sent)
}
