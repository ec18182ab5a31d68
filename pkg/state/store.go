package state

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	Scan(ctx context.Context, in *dynamodb.ScanInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
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

// TableDefinition is the state table's schema: on-demand, keyed by id, with the SourceIndex, TTL
// on expires_at (enabled separately, by the template or UpdateTimeToLive).
func TableDefinition(name string) *dynamodb.CreateTableInput {
	attr := func(n string) types.AttributeDefinition {
		return types.AttributeDefinition{AttributeName: aws.String(n), AttributeType: types.ScalarAttributeTypeS}
	}
	return &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{attr("id"), attr("bucket"), attr("key")},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: types.KeyTypeHash}},
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{{
			IndexName: aws.String(SourceIndex),
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String("bucket"), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String("key"), KeyType: types.KeyTypeRange},
			},
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeKeysOnly},
		}},
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

// Claim reads the record, lets Decide judge, and for a Claim verdict writes the claimed record
// with a compare-and-swap, re-reading and judging again if another writer got in between.
// It returns the verdict, the record as written (Claim) or as found (otherwise).
func (s *Store) Claim(ctx context.Context, req ClaimRequest, now func() time.Time) (Verdict, Record, error) {
	return s.claim(ctx, ID(req.Bucket, req.Key), func(prev *Record, t time.Time) (Verdict, Record) { return Decide(prev, req, t) }, now)
}

// ClaimRemoval is Claim for a removal: DecideRemove judges, and the claim is a REMOVING record
// written before anything is deleted.
func (s *Store) ClaimRemoval(ctx context.Context, req RemoveRequest, now func() time.Time) (Verdict, Record, error) {
	return s.claim(ctx, ID(req.Bucket, req.Key), func(prev *Record, t time.Time) (Verdict, Record) { return DecideRemove(prev, req, t) }, now)
}

func (s *Store) claim(ctx context.Context, id string, decide func(*Record, time.Time) (Verdict, Record), now func() time.Time) (Verdict, Record, error) {
	for range 5 {
		prev, found, err := s.Get(ctx, id)
		if err != nil {
			return 0, Record{}, err
		}
		var prevp *Record
		if found {
			prevp = &prev
		}
		verdict, next := decide(prevp, now())
		if verdict != Claim && verdict != Exhausted {
			return verdict, prev, nil
		}
		if found {
			next, err = s.Replace(ctx, next, prev.Rev)
		} else {
			next, err = s.Create(ctx, next)
		}
		if errors.Is(err, ErrConflict) {
			continue
		}
		if err != nil {
			return 0, Record{}, err
		}
		return verdict, next, nil
	}
	return Busy, Record{}, nil
}

// Create writes rec only if no record with its id exists; otherwise ErrConflict. It returns
// the record as written.
func (s *Store) Create(ctx context.Context, rec Record) (Record, error) {
	rec.Rev = 1
	return s.put(ctx, rec, condition{expr: "attribute_not_exists(id)"}, ErrConflict)
}

// Replace writes rec only if the stored record still has revision prevRev; otherwise
// ErrConflict. It returns the record as written.
func (s *Store) Replace(ctx context.Context, rec Record, prevRev int64) (Record, error) {
	rec.Rev = prevRev + 1
	return s.put(ctx, rec, condition{expr: "rev = :rev", values: map[string]types.AttributeValue{
		":rev": &types.AttributeValueMemberN{Value: strconv.FormatInt(prevRev, 10)},
	}}, ErrConflict)
}

// Finish writes the outcome of a claim (PROCESSING or REMOVING): rec must carry the claim token
// it was claimed with. It succeeds only while that token still holds the record; otherwise
// ErrLeaseLost. The lease ends; the token stays, naming the generation the record last claimed.
// A DELETED outcome is the tombstone: it lists no outputs and no leftovers.
func (s *Store) Finish(ctx context.Context, rec Record, to Status, reason string, now time.Time) (Record, error) {
	rec.transition(to, rec.LeaseOwner, reason, now)
	rec.LeaseExpires = time.Time{}
	if to == Deleted {
		rec.Outputs, rec.ManifestKey, rec.Abandoned, rec.QuarantineGen = nil, "", nil, ""
	}
	if to != Failed {
		rec.Progress = nil // an outcome: nothing to resume
	}
	if to != Failed && s.ttl > 0 {
		rec.ExpiresAt = now.Add(s.ttl).Unix()
	}
	prevRev := rec.Rev
	rec.Rev = prevRev + 1
	return s.put(ctx, rec, condition{
		expr:  "claim_token = :token AND (#status = :processing OR #status = :removing)",
		names: map[string]string{"#status": "status"},
		values: map[string]types.AttributeValue{
			":token":      &types.AttributeValueMemberS{Value: rec.ClaimToken},
			":processing": &types.AttributeValueMemberS{Value: string(Processing)},
			":removing":   &types.AttributeValueMemberS{Value: string(Removing)},
		},
	}, ErrLeaseLost)
}

