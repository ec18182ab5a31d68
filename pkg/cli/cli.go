// Package cli is the operator command `sluice` (its main is infra/sluice): backfill, status,
// reconcile, redrive and report against a deployment or the local stack, and the local stack
// itself (local up|down|status|exec|hub, invoke, demo). It reads the same configuration as the
// Lambda (STATE_TABLE, OUTPUT_BUCKET, QUARANTINE_BUCKET, RECIPE_JSON, limits) from the
// environment, with flags on top, and the standard AWS credential chain.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3control"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/pkg/announce"
	"github.com/sluice-dev/sluice/pkg/awsclient"
	"github.com/sluice-dev/sluice/pkg/localrun"
	"github.com/sluice-dev/sluice/pkg/localstack"
	"github.com/sluice-dev/sluice/pkg/metrics"
	"github.com/sluice-dev/sluice/pkg/ops"
	"github.com/sluice-dev/sluice/pkg/processor"
	"github.com/sluice-dev/sluice/pkg/queue"
	"github.com/sluice-dev/sluice/pkg/state"
	"github.com/sluice-dev/sluice/pkg/storage"
)

// ExitError carries a child's exit status (local exec) without printing it again.
type ExitError int

func (e ExitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// IO is where the commands read and write; a terminal gets a live progress bar.
type IO struct {
	Out, Err io.Writer
	Terminal bool
}

// target is the deployment the operator commands act on.
type target struct {
	local                     bool
	staging, prefix           string
	table, output, quarantine string
}

// NewRoot builds the command tree.
func NewRoot(stdio IO) *cobra.Command {
	var tg target
	root := &cobra.Command{
		Use:   "sluice",
		Short: "Operate sluice: backfill, status, reconcile, redrive, report, replay, canary, events; run the local stack",
		Long: `sluice operates a sluice deployment (or the local stack, with --local).

It reads the processor's configuration from the environment, as the Lambda does (STATE_TABLE,
OUTPUT_BUCKET, QUARANTINE_BUCKET, RECIPE_JSON, MAX_BYTES, MAX_PIXELS, ...), with the flags below on
top, and uses the standard AWS credential chain. The state table is every command's checkpoint:
stop one with Ctrl-C (what was started finishes) and run it again to resume.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdio.Out)
	root.SetErr(stdio.Err)
	pf := root.PersistentFlags()
	pf.BoolVar(&tg.local, "local", false, "act on the local stack (its endpoints, and the demo's buckets and table)")
	pf.StringVar(&tg.staging, "staging-bucket", os.Getenv("STAGING_BUCKET"), "the upload bucket (env STAGING_BUCKET)")
	pf.StringVar(&tg.prefix, "upload-prefix", envOr("UPLOAD_PREFIX", "uploads/"), "where uploads go in the staging bucket (env UPLOAD_PREFIX)")
	pf.StringVar(&tg.table, "table", os.Getenv("STATE_TABLE"), "the state table (env STATE_TABLE)")
	pf.StringVar(&tg.output, "output-bucket", os.Getenv("OUTPUT_BUCKET"), "the output bucket (env OUTPUT_BUCKET)")
	pf.StringVar(&tg.quarantine, "quarantine-bucket", os.Getenv("QUARANTINE_BUCKET"), "the quarantine bucket (env QUARANTINE_BUCKET)")

	root.AddCommand(backfillCmd(&tg, stdio), statusCmd(&tg, stdio), reconcileCmd(&tg, stdio),
		redriveCmd(&tg, stdio), reportCmd(&tg, stdio), replayCmd(&tg, stdio), canaryCmd(&tg, stdio), eventsCmd(&tg, stdio), localCmd(stdio), invokeCmd(stdio), demoCmd(stdio))
	return root
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// deployment is a built processor and the operator commands on it.
type deployment struct {
	ops     *ops.Ops
	tg      target
	queue   *queue.Queue
	control *s3control.Client // S3 Batch Operations
	objects *storage.Store
	output  string // the output bucket
	proc    *processor.Processor
	events  *announce.Bus // nil without EVENT_BUS_NAME
}

// open connects to the target: with --local, the local stack (which must be up) with the
// configuration of testdata/env.json, as `make demo` and `make invoke` use; else the
// environment's configuration and AWS credentials.
func open(ctx context.Context, tg target, stdio IO) (*deployment, error) {
	getenv := os.Getenv
	if tg.local {
		root, err := checkoutRoot()
		if err != nil {
			return nil, err
		}
		cfg, err := localstack.Running(root)
		if err != nil {
			return nil, fmt.Errorf("--local: %w", err)
		}
		if err := localstack.New(cfg, nil, io.Discard).Check(ctx); err != nil {
			return nil, fmt.Errorf("--local: this checkout's stack (%s, %s) does not answer: %w (start it with `make local-up`)", cfg.S3Endpoint(), cfg.DynamoEndpoint(), err)
		}
		for _, kv := range cfg.Env() {
			if err := os.Setenv(kv[0], kv[1]); err != nil {
				return nil, err
			}
		}
		fileEnv, err := localrun.FunctionEnv(filepath.Join(root, "testdata", "env.json"), "ProcessorFunction")
		if err != nil {
			return nil, err
		}
		getenv = func(k string) string { // the process environment wins over the file
			if v, ok := os.LookupEnv(k); ok {
				return v
			}
			return fileEnv(k)
		}
		tg.staging = orDefault(tg.staging, localrun.StagingBucket)
	}
	if tg.staging == "" {
		return nil, errors.New("no staging bucket: set --staging-bucket or STAGING_BUCKET (or use --local)")
	}
	over := map[string]string{"STATE_TABLE": tg.table, "OUTPUT_BUCKET": tg.output, "QUARANTINE_BUCKET": tg.quarantine}
	cfg, err := processor.LoadConfig(func(k string) string {
		if v := over[k]; v != "" {
			return v
		}
		return getenv(k)
	})
	if err != nil {
		return nil, err
	}
	awsCfg, err := awsclient.Load(ctx)
	if err != nil {
		return nil, err
	}
	s3c, ddb := awsclient.S3(awsCfg), awsclient.DynamoDB(awsCfg)
	// The processor's own logs would drown the progress bar: they go nowhere unless asked for.
	logw := io.Discard
	if os.Getenv("SLUICE_LOG") != "" {
		logw = stdio.Err
	}
	log := slog.New(slog.NewJSONHandler(logw, nil))
	proc, err := processor.Build(ctx, cfg, s3c, ddb, log, metrics.New(io.Discard, "processor"))
	if err != nil {
		return nil, err
	}
	if err := proc.StoreRecipes(ctx); err != nil {
		return nil, err
	}
	proc.WithDownstream(awsCfg) // what the commands process is announced, as the Lambda's is
	var bus *announce.Bus
	if cfg.EventBus != "" {
		bus = announce.NewBus(awsclient.EventBridge(awsCfg), cfg.EventBus)
	}
	objects := storage.New(s3c)
	return &deployment{tg: tg, proc: proc, queue: queue.New(sqs.NewFromConfig(awsCfg)), control: awsclient.S3Control(awsCfg), objects: objects, output: cfg.OutputBucket,
		events: bus, ops: ops.New(cfg, objects, state.New(ddb, cfg.StateTable, cfg.StateTTL), proc)}, nil
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// checkoutRoot is the repository the working folder is in.
func checkoutRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	return localstack.FindRoot(wd)
}

// withProgress runs f with a progress display and prints the counts as a table afterwards.
func withProgress(stdio IO, name string, f func(ops.Progress) (ops.Counts, error)) error {
	pr := newProgress(stdio.Err, name, stdio.Terminal)
	start := time.Now()
	c, err := f(pr)
	pr.Close()
	if errors.Is(err, context.Canceled) {
		fmt.Fprintf(stdio.Err, "%s stopped; run the same command again to resume (finished work is skipped)\n", name)
		err = nil
	}
	if werr := writeCounts(stdio.Out, name, c, time.Since(start)); werr != nil {
		return errors.Join(err, werr)
	}
	if err == nil && c.Failed > 0 {
		err = fmt.Errorf("%d failed transiently; run the command again to retry them", c.Failed)
	}
	return err
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
