// Package trigger turns every payload a user may wire to the processor into object events: an S3
// event notification (direct Lambda trigger or MinIO's webhook, same Records shape), SQS messages
// whose bodies are S3 notifications or EventBridge events, EventBridge "Object Created" /
// "Object Deleted" events, and S3 Batch Operations tasks (schemas 1.0 and 2.0). Keys come out
// URL-decoded; s3:TestEvent is recognised and dropped.
package trigger

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/aws/aws-lambda-go/events"
)

// Kind is the shape of a payload.
type Kind string

// Payload kinds.
const (
	KindS3          Kind = "s3"
	KindSQS         Kind = "sqs"
	KindEventBridge Kind = "eventbridge"
	KindTest        Kind = "s3-test-event"
	KindBatch       Kind = "s3-batch-operations"
)

// Action says what happened to the object.
type Action string

// Actions.
const (
	Created Action = "created"
	Removed Action = "removed"
)

// ObjectEvent is one thing that happened to one object.
type ObjectEvent struct {
	Action    Action
	Name      string // the source's own event name, e.g. "s3:ObjectCreated:Put"
	Bucket    string
	Key       string // decoded
	Size      int64
	ETag      string
	VersionID string
	Sequencer string
	// Redrive asks for the object to be processed again even if its content and recipe already
	// ended (an operator's redrive or reconcile). Never set from a parsed payload.
	Redrive bool
}

// Message is one SQS message: its id (for batch item failures) and the events in its body, or
// the reason its body could not be read.
type Message struct {
	ID     string
	Events []ObjectEvent
	Err    error
	// ReceiptHandle lets the consumer change the message's visibility; Receives is SQS's
	// ApproximateReceiveCount (1 on the first delivery, 0 when absent).
	ReceiptHandle string
	Receives      int
}

// Task is one S3 Batch Operations task: its id (for its result) and the object it names, or why
// it could not be read.
type Task struct {
	ID    string
	Event ObjectEvent
	Err   error
}

// Payload is a parsed invocation.
type Payload struct {
	Kind     Kind
	Events   []ObjectEvent // for KindS3 and KindEventBridge
	Messages []Message     // for KindSQS
	// For KindBatch: the tasks, and what the answer must repeat.
	Tasks         []Task
	SchemaVersion string
	InvocationID  string
}

// ErrUnrecognised is returned for a payload of no known shape.
var ErrUnrecognised = errors.New("unrecognised event payload")

// probe holds just enough of every shape to tell them apart.
type probe struct {
	Records []struct {
		EventSource string `json:"eventSource"`
	} `json:"Records"`
	Event      string `json:"Event"`
	DetailType string `json:"detail-type"`
	Source     string `json:"source"`
	Schema     string `json:"invocationSchemaVersion"`
}

// Parse reads a raw Lambda payload.
func Parse(raw []byte) (Payload, error) {
	var p probe
	if err := json.Unmarshal(raw, &p); err != nil {
		return Payload{}, fmt.Errorf("%w: %v", ErrUnrecognised, err)
	}
	switch {
	case p.Event == "s3:TestEvent":
		return Payload{Kind: KindTest}, nil
	case p.Schema != "":
		return parseBatch(raw, p.Schema)
	case len(p.Records) > 0 && p.Records[0].EventSource == "aws:sqs":
		var ev events.SQSEvent
		if err := json.Unmarshal(raw, &ev); err != nil {
			return Payload{}, fmt.Errorf("%w: SQS event: %v", ErrUnrecognised, err)
		}
		msgs := make([]Message, 0, len(ev.Records))
		for _, m := range ev.Records {
			msg := Message{ID: m.MessageId, ReceiptHandle: m.ReceiptHandle}
			msg.Receives, _ = strconv.Atoi(m.Attributes["ApproximateReceiveCount"])
			inner, err := Parse([]byte(m.Body))
			switch {
			case err != nil:
				msg.Err = err
			case inner.Kind == KindSQS:
				msg.Err = fmt.Errorf("%w: an SQS event inside an SQS message", ErrUnrecognised)
			default:
				msg.Events = inner.Events
			}
			msgs = append(msgs, msg)
		}
		return Payload{Kind: KindSQS, Messages: msgs}, nil
	case len(p.Records) > 0:
		evs, err := parseS3(raw)
		if err != nil {
			return Payload{}, err
		}
		return Payload{Kind: KindS3, Events: evs}, nil
	case p.Source == "aws.s3" && p.DetailType != "":
		ev, ok, err := parseEventBridge(raw, p.DetailType)
		if err != nil {
			return Payload{}, err
		}
		pl := Payload{Kind: KindEventBridge}
		if ok {
			pl.Events = []ObjectEvent{ev}
		}
		return pl, nil
	}
	return Payload{}, fmt.Errorf("%w: no Records, no S3 EventBridge detail-type, no S3 Batch Operations invocationSchemaVersion, not an s3:TestEvent", ErrUnrecognised)
}

