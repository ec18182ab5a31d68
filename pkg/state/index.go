package state

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// SourceIndex is the table's global secondary index of records by source: partition key bucket,
// sort key key, keys only. DynamoDB returns a partition's string sort keys in the order of their
// UTF-8 bytes, the order S3 lists keys in, so the reconciler walks a bucket's listing and its
// records side by side, a page of each at a time. Keys only: a record's later writes do not
// change its index entry, so the index costs one write per record created, not per transition.
const SourceIndex = "by_source"

// Keys calls f with the keys of bucket's records under prefix in key order, starting after
// after ("" from the first). The index is eventually consistent: a record created just now may
// be missing, one deleted just now may still be there. It stops at f's first error.
func (s *Store) Keys(ctx context.Context, bucket, prefix, after string, f func(key string) error) error {
	in := &dynamodb.QueryInput{
		TableName: aws.String(s.table), IndexName: aws.String(SourceIndex),
		KeyConditionExpression:   aws.String("#b = :b"),
		ExpressionAttributeNames: map[string]string{"#b": "bucket", "#k": "key"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":b": &types.AttributeValueMemberS{Value: bucket},
		},
		ProjectionExpression: aws.String("#k"),
	}
	if prefix != "" {
		in.KeyConditionExpression = aws.String("#b = :b AND begins_with(#k, :p)")
		in.ExpressionAttributeValues[":p"] = &types.AttributeValueMemberS{Value: prefix}
	}
	if after != "" {
		in.ExclusiveStartKey = map[string]types.AttributeValue{
			"id": &types.AttributeValueMemberS{Value: ID(bucket, after)}, "bucket": &types.AttributeValueMemberS{Value: bucket}, "key": &types.AttributeValueMemberS{Value: after},
		}
	}
	for {
		out, err := s.api.Query(ctx, in)
		if err != nil {
			return fmt.Errorf("query state by source: %w", err)
		}
		for _, item := range out.Items {
			k, ok := item["key"].(*types.AttributeValueMemberS)
			if !ok {
				continue
			}
			if err := f(k.Value); err != nil {
				return err
			}
		}
		if in.ExclusiveStartKey = out.LastEvaluatedKey; len(in.ExclusiveStartKey) == 0 {
			return nil
		}
	}
}

// checkpointPrefix starts the ids of the items that keep operators' cursors. No record's id
// does: bucket names cannot hold '#'. Such items have no status, bucket or key, so they are in
// neither the index nor any status's count.
const checkpointPrefix = "#checkpoint/"

// LoadCheckpoint reads the cursor saved under name into v; found is false when there is none.
func (s *Store) LoadCheckpoint(ctx context.Context, name string, v any) (found bool, err error) {
	out, err := s.api.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.table), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: checkpointPrefix + name}},
	})
	if err != nil {
		return false, fmt.Errorf("load checkpoint %s: %w", name, err)
	}
	c, ok := out.Item["checkpoint"].(*types.AttributeValueMemberS)
	if !ok {
		return false, nil
	}
	if err := json.Unmarshal([]byte(c.Value), v); err != nil {
		return false, fmt.Errorf("checkpoint %s: %w", name, err)
	}
	return true, nil
}

// SaveCheckpoint keeps v (as JSON) under name, replacing what was there.
func (s *Store) SaveCheckpoint(ctx context.Context, name string, v any, now time.Time) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = s.api.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: map[string]types.AttributeValue{
		"id":         &types.AttributeValueMemberS{Value: checkpointPrefix + name},
		"checkpoint": &types.AttributeValueMemberS{Value: string(b)},
		"updated_at": &types.AttributeValueMemberS{Value: now.UTC().Format(time.RFC3339Nano)},
	}})
	if err != nil {
		return fmt.Errorf("save checkpoint %s: %w", name, err)
	}
	return nil
}
