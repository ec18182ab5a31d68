package announce

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/sluice-dev/sluice/pkg/failure"
	"github.com/sluice-dev/sluice/pkg/state"
)

// putEventsAPI is what the bus needs of EventBridge.
type putEventsAPI interface {
	PutEvents(ctx context.Context, in *eventbridge.PutEventsInput, optFns ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error)
}

var _ putEventsAPI = (*eventbridge.Client)(nil)

// maxEntries is how many events one PutEvents call takes.
const maxEntries = 10

// tries bounds the calls that retry an announcement's rejected entries (the SDK retries a failed
// call; PutEvents also rejects single entries of a call that succeeded).
const tries = 4

// Bus announces outcomes on an EventBridge bus.
type Bus struct {
	api  putEventsAPI
	name string
	wait *retry.ExponentialJitterBackoff
}

// NewBus announces on the bus name (a name or an ARN; "default" for the account's default bus).
func NewBus(api putEventsAPI, name string) *Bus {
	return &Bus{api: api, name: name, wait: retry.NewExponentialJitterBackoff(time.Second)}
}

// Announce puts one event per record that holds an outcome (others are left out), ten per call.
// Entries that EventBridge rejects are put again, with backoff and jitter, up to a few times;
// what is still rejected then comes back as a transient error naming the first rejection.
func (b *Bus) Announce(ctx context.Context, recs []state.Record) error {
	entries, err := b.entries(recs)
	if err != nil {
		return err
	}
	for batch := range slices.Chunk(entries, maxEntries) {
		if err := b.put(ctx, batch); err != nil {
			return err
		}
	}
	return nil
}

func (b *Bus) entries(recs []state.Record) ([]types.PutEventsRequestEntry, error) {
	var out []types.PutEventsRequestEntry
	for _, rec := range recs {
		d, ok := DetailOf(rec)
		if !ok {
			continue
		}
		body, err := d.Encode()
		if err != nil {
			return nil, err
		}
		out = append(out, types.PutEventsRequestEntry{
			EventBusName: aws.String(b.name), Source: aws.String(Source),
			DetailType: aws.String(DetailType(rec.Status)), Detail: aws.String(body),
			Resources: []string{"arn:aws:s3:::" + rec.Bucket + "/" + rec.Key},
			Time:      aws.Time(rec.UpdatedAt),
		})
	}
	return out, nil
}

// put puts one call's entries, then again those rejected, until none is or the tries end.
func (b *Bus) put(ctx context.Context, entries []types.PutEventsRequestEntry) error {
	for try := 1; ; try++ {
		out, err := b.api.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: entries})
		if err != nil {
			return fmt.Errorf("announce %d events: %w", len(entries), err)
		}
		rejected, why := rejectedOf(entries, out.Entries)
		if len(rejected) == 0 {
			return nil
		}
		if try == tries {
			return failure.Transient(fmt.Errorf("announce: EventBridge rejected %d of %d events %d times: %w", len(rejected), len(entries), tries, why))
		}
		d, _ := b.wait.BackoffDelay(try, nil)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return failure.Transient(fmt.Errorf("announce: %d events rejected: %w", len(rejected), errors.Join(why, ctx.Err())))
		case <-t.C:
		}
		entries = rejected
	}
}

// rejectedOf returns the entries whose results carry an error code (each result answers the
// entry at its index), and the first rejection's code and message.
func rejectedOf(entries []types.PutEventsRequestEntry, results []types.PutEventsResultEntry) ([]types.PutEventsRequestEntry, error) {
	var (
		out   []types.PutEventsRequestEntry
		first error
	)
	for i, e := range entries {
		if i >= len(results) {
			out = append(out, e) // no answer is no acceptance
			continue
		}
		if code := aws.ToString(results[i].ErrorCode); code != "" {
			out = append(out, e)
			if first == nil {
				first = fmt.Errorf("%s: %s", code, aws.ToString(results[i].ErrorMessage))
			}
		}
	}
	if first == nil && len(out) > 0 {
		first = fmt.Errorf("%d entries without an answer", len(out))
	}
	return out, first
}
