package localstack

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// notificationPutter is the one S3 call ConfigureNotifications needs.
type notificationPutter interface {
	PutBucketNotificationConfiguration(ctx context.Context, in *s3.PutBucketNotificationConfigurationInput, optFns ...func(*s3.Options)) (*s3.PutBucketNotificationConfigurationOutput, error)
}

// ConfigureNotifications points bucket's notifications for events (optionally only for keys
// under prefix) at MinIO's webhook target arn, which delivers them to the hub.
func ConfigureNotifications(ctx context.Context, client notificationPutter, bucket, arn string, events []string, prefix string) error {
	qc := s3types.QueueConfiguration{QueueArn: aws.String(arn)}
	for _, e := range events {
		qc.Events = append(qc.Events, s3types.Event(e))
	}
	if prefix != "" {
		qc.Filter = &s3types.NotificationConfigurationFilter{Key: &s3types.S3KeyFilter{
			FilterRules: []s3types.FilterRule{{Name: s3types.FilterRuleNamePrefix, Value: aws.String(prefix)}},
		}}
	}
	_, err := client.PutBucketNotificationConfiguration(ctx, &s3.PutBucketNotificationConfigurationInput{
		Bucket:                    aws.String(bucket),
		NotificationConfiguration: &s3types.NotificationConfiguration{QueueConfigurations: []s3types.QueueConfiguration{qc}},
	})
	if err != nil {
		return fmt.Errorf("put notification configuration on %s (target %s): %w", bucket, arn, err)
	}
	return nil
}
