package state

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Sentinels, translated from ConditionalCheckFailedException at this adapter.
var (
	// ErrConflict: the record changed since it was read (or appeared, for a create).
	ErrConflict = errors.New("state record changed concurrently")
	// ErrLeaseLost: the claim token is no longer the record's; another invocation took over.
	ErrLeaseLost = errors.New("lease lost: another invocation owns the record")
)

// dynamoAPI is the part of the DynamoDB client the store uses.
type dynamoAPI interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	Scan(ctx context.Context, in *dynamodb.ScanInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
}

// Store reads and conditionally writes state records.
type Store struct {
	api   dynamoAPI
	table string
	ttl   time.Duration // how long terminal records live; 0 keeps them
}

// New returns a store on table. ttl > 0 sets expires_at on terminal records.
func New(api dynamoAPI, table string, ttl time.Duration) *Store {
	return &Store{api: api, table: table, ttl: ttl}
}

// TableDefinition is the state table's schema: on-demand, keyed by id, TTL on expires_at
// (enabled separately, by the template or UpdateTimeToLive).
func TableDefinition(name string) *dynamodb.CreateTableInput {
	return &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: types.KeyTypeHash}},
	}
}

// Get reads a record with a consistent read; found is false when there is none.
func (s *Store) Get(ctx context.Context, id string) (rec Record, found bool, err error) {
	out, err := s.api.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.table), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: id}},
	})
	if err != nil {
		return Record{}, false, fmt.Errorf("get state %s: %w", id, err)
	}
	if out.Item == nil {
		return Record{}, false, nil
	}
	if err := attributevalue.UnmarshalMap(out.Item, &rec); err != nil {
		return Record{}, false, fmt.Errorf("decode state %s: %w", id, err)
	}
	return rec, true, nil
}

// Scan calls f with every record, page by page (eventually consistent: a record written during
// the scan may be missed or seen in its older form). It stops at f's first error.
func (s *Store) Scan(ctx context.Context, f func(Record) error) error {
	var start map[string]types.AttributeValue
	for {
		out, err := s.api.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(s.table), ExclusiveStartKey: start})
		if err != nil {
			return fmt.Errorf("scan state: %w", err)
		}
		var page []Record
		if err := attributevalue.UnmarshalListOfMaps(out.Items, &page); err != nil {
			return fmt.Errorf("decode state: %w", err)
		}
		for _, rec := range page {
			if err := f(rec); err != nil {
				return err
			}
		}
		if start = out.LastEvaluatedKey; len(start) == 0 {
			return nil
		}
	}
}

// Create writes rec only if no record with its id exists; otherwise ErrConflict.
func (s *Store) Create(ctx context.Context, rec Record) error {
	rec.Rev = 1
	return s.put(ctx, rec, condition{expr: "attribute_not_exists(id)"}, ErrConflict)
}

// Replace writes rec only if the stored record still has revision prevRev; otherwise ErrConflict.
func (s *Store) Replace(ctx context.Context, rec Record, prevRev int64) error {
	rec.Rev = prevRev + 1
	return s.put(ctx, rec, condition{expr: "rev = :rev", values: map[string]types.AttributeValue{
		":rev": &types.AttributeValueMemberN{Value: strconv.FormatInt(prevRev, 10)},
	}}, ErrConflict)
}

// Claim reads the record, lets Decide judge, and for a Claim verdict writes the claimed record
// with a compare-and-swap, re-reading and judging again if another writer got in between.
// It returns the verdict, the record as written (Claim) or as found (otherwise).
func (s *Store) Claim(ctx context.Context, req ClaimRequest, now func() time.Time) (Verdict, Record, error) {
	id := ID(req.Bucket, req.Key)
	for range 5 {
		prev, found, err := s.Get(ctx, id)
		if err != nil {
			return 0, Record{}, err
		}
		var prevp *Record
		if found {
			prevp = &prev
		}
		verdict, next := Decide(prevp, req, now())
		if verdict != Claim {
			return verdict, prev, nil
		}
		if found {
			err = s.Replace(ctx, next, prev.Rev)
		} else {
			err = s.Create(ctx, next)
		}
		if errors.Is(err, ErrConflict) {
			continue
		}
		if err != nil {
			return 0, Record{}, err
		}
		next.Rev = prev.Rev + 1
		return Claim, next, nil
	}
	return Busy, Record{}, nil
}