// batchEvent holds both S3 Batch Operations schemas: 1.0 names a task's bucket by ARN, 2.0 by
// name. Keys come URL-encoded.
type batchEvent struct {
	InvocationID string `json:"invocationId"`
	Tasks        []struct {
		TaskID      string `json:"taskId"`
		S3Key       string `json:"s3Key"`
		S3VersionID string `json:"s3VersionId"`
		S3BucketARN string `json:"s3BucketArn"`
		S3Bucket    string `json:"s3Bucket"`
	} `json:"tasks"`
}

// parseBatch reads an S3 Batch Operations invocation (schema 1.0 or 2.0). A task that cannot be
// read keeps its id and the reason, so that it is answered, not lost.
func parseBatch(raw []byte, schema string) (Payload, error) {
	if schema != "1.0" && schema != "2.0" {
		return Payload{}, fmt.Errorf("%w: S3 Batch Operations schema %q (1.0 and 2.0 are known)", ErrUnrecognised, schema)
	}
	var ev batchEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		return Payload{}, fmt.Errorf("%w: S3 Batch Operations event: %v", ErrUnrecognised, err)
	}
	pl := Payload{Kind: KindBatch, SchemaVersion: schema, InvocationID: ev.InvocationID}
	for _, t := range ev.Tasks {
		task := Task{ID: t.TaskID}
		bucket := t.S3Bucket
		if bucket == "" {
			bucket = t.S3BucketARN[strings.LastIndexByte(t.S3BucketARN, ':')+1:]
		}
		key, err := url.QueryUnescape(t.S3Key)
		switch {
		case err != nil:
			task.Err = fmt.Errorf("task %s: key %q is not URL-encoded: %v", t.TaskID, t.S3Key, err)
		case bucket == "" || key == "":
			task.Err = fmt.Errorf("task %s names no bucket or key", t.TaskID)
		default:
			task.Event = ObjectEvent{Action: Created, Name: "BatchOperations", Bucket: bucket, Key: key, VersionID: t.S3VersionID}
		}
		pl.Tasks = append(pl.Tasks, task)
	}
	return pl, nil
}

func parseS3(raw []byte) ([]ObjectEvent, error) {
	var ev events.S3Event
	if err := json.Unmarshal(raw, &ev); err != nil {
		return nil, fmt.Errorf("%w: S3 event: %v", ErrUnrecognised, err)
	}
	out := make([]ObjectEvent, 0, len(ev.Records))
	for i, r := range ev.Records {
		name := strings.TrimPrefix(r.EventName, "s3:")
		var action Action
		switch {
		case strings.HasPrefix(name, "ObjectCreated:"):
			action = Created
		case strings.HasPrefix(name, "ObjectRemoved:"):
			action = Removed
		default:
			continue // restore, replication, lifecycle transitions: nothing to do
		}
		// aws-lambda-go fills URLDecodedKey while unmarshalling; decode again only if it could not.
		key := r.S3.Object.URLDecodedKey
		if key == "" && r.S3.Object.Key != "" {
			k, err := url.QueryUnescape(r.S3.Object.Key)
			if err != nil {
				return nil, fmt.Errorf("%w: record %d: key %q is not URL-encoded: %v", ErrUnrecognised, i, r.S3.Object.Key, err)
			}
			key = k
		}
		if r.S3.Bucket.Name == "" || key == "" {
			return nil, fmt.Errorf("%w: record %d has no bucket or key", ErrUnrecognised, i)
		}
		out = append(out, ObjectEvent{
			Action: action, Name: r.EventName, Bucket: r.S3.Bucket.Name, Key: key,
			Size: r.S3.Object.Size, ETag: r.S3.Object.ETag, VersionID: r.S3.Object.VersionID,
			Sequencer: r.S3.Object.Sequencer,
		})
	}
	return out, nil
}

// ebDetail is the detail of an S3 EventBridge event. Keys there are not URL-encoded.
type ebDetail struct {
	Bucket struct {
		Name string `json:"name"`
	} `json:"bucket"`
	Object struct {
		Key       string `json:"key"`
		Size      int64  `json:"size"`
		ETag      string `json:"etag"`
		VersionID string `json:"version-id"`
		Sequencer string `json:"sequencer"`
	} `json:"object"`
	Reason string `json:"reason"`
}

func parseEventBridge(raw []byte, detailType string) (ObjectEvent, bool, error) {
	var action Action
	switch detailType {
	case "Object Created":
		action = Created
	case "Object Deleted":
		action = Removed
	default:
		return ObjectEvent{}, false, nil
	}
	var ev events.EventBridgeEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		return ObjectEvent{}, false, fmt.Errorf("%w: EventBridge event: %v", ErrUnrecognised, err)
	}
	var d ebDetail
	if err := json.Unmarshal(ev.Detail, &d); err != nil {
		return ObjectEvent{}, false, fmt.Errorf("%w: EventBridge detail: %v", ErrUnrecognised, err)
	}
	if d.Bucket.Name == "" || d.Object.Key == "" {
		return ObjectEvent{}, false, fmt.Errorf("%w: EventBridge detail has no bucket or key", ErrUnrecognised)
	}
	return ObjectEvent{
		Action: action, Name: detailType + ":" + d.Reason, Bucket: d.Bucket.Name, Key: d.Object.Key,
		Size: d.Object.Size, ETag: d.Object.ETag, VersionID: d.Object.VersionID, Sequencer: d.Object.Sequencer,
	}, true, nil
}
