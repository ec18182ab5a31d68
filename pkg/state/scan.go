package state

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Read narrows what a Scan or GetMany reads, so an operator command over millions of records
// holds a page at a time and pays for the attributes it needs, not the audit trails.
type Read struct {
	// Fields are the attributes read (their dynamodbav names, as "status", "duration_ms");
	// empty reads whole records. The others are left zero in the records handed back.
	Fields []string
	// Status, when set, hands back only records in that status (a filter: DynamoDB still reads,
	// and bills, every item it scans, but sends only the matching ones).
	Status Status
	// Segments > 1 scans that many segments of the table in parallel (DynamoDB's parallel
	// Scan); a Scan's callback is still never called concurrently.
	Segments int
}

// Scan calls f with every record, page by page (eventually consistent: a record written during
// the scan may be missed or seen in its older form). It stops at f's first error. With
// r.Segments > 1 the segments are read in parallel and f is called by one of them at a time.
func (s *Store) Scan(ctx context.Context, r Read, f func(Record) error) error {
	n := max(r.Segments, 1)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu      sync.Mutex // serialises f
		stopped bool       // f failed: no more calls
		wg      sync.WaitGroup
		errs    = make([]error, n)
	)
	for seg := range n {
		wg.Go(func() {
			errs[seg] = s.scanSegment(ctx, r, seg, n, func(page []Record) error {
				mu.Lock()
				defer mu.Unlock()
				for _, rec := range page {
					if stopped {
						return context.Canceled
					}
					if err := f(rec); err != nil {
						stopped = true
						return err
					}
				}
				return nil
			})
			if errs[seg] != nil {
				cancel() // the other segments stop too
			}
		})
	}
	wg.Wait()
	return firstCause(errs)
}

// firstCause is the error that stopped a parallel scan, not the cancellations it caused.
func firstCause(errs []error) error {
	var canceled error
	for _, err := range errs {
		switch {
		case err == nil:
		case errors.Is(err, context.Canceled):
			canceled = err
		default:
			return err
		}
	}
	return canceled
}

// scanPage is the most items a Scan page returns. DynamoDB's own bound (1 MB read) lets a page
// of small projected items hold thousands of records; each segment holds its page while it waits
// for the callback, so the pages stay small enough that the segments' pages together are a
// fixed, small part of the heap. The read units are the same (DynamoDB bills the bytes read).
const scanPage = 500

// scanSegment reads segment seg of n, handing each page to page.
func (s *Store) scanSegment(ctx context.Context, r Read, seg, n int, page func([]Record) error) error {
	in := &dynamodb.ScanInput{TableName: aws.String(s.table), Limit: aws.Int32(scanPage)}
	if n > 1 {
		in.Segment, in.TotalSegments = aws.Int32(int32(seg)), aws.Int32(int32(n))
	}
	in.ProjectionExpression, in.ExpressionAttributeNames = projection(r.Fields)
	if r.Status != "" {
		if in.ExpressionAttributeNames == nil {
			in.ExpressionAttributeNames = map[string]string{}
		}
		in.ExpressionAttributeNames["#status"] = "status"
		in.FilterExpression = aws.String("#status = :status")
		in.ExpressionAttributeValues = map[string]types.AttributeValue{":status": &types.AttributeValueMemberS{Value: string(r.Status)}}
	}
	for {
		out, err := s.api.Scan(ctx, in)
		if err != nil {
			return fmt.Errorf("scan state: %w", err)
		}
		var recs []Record
		if err := attributevalue.UnmarshalListOfMaps(out.Items, &recs); err != nil {
			return fmt.Errorf("decode state: %w", err)
		}
		out.Items = nil // decoded: not held while the page waits for the callback
		if err := page(recs); err != nil {
			return err
		}
		if in.ExclusiveStartKey = out.LastEvaluatedKey; len(in.ExclusiveStartKey) == 0 {
			return nil
		}
	}
}

// projection is a ProjectionExpression for fields, every name through a placeholder (status and
// key are reserved words); nil for all fields.
func projection(fields []string) (*string, map[string]string) {
	if len(fields) == 0 {
		return nil, nil
	}
	names := make(map[string]string, len(fields))
	refs := make([]string, len(fields))
	for i, f := range fields {
		refs[i] = "#p" + strconv.Itoa(i)
		names[refs[i]] = f
	}
	return aws.String(strings.Join(refs, ", ")), names
}

// MaxBatchGet is the most ids one BatchGetItem reads.
const MaxBatchGet = 100

// GetMany reads the records of ids (repeats allowed) with consistent reads, MaxBatchGet per request, and returns
// those that exist by id. Keys DynamoDB leaves unprocessed (throttling) are asked again with
// backoff (the SDK's, with jitter) until ctx ends. Only r.Fields applies (with "id" always read).
func (s *Store) GetMany(ctx context.Context, ids []string, r Read) (map[string]Record, error) {
	found := make(map[string]Record, len(ids))
	fields := r.Fields
	if len(fields) > 0 && !slices.Contains(fields, "id") {
		fields = append([]string{"id"}, fields...)
	}
	proj, names := projection(fields)
	wait := retry.NewExponentialJitterBackoff(5 * time.Second)
	for chunk := range slices.Chunk(unique(ids), MaxBatchGet) {
		keys := make([]map[string]types.AttributeValue, len(chunk))
		for i, id := range chunk {
			keys[i] = map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: id}}
		}
		req := map[string]types.KeysAndAttributes{s.table: {Keys: keys, ConsistentRead: aws.Bool(true), ProjectionExpression: proj, ExpressionAttributeNames: names}}
		for try := 0; len(req) > 0; try++ {
			if try > 0 {
				d, err := wait.BackoffDelay(try, nil)
				if err == nil {
					err = sleep(ctx, d)
				}
				if err != nil {
					return nil, err
				}
			}
			out, err := s.api.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req})
			if err != nil {
				return nil, fmt.Errorf("batch get state: %w", err)
			}
			var recs []Record
			if err := attributevalue.UnmarshalListOfMaps(out.Responses[s.table], &recs); err != nil {
				return nil, fmt.Errorf("decode state: %w", err)
			}
			for _, rec := range recs {
				found[rec.ID] = rec
			}
			req = maps.Clone(out.UnprocessedKeys)
		}
	}
	return found, nil
}

// unique is ids without repeats (BatchGetItem refuses them), in their first order.
func unique(ids []string) []string {
	seen := make(map[string]bool, len(ids))
	out := ids[:0:0]
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