// Finish writes the outcome of a claim: rec must carry the claim token it was claimed with.
// It succeeds only while that token is still the record's and the record is PROCESSING;
// otherwise ErrLeaseLost. The lease is cleared.
func (s *Store) Finish(ctx context.Context, rec Record, to Status, reason string, now time.Time) (Record, error) {
	token := rec.ClaimToken
	prevRev := rec.Rev
	rec.transition(to, rec.LeaseOwner, reason, now)
	rec.ClaimToken, rec.LeaseExpires = "", time.Time{}
	if to != Failed && s.ttl > 0 {
		rec.ExpiresAt = now.Add(s.ttl).Unix()
	}
	rec.Rev = prevRev + 1
	err := s.put(ctx, rec, condition{
		expr:  "claim_token = :token AND #status = :processing",
		names: map[string]string{"#status": "status"},
		values: map[string]types.AttributeValue{
			":token":      &types.AttributeValueMemberS{Value: token},
			":processing": &types.AttributeValueMemberS{Value: string(Processing)},
		},
	}, ErrLeaseLost)
	return rec, err
}

// Holds checks, with a consistent read, that the claim rec was written with is still the
// record's: ErrLeaseLost when another invocation took the object over (after this lease
// expired, or for a newer version) or the record left PROCESSING. A worker calls it before
// each step that makes something visible, so a stale worker stops without publishing.
func (s *Store) Holds(ctx context.Context, rec Record) error {
	cur, found, err := s.Get(ctx, rec.ID)
	if err != nil {
		return err
	}
	if !found || cur.Status != Processing || cur.ClaimToken != rec.ClaimToken {
		return fmt.Errorf("state %s: claim %s: %w", rec.ID, rec.ClaimToken, ErrLeaseLost)
	}
	return nil
}

// Terminate moves an unclaimed record (for example one past its attempt limit) to a terminal
// status, conditional on its revision.
func (s *Store) Terminate(ctx context.Context, rec Record, to Status, requestID, reason, message string, now time.Time) (Record, error) {
	prevRev := rec.Rev
	rec.transition(to, requestID, reason, now)
	rec.Reason, rec.Message = reason, message
	rec.ClaimToken, rec.LeaseOwner, rec.LeaseExpires = "", "", time.Time{}
	if s.ttl > 0 {
		rec.ExpiresAt = now.Add(s.ttl).Unix()
	}
	return rec, s.Replace(ctx, rec, prevRev)
}

// Bury writes the tombstone from DecideRemove once the caller has removed the source's outputs
// and abandoned temp keys (it clears them from the record), conditional on prev's revision, or
// on there being no record when prev is nil: ErrConflict when another writer got in between.
func (s *Store) Bury(ctx context.Context, tomb Record, prev *Record) (Record, error) {
	tomb.Outputs, tomb.ManifestKey, tomb.Abandoned = nil, "", nil
	if s.ttl > 0 {
		tomb.ExpiresAt = tomb.UpdatedAt.Add(s.ttl).Unix()
	}
	if prev == nil {
		tomb.Rev = 1
		return tomb, s.Create(ctx, tomb)
	}
	tomb.Rev = prev.Rev + 1
	return tomb, s.Replace(ctx, tomb, prev.Rev)
}

// condition is a PutItem condition expression with its names and values.
type condition struct {
	expr   string
	names  map[string]string
	values map[string]types.AttributeValue
}

// put writes rec if cond holds; a failed condition becomes onFail.
func (s *Store) put(ctx context.Context, rec Record, cond condition, onFail error) error {
	item, err := attributevalue.MarshalMap(rec)
	if err != nil {
		return fmt.Errorf("encode state %s: %w", rec.ID, err)
	}
	in := &dynamodb.PutItemInput{
		TableName: aws.String(s.table), Item: item,
		ConditionExpression:       aws.String(cond.expr),
		ExpressionAttributeNames:  cond.names,
		ExpressionAttributeValues: cond.values,
	}
	if _, err := s.api.PutItem(ctx, in); err != nil {
		var ccf *types.ConditionalCheckFailedException
		if errors.As(err, &ccf) {
			return fmt.Errorf("put state %s (%s): %w", rec.ID, rec.Status, onFail)
		}
		return fmt.Errorf("put state %s (%s): %w", rec.ID, rec.Status, err)
	}
	return nil
}
