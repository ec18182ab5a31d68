package localrun

import (
	"bytes"
	"context"
	"encoding/json"
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
	"github.com/sluice-dev/sluice/pkg/processor"
	"github.com/sluice-dev/sluice/pkg/storage"
	"github.com/sluice-dev/sluice/pkg/trigger"
)

// SeedImage is uploaded for an event's object that is missing from the local staging bucket.
const SeedImage = "testdata/images/elephants.jpg"

// Lambda says how a local run runs the processor.
type Lambda struct {
	// RIE, when set, runs the processor's built bootstrap under this Lambda Runtime Interface
	// Emulator binary, as `sam local invoke` does; empty calls the handler in this process.
	RIE      string
	StackEnv [][2]string // the local stack's endpoints and keys, for the function
	BuildDir string      // where the bootstrap is built
	// Events, when set, is the URL of a PutEvents server the processor announces its outcomes
	// to (on LocalEventBus).
	Events string
}

// handler is the processor as l runs it (stop ends it): the built bootstrap under the emulator,
// its output to log, or proc's handler in this process.
func (l Lambda) handler(ctx context.Context, root string, proc *processor.Processor, log io.Writer) (h Handler, stop func(), err error) {
	if l.RIE == "" {
		if l.Events != "" {
			proc.WithAnnouncer(localBus(l.Events))
		}
		return proc.Handle, func() {}, nil
	}
	bootstrap, err := BuildBootstrap(ctx, root, "functions/processor", l.BuildDir)
	if err != nil {
		return nil, nil, err
	}
	var env map[string]string
	if l.Events != "" {
		env = map[string]string{"EVENT_BUS_NAME": LocalEventBus, "AWS_ENDPOINT_URL_EVENTBRIDGE": l.Events}
	}
	fn, err := ProcessorFunction(root, bootstrap, l.StackEnv, env)
	if err != nil {
		return nil, nil, err
	}
	rie, err := StartRIE(ctx, l.RIE, fn, log)
	if err != nil {
		return nil, nil, err
	}
	return rie.Handle, rie.Close, nil
}

// InvokeOptions says how InvokeFile runs the function.
type InvokeOptions struct {
	Lambda
	Root, EventFile string
	Out             io.Writer // responses
	Log             io.Writer // the function's and the emulator's output, REPORT lines included
}

// InvokeFile is the Docker-free `sam local invoke -e FILE`: it prepares the local buckets and
// table, uploads a sample image for each created object the events name that does not exist
// yet (and deletes each removed one), runs the processor once per payload in the file (one, or
// several one after another, as MinIO writes them) and prints each response: by default the
// built bootstrap under the Runtime Interface Emulator, with the template's timeout, memory size
// and environment.
func InvokeFile(ctx context.Context, s3c *s3.Client, ddb *dynamodb.Client, opt InvokeOptions) error {
	data, err := os.ReadFile(opt.EventFile)
	if err != nil {
		return err
	}
	payloads, err := Payloads(data)
	if err != nil {
		return fmt.Errorf("%s: %w", opt.EventFile, err)
	}
	log := slog.New(slog.NewJSONHandler(opt.Log, nil))
	proc, _, err := prepare(ctx, s3c, ddb, opt.Root, log, metrics.New(opt.Log, "processor"))
	if err != nil {
		return err
	}
	invoke, stop, err := opt.handler(ctx, opt.Root, proc, opt.Log)
	if err != nil {
		return err
	}
	defer stop()
	var errs []error
	for i, payload := range payloads {
		if err := seed(ctx, s3c, filepath.Join(opt.Root, SeedImage), payload); err != nil {
			return fmt.Errorf("%s: payload %d: %w", opt.EventFile, i+1, err)
		}
		resp, invokeErr := Invoke(ctx, invoke, payload)
		if err := PrintJSON(opt.Out, resp); err != nil {
			return err
		}
		if invokeErr != nil {
			errs = append(errs, fmt.Errorf("payload %d: %w", i+1, invokeErr))
		}
	}
	return errors.Join(errs...)
}

// Payloads splits an event file into its JSON documents: one, or several one after another
// (MinIO writes a notification per line). Each must be a shape the handler takes.
func Payloads(data []byte) ([][]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	var out [][]byte
	for {
		var doc json.RawMessage
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("payload %d: not JSON: %w", len(out)+1, err)
		}
		if _, err := trigger.Parse(doc); err != nil {
			return nil, fmt.Errorf("payload %d: %w; the handler takes an S3 event (Records with eventSource aws:s3), an SQS event whose messages hold S3 events, an EventBridge S3 event (source aws.s3, detail-type Object Created or Object Deleted), or s3:TestEvent", len(out)+1, err)
		}
		out = append(out, doc)
	}
	if len(out) == 0 {
		return nil, errors.New("no event in the file")
	}
	return out, nil
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
