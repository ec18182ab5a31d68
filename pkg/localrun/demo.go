package localrun

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sluice-dev/sluice/pkg/localstack"
	"github.com/sluice-dev/sluice/pkg/metrics"
	"github.com/sluice-dev/sluice/pkg/processor"
	"github.com/sluice-dev/sluice/pkg/state"
	"github.com/sluice-dev/sluice/pkg/termtext"
)

// Local names, as in testdata/env.json and testdata/events/.
const (
	StagingBucket = "sluice-staging"
	UploadPrefix  = "uploads/"
)

// DemoOptions says where the demo's inputs are, how to reach the stack and how to run the
// processor.
type DemoOptions struct {
	Lambda
	Root      string // repository root
	HubURL    string
	NotifyARN string
	Out       io.Writer
	Log       *slog.Logger // the processor's logs
	Output    io.Writer    // the bootstrap's and the emulator's output, when it runs under the RIE
}

// pipeline wires the local equivalent of the deployed event path: the buckets and table, and the
// staging bucket's notifications (creations and removals under the upload prefix) through the
// hub to a runner of the processor's handler. stop undoes the subscription and stops the runner.
func pipeline(ctx context.Context, s3c *s3.Client, ddb *dynamodb.Client, o DemoOptions) (*Runner, processor.Config, func(), error) {
	proc, cfg, err := prepare(ctx, s3c, ddb, o.Root, o.Log, metrics.New(io.Discard, "processor"))
	if err != nil {
		return nil, cfg, nil, err
	}
	h, stopLambda, err := o.handler(ctx, o.Root, proc, o.Output)
	if err != nil {
		return nil, cfg, nil, err
	}
	runner := NewRunner(h, o.Log, 2)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		stopLambda()
		return nil, cfg, nil, err
	}
	srv := &http.Server{Handler: runner, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	stop := func() {
		_ = localstack.Unsubscribe(context.Background(), o.HubURL, StagingBucket)
		_ = srv.Close()
		runner.Wait()
		stopLambda()
	}
	if err := localstack.Subscribe(ctx, o.HubURL, StagingBucket, "http://"+ln.Addr().String()+"/"); err != nil {
		stop()
		return nil, cfg, nil, err
	}
	events := []string{"s3:ObjectCreated:*", "s3:ObjectRemoved:*"}
	if err := localstack.ConfigureNotifications(ctx, s3c, StagingBucket, o.NotifyARN, events, UploadPrefix); err != nil {
		stop()
		return nil, cfg, nil, err
	}
	return runner, cfg, stop, nil
}

// Serve runs the local pipeline until ctx ends: whatever is uploaded to (or deleted from) the
// staging bucket's upload prefix, with `aws s3 cp` say, is processed as the deployed stack would,
// and the event each outcome would put on EventBridge is printed to o.Out.
func Serve(ctx context.Context, s3c *s3.Client, ddb *dynamodb.Client, o DemoOptions) error {
	url, stopEvents, err := startEventPrinter(o.Out)
	if err != nil {
		return err
	}
	defer stopEvents()
	o.Events = url
	_, cfg, stop, err := pipeline(ctx, s3c, ddb, o)
	if err != nil {
		return err
	}
	defer stop()
	fmt.Fprintf(o.Out, "serving: uploads to s3://%s/%s are processed into s3://%s/%s (state table %s); each outcome's event is printed here; Ctrl-C stops\n",
		StagingBucket, UploadPrefix, cfg.OutputBucket, cfg.OutputPrefix, cfg.StateTable)
	<-ctx.Done()
	return nil
}

// Demo is the main job, locally: the pipeline, every sample file in testdata/images uploaded,
// and a table of each one's outcome once all are terminal.
func Demo(ctx context.Context, s3c *s3.Client, ddb *dynamodb.Client, o DemoOptions) error {
	runner, cfg, stop, err := pipeline(ctx, s3c, ddb, o)
	if err != nil {
		return err
	}
	defer stop()

	samples := filepath.Join(o.Root, "testdata", "images")
	keys, err := uploadTree(ctx, s3c, samples, StagingBucket, UploadPrefix+"demo/")
	if err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "uploaded %d files from testdata/images to s3://%s/%sdemo/; waiting for the processor...\n", len(keys), StagingBucket, UploadPrefix)

	states := state.New(ddb, cfg.StateTable, 0)
	recs, err := waitTerminal(ctx, states, StagingBucket, keys, 3*time.Minute)
	runner.Wait()
	printTable(o.Out, recs, keys)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.Out, `
Results are in the local stack (still running; stop it with make local-down):
  renditions:  aws --endpoint-url %[1]s s3 ls --recursive s3://%[2]s/%[3]s
  quarantine:  aws --endpoint-url %[1]s s3 ls --recursive s3://%[4]s/%[5]s
  state:       aws --endpoint-url %[6]s dynamodb scan --table-name %[7]s
  (env for those commands: set -a; . infra/local/.cache/local.env; set +a)
`, os.Getenv("AWS_ENDPOINT_URL_S3"), cfg.OutputBucket, cfg.OutputPrefix, cfg.QuarantineBucket, cfg.QuarantinePrefix,
		os.Getenv("AWS_ENDPOINT_URL_DYNAMODB"), cfg.StateTable)
	return nil
}

// uploadTree puts every file under dir into bucket under prefix (keeping relative paths).
func uploadTree(ctx context.Context, s3c *s3.Client, dir, bucket, prefix string) ([]string, error) {
	var keys []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		key := prefix + filepath.ToSlash(rel)
		if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: f}); err != nil {
			return fmt.Errorf("upload %s: %w", key, err)
		}
		keys = append(keys, key)
		return nil
	})
	sort.Strings(keys)
	return keys, err
}

// waitTerminal polls the state table until every key is SUCCEEDED or QUARANTINED, or timeout.
func waitTerminal(ctx context.Context, st *state.Store, bucket string, keys []string, timeout time.Duration) (map[string]state.Record, error) {
	recs := map[string]state.Record{}
	deadline := time.Now().Add(timeout)
	for {
		pending := 0
		for _, k := range keys {
			rec, found, err := st.Get(ctx, state.ID(bucket, k))
			if err != nil {
				return recs, err
			}
			if found {
				recs[k] = rec
			}
			if !found || !rec.Finished() {
				pending++
			}
		}
		if pending == 0 {
			return recs, nil
		}
		if time.Now().After(deadline) {
			return recs, fmt.Errorf("%d of %d files did not reach a terminal state within %s", pending, len(keys), timeout)
		}
		select {
		case <-ctx.Done():
			return recs, ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
}

func printTable(w io.Writer, recs map[string]state.Record, keys []string) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE\tSTATUS\tOUTPUTS OR REASON\tTIME")
	for _, k := range keys {
		rec, ok := recs[k]
		if !ok {
			fmt.Fprintf(tw, "%s\t(no record)\t\t\n", termtext.Visible(k))
			continue
		}
		detail := rec.Reason + ": " + rec.Message
		if rec.Status == state.Succeeded {
			var parts []string
			for _, o := range rec.Outputs {
				parts = append(parts, fmt.Sprintf("%s %dx%d %s", o.Name, o.Width, o.Height, o.Format))
			}
			detail = strings.Join(parts, ", ")
		}
		if len(detail) > 90 {
			detail = detail[:87] + "..."
		}
		dur := "-"
		if rec.DurationMS > 0 {
			dur = (time.Duration(rec.DurationMS) * time.Millisecond).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", termtext.Visible(k), rec.Status, termtext.Visible(detail), dur)
	}
	_ = tw.Flush()
}
