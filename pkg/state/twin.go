package state

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// The content index: for each (recipe version, SHA-256 of a source's bytes), one item naming a
// source that rendered those bytes with that recipe, its twin. A source with the same bytes
// publishes copies of the twin's renditions instead of rendering them. Items are keyed
// "#content/<recipe version>/<sha256>" (no record's id starts with "#") and carry no status, so
// the scans of records pass over them.

// twinPrefix starts the id of every content index item.
const twinPrefix = "#content/"

// Twin is what the content index says of some bytes under a recipe: the source that rendered
// them (its bucket and key).
type Twin struct {
	Bucket string `dynamodbav:"twin_bucket"`
	Key    string `dynamodbav:"twin_key"`
}

func twinID(recipeVersion, sha256 string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: twinPrefix + recipeVersion + "/" + sha256}}
}

// TwinOf reads (consistently) the source the content index names for bytes with this SHA-256
// under this recipe; found is false when it names none.
func (s *Store) TwinOf(ctx context.Context, recipeVersion, sha256 string) (t Twin, found bool, err error) {
	out, err := s.api.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.table), Key: twinID(recipeVersion, sha256), ConsistentRead: aws.Bool(true),
		ProjectionExpression: aws.String("twin_bucket, twin_key"),
	})
	if err != nil {
		return Twin{}, false, fmt.Errorf("get twin of %s: %w", sha256, err)
	}
	if out.Item == nil {
		return Twin{}, false, nil
	}
	if err := attributevalue.UnmarshalMap(out.Item, &t); err != nil {
		return Twin{}, false, fmt.Errorf("decode twin of %s: %w", sha256, err)
	}
	return t, true, nil
}

// OfferTwin names t the twin of the bytes with this SHA-256 under this recipe: only if the
// index names none, or names stale (a source whose renditions of them are gone; nil: none
// expected). ErrConflict when another source got there first, which is as good.
func (s *Store) OfferTwin(ctx context.Context, recipeVersion, sha256 string, t Twin, stale *Twin) error {
	item := twinID(recipeVersion, sha256)
	item["twin_bucket"] = &types.AttributeValueMemberS{Value: t.Bucket}
	item["twin_key"] = &types.AttributeValueMemberS{Value: t.Key}
	in := &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: item, ConditionExpression: aws.String("attribute_not_exists(id)")}
	if stale != nil {
		in.ConditionExpression = aws.String("attribute_not_exists(id) OR (twin_bucket = :b AND twin_key = :k)")
		in.ExpressionAttributeValues = map[string]types.AttributeValue{
			":b": &types.AttributeValueMemberS{Value: stale.Bucket}, ":k": &types.AttributeValueMemberS{Value: stale.Key},
		}
	}
	_, err := s.api.PutItem(ctx, in)
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return fmt.Errorf("offer twin of %s: %w", sha256, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("offer twin of %s: %w", sha256, err)
	}
	return nil
}
