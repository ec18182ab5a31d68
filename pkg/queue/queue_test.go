package queue_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/sluice-dev/sluice/pkg/queue"
	"github.com/sluice-dev/sluice/pkg/testenv"
	"github.com/sluice-dev/sluice/pkg/trigger"
)

// An S3-shaped message reads back, through the processor's own parser, as the object it names.
func TestS3MessageParsesBack(t *testing.T) {
	ev := trigger.ObjectEvent{Bucket: "staging", Key: "uploads/a b+é/ü.jpg", Size: 42, ETag: "abc"}
	body, err := queue.S3Message(ev)
	if err != nil {
		t.Fatal(err)
	}
	p, err := trigger.Parse([]byte(body))
	if err != nil || len(p.Events) != 1 {
		t.Fatalf("parse: %+v %v", p, err)
	}
	got := p.Events[0]
	if got.Action != trigger.Created || got.Bucket != ev.Bucket || got.Key != ev.Key || got.Size != 42 || got.ETag != "abc" {
		t.Fatalf("parsed %+v, want %+v", got, ev)
	}
}

// Send batches by ten; Move empties a dead-letter queue into the main one, once per message.
func TestSendAndMove(t *testing.T) {
	fake := testenv.NewSQS(t)
	q := queue.New(fake.Client())
	main, dlq := fake.Queue("main"), fake.Queue("dlq")
	var bodies []string
	for i := range 25 {
		bodies = append(bodies, fmt.Sprint("body-", i))
	}
	sent := 0
	if err := q.Send(context.Background(), main, bodies, func() { sent++ }); err != nil || sent != 25 || len(fake.Bodies(main)) != 25 {
		t.Fatalf("send: %v, %d callbacks, %d in the queue", err, sent, len(fake.Bodies(main)))
	}
	fake.Put(dlq, "dead-1", "dead-2", "dead-3", "dead-4", "dead-5", "dead-6", "dead-7", "dead-8", "dead-9", "dead-10", "dead-11", "dead-12")
	if n, err := q.Depth(context.Background(), dlq); err != nil || n != 12 {
		t.Fatalf("depth %d %v", n, err)
	}
	moved := 0
	if err := q.Move(context.Background(), dlq, main, 0, func() { moved++ }); err != nil {
		t.Fatal(err)
	}
	if moved != 12 || len(fake.Bodies(dlq)) != 0 || len(fake.Bodies(main)) != 37 {
		t.Fatalf("moved %d; dlq holds %d, main %d", moved, len(fake.Bodies(dlq)), len(fake.Bodies(main)))
	}
}
