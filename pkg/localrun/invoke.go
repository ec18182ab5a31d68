package localrun

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sluice-dev/sluice/pkg/metrics"
	"github.com/sluice-dev/sluice/pkg/storage"
	"github.com/sluice-dev/sluice/pkg/trigger"
)

// SeedImage is uploaded for an event's object that is missing from the local staging bucket.
const SeedImage = "testdata/images/elephants.jpg"

// InvokeFile is the Docker-free `sam local invoke -e FILE`: it prepares the local buckets and
// table, uploads a sample image for each created object the event names that does not exist
// yet (and deletes each removed one), runs the processor's handler once on the file and prints
// its response.
func InvokeFile(ctx context.Context, s3c *s3.Client, ddb *dynamodb.Client, root, eventFile string, out io.Writer, log *slog.Logger) error {
	payload, err := os.ReadFile(eventFile)
	if err != nil {
		return err
	}
	proc, _, err := prepare(ctx, s3c, ddb, root, log, metrics.New(os.Stderr, "processor"))
	if err != nil {
		return err
	}
	if err := seed(ctx, s3c, filepath.Join(root, SeedImage), payload); err != nil {
		return err
	}
	resp, invokeErr := Invoke(ctx, proc.Handle, payload)
	if err := PrintJSON(out, resp); err != nil {
		return err
	}
	return invokeErr
}

// seed makes the local staging bucket agree with the payload: it uploads img for every created
// object that is missing, and deletes every object the payload says was removed.
func seed(ctx context.Context, s3c *s3.Client, img string, payload []byte) error {
	p, err := trigger.Parse(payload)
	if err != nil {
		return err
	}
	evs := p.Events
	for _, m := range p.Messages {
		evs = append(evs, m.Events...)
	}
	st := storage.New(s3c)
	for _, ev := range evs {
		if ev.Bucket != StagingBucket {
			continue
		}
		if ev.Action == trigger.Removed {
			if err := st.Delete(ctx, ev.Bucket, ev.Key); err != nil {
				return err
			}
			continue
		}
		if _, err := st.Head(ctx, ev.Bucket, ev.Key); !errors.Is(err, storage.ErrNotFound) {
			continue
		}
		f, err := os.Open(img)
		if err != nil {
			return err
		}
		_, err = s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(ev.Bucket), Key: aws.String(ev.Key), Body: f})
		f.Close()
		if err != nil {
			return fmt.Errorf("seed s3://%s/%s: %w", ev.Bucket, ev.Key, err)
		}
	}
	return nil
}