// Holds checks, with a consistent read, that the claim rec was written with still holds the
// record and that its lease outlasts until: ErrLeaseLost when another invocation took the object
// over (after this lease expired, or for a newer version), the claim ended, or its lease runs
// out before until. A worker calls it before it commits, with until = now + its commit window
// (and bounds the commit by that window), so a claim that others see lapsed (LeaseLive false)
// has made its last commit, and a stale worker stops without publishing.
func (s *Store) Holds(ctx context.Context, rec Record, until time.Time) error {
	cur, found, err := s.Get(ctx, rec.ID)
	if err != nil {
		return err
	}
	if !found || !cur.HeldBy(rec.ClaimToken) || !cur.LeaseExpires.After(until) {
		return fmt.Errorf("state %s: claim %s: %w", rec.ID, rec.ClaimToken, ErrLeaseLost)
	}
	return nil
}

// MarkAnnounced records that rec's outcome (rec as read or written, with its WriteID) was
// announced downstream: announced = rec.OutcomeID(), only while the record is still that very
// write, else ErrConflict (it changed since: whoever changed it announces its own outcome). It
// changes neither the revision nor the write id, so it races no claim: a claim that read the
// record before it may overwrite it, and the outcome is then announced again, which is allowed
// (at least once, under the same id).
func (s *Store) MarkAnnounced(ctx context.Context, rec Record) error {
	_, err := s.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:           aws.String(s.table),
		Key:                 map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: rec.ID}},
		UpdateExpression:    aws.String("SET announced = :a"),
		ConditionExpression: aws.String("write_id = :w"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":a": &types.AttributeValueMemberS{Value: rec.OutcomeID()},
			":w": &types.AttributeValueMemberS{Value: rec.WriteID},
		},
	})
	var ccf *types.ConditionalCheckFailedException
	switch {
	case errors.As(err, &ccf):
		return fmt.Errorf("mark %s announced: %w", rec.ID, ErrConflict)
	case err != nil:
		return fmt.Errorf("mark %s announced: %w", rec.ID, err)
	}
	return nil
}

// SaveProgress records p as the progress of the claim rec was written with, while that claim
// still holds the record (PROCESSING under its token), else ErrLeaseLost. Like MarkAnnounced it
// changes neither the revision nor the write id; the claim's own Finish writes the record whole,
// so the caller keeps p in rec too.
func (s *Store) SaveProgress(ctx context.Context, rec Record, p Progress) error {
	av, err := attributevalue.MarshalMap(p)
	if err != nil {
		return err
	}
	_, err = s.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                aws.String(s.table),
		Key:                      map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: rec.ID}},
		UpdateExpression:         aws.String("SET progress = :p"),
		ConditionExpression:      aws.String("claim_token = :t AND #status = :processing"),
		ExpressionAttributeNames: map[string]string{"#status": "status"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":p":          &types.AttributeValueMemberM{Value: av},
			":t":          &types.AttributeValueMemberS{Value: rec.ClaimToken},
			":processing": &types.AttributeValueMemberS{Value: string(Processing)},
		},
	})
	var ccf *types.ConditionalCheckFailedException
	switch {
	case errors.As(err, &ccf):
		return fmt.Errorf("state %s: progress of claim %s: %w", rec.ID, rec.ClaimToken, ErrLeaseLost)
	case err != nil:
		return fmt.Errorf("state %s: progress: %w", rec.ID, err)
	}
	return nil
}

// condition is a PutItem condition expression with its names and values.
type condition struct {
	expr   string
	names  map[string]string
	values map[string]types.AttributeValue
}

// put writes rec if cond holds, stamped with a new WriteID, and returns it as written. A failed
// condition becomes onFail, unless a consistent re-read finds this very write: the SDK retried a
// write whose answer was lost, and the retry's condition failed on the write itself.
func (s *Store) put(ctx context.Context, rec Record, cond condition, onFail error) (Record, error) {
	rec.WriteID = newWriteID()
	item, err := attributevalue.MarshalMap(rec)
	if err != nil {
		return Record{}, fmt.Errorf("encode state %s: %w", rec.ID, err)
	}
	in := &dynamodb.PutItemInput{
		TableName: aws.String(s.table), Item: item,
		ConditionExpression:       aws.String(cond.expr),
		ExpressionAttributeNames:  cond.names,
		ExpressionAttributeValues: cond.values,
	}
	_, err = s.api.PutItem(ctx, in)
	var ccf *types.ConditionalCheckFailedException
	switch {
	case err == nil:
		return rec, nil
	case !errors.As(err, &ccf):
		return Record{}, fmt.Errorf("put state %s (%s): %w", rec.ID, rec.Status, err)
	}
	if cur, found, gerr := s.Get(ctx, rec.ID); gerr == nil && found && cur.WriteID == rec.WriteID {
		return rec, nil
	}
	return Record{}, fmt.Errorf("put state %s (%s): %w", rec.ID, rec.Status, onFail)
}

// newWriteID makes a write id; crypto/rand.Read does not fail on supported platforms.
func newWriteID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
