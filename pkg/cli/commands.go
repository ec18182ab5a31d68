package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/pkg/awsclient"
	"github.com/sluice-dev/sluice/pkg/ops"
	"github.com/sluice-dev/sluice/pkg/processor"
	"github.com/sluice-dev/sluice/pkg/queue"
	"github.com/sluice-dev/sluice/pkg/state"
	"github.com/sluice-dev/sluice/pkg/termtext"
)

// redriveDLQ moves dead letters back to the processing queue, with progress. It needs only SQS:
// no processor is built.
func redriveDLQ(ctx context.Context, stdio IO, dlqURL, queueURL string, rate float64) error {
	awsCfg, err := awsclient.Load(ctx)
	if err != nil {
		return err
	}
	q := queue.New(sqs.NewFromConfig(awsCfg))
	return withProgress(stdio, "redrive-dlq", func(p ops.Progress) (ops.Counts, error) {
		var c ops.Counts
		if n, err := q.Depth(ctx, dlqURL); err == nil {
			c.Total = n
			p.SetTotal(n)
		}
		err := q.Move(ctx, dlqURL, queueURL, rate, func() {
			c.Done++
			p.Finished(ops.KindDone, "", processor.Result{Detail: "moved back to the queue"})
		})
		return c, err
	})
}

func backfillCmd(tg *target, stdio IO) *cobra.Command {
	var (
		bucket, prefix, from, to, via, queueURL, checkpointFile string
		concurrency                                             int
		batch                                                   batchFlags
	)
	cmd := &cobra.Command{
		Use:   "backfill",
		Short: "Process every upload under a prefix that is not done for its content and the current recipe",
		Long: `backfill lists the objects under --prefix (default: the upload prefix), keeps those whose own
LastModified falls in [--from, --to), skips those already SUCCEEDED or QUARANTINED for their current
content and the current recipe, and processes the rest in this process with --concurrency workers.
It works as it lists (a page of objects, one batched state read), so its memory does not grow with
the bucket. Ctrl-C stops it cleanly; the same command resumes. With --checkpoint FILE the listing
position is saved there as it advances, and the same command resumes from it without listing
again what it has done; the file is removed when the backfill completes.

--via batch-operations creates an S3 Batch Operations job instead ("Invoke AWS Lambda function" on
the processor, schema 2.0), over a manifest the service generates by listing --prefix (with --from
and --to as creation-date filters) or over --manifest; its completion report goes under
batch-reports/ of the output bucket. It prints the job's id; --job ID shows the job's progress and,
once it ended, its report as the counts above (--format table, json or csv).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opt := ops.BackfillOptions{Concurrency: concurrency}
			var err error
			if opt.From, err = parseDate("--from", from); err != nil {
				return err
			}
			if opt.To, err = parseDate("--to", to); err != nil {
				return err
			}
			d, err := open(cmd.Context(), *tg, stdio)
			if err != nil {
				return err
			}
			if batch.job != "" {
				return followBatchJob(cmd.Context(), stdio, d, batch)
			}
			opt.Bucket, opt.Prefix = orDefault(bucket, d.tg.staging), orDefault(prefix, d.tg.prefix)
			switch via {
			case "batch-operations":
				return createBatchJob(cmd.Context(), stdio, d, opt, batch)
			case "local":
			case "queue":
				if queueURL == "" {
					return errors.New("--via queue needs --queue-url (or QUEUE_URL): the stack's UploadQueue output")
				}
				opt.Via = queue.Target{Queue: d.queue, URL: queueURL}
			default:
				return fmt.Errorf("--via %q: want local, queue or batch-operations", via)
			}
			if checkpointFile == "" {
				return withProgress(stdio, "backfill", func(p ops.Progress) (ops.Counts, error) {
					return d.ops.Backfill(cmd.Context(), opt, p)
				})
			}
			cp, err := loadCheckpoint(checkpointFile, opt)
			if err != nil {
				return err
			}
			opt.After, opt.Checkpoint = cp.After, cp.advance
			return withProgress(stdio, "backfill", func(p ops.Progress) (ops.Counts, error) {
				c, err := d.ops.Backfill(cmd.Context(), opt, p)
				return c, errors.Join(err, cp.end(err == nil && c.Failed == 0))
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&bucket, "bucket", "", "the bucket to list (default: the staging bucket)")
	f.StringVar(&prefix, "prefix", "", "the key prefix to list (default: the upload prefix)")
	f.StringVar(&from, "from", "", "only objects last modified at or after this date (2006-01-02 or RFC 3339)")
	f.StringVar(&to, "to", "", "only objects last modified before this date")
	f.IntVar(&concurrency, "concurrency", 4, "objects processed at once")
	f.StringVar(&via, "via", "local", "local: process here; queue: send S3-shaped messages to the deployed processor's queue; batch-operations: create an S3 Batch Operations job that invokes the processor per object")
	f.StringVar(&queueURL, "queue-url", os.Getenv("QUEUE_URL"), "the processing queue, for --via queue (env QUEUE_URL)")
	f.StringVar(&checkpointFile, "checkpoint", "", "keep the listing position in this file, to resume without listing again")
	batch.add(f)
	return cmd
}

// parseDate reads a date or an RFC 3339 time; "" is no bound.
func parseDate(flag, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%s %q: want 2006-01-02 or an RFC 3339 time", flag, v)
}

func statusCmd(tg *target, stdio IO) *cobra.Command {
	var summary, asJSON bool
	cmd := &cobra.Command{
		Use:   "status [KEY]",
		Short: "One upload's state, outputs, reason and audit trail; or --summary: counts by status and reason",
		Args: func(_ *cobra.Command, args []string) error {
			if summary != (len(args) == 0) {
				return errors.New("want a KEY, or --summary")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := open(cmd.Context(), *tg, stdio)
			if err != nil {
				return err
			}
			if summary {
				r, err := d.ops.Report(cmd.Context())
				if err != nil {
					return err
				}
				if asJSON {
					return printJSON(stdio.Out, r)
				}
				return r.Write(stdio.Out, ops.FormatTable)
			}
			rec, err := d.ops.Status(cmd.Context(), d.tg.staging, args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(stdio.Out, rec)
			}
			return writeRecord(stdio.Out, rec)
		},
	}
	cmd.Flags().BoolVar(&summary, "summary", false, "counts by status and reason")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func writeRecord(w io.Writer, rec state.Record) error {
	rows := [][]string{
		{"source", "s3://" + rec.Bucket + "/" + rec.Key},
		{"status", string(rec.Status)},
		{"content", rec.ObjectVersion},
		{"recipe", strings.TrimSpace(rec.RecipeName + " " + rec.RecipeVersion)},
		{"attempts", strconv.Itoa(rec.Attempts)},
	}
	if p := rec.Progress; p != nil {
		rows = append(rows, []string{"progress", processor.DescribeProgress(*p, rec.ObjectSize)})
	}
	if rec.Reason != "" {
		rows = append(rows, []string{"reason", rec.Reason + ": " + rec.Message})
	}
	if rec.LastError != "" {
		rows = append(rows, []string{"last error", rec.LastError})
	}
	if rec.ManifestKey != "" {
		rows = append(rows, []string{"manifest", rec.ManifestKey})
	}
	if rec.Outcome() {
		announced := "not announced"
		if !rec.Unannounced() {
			announced = "announced"
		}
		rows = append(rows, []string{"event id", rec.OutcomeID() + " (" + announced + ")"})
	}
	for _, o := range rec.Outputs {
		where := o.Key
		if o.Bucket != "" {
			where = "s3://" + o.Bucket + "/" + o.Key
		}
		rows = append(rows, []string{"output " + o.Name, fmt.Sprintf("%s (%dx%d %s, %d bytes, sha256 %.12s…)", where, o.Width, o.Height, o.Format, o.Size, o.SHA256)})
	}
	if err := table(w, []string{"field", "value"}, rows); err != nil {
		return err
	}
	var trail [][]string
	for _, h := range rec.History {
		trail = append(trail, []string{h.At.UTC().Format(time.RFC3339), h.RequestID, string(h.From) + " → " + string(h.To), h.Reason})
	}
	return table(w, []string{"at", "request", "transition", "reason"}, trail)
}

// table renders a human-facing table: every cell made visible (keys and messages come from
// strangers; see pkg/termtext).
func table(w io.Writer, header []string, rows [][]string) error {
	return termtext.Table(w, header, rows)
}

// writeCounts prints what a command did as a table, with how long it took.
func writeCounts(w io.Writer, name string, c ops.Counts, took time.Duration) error {
	return table(w, []string{name, "objects"}, append(countRows(c), []string{"time", took.Round(time.Millisecond).String()}))
}

// countRows are the rows of writeCounts' table.
func countRows(c ops.Counts) [][]string {
	return [][]string{
		{"listed", strconv.FormatInt(c.Total, 10)},
		{"done", strconv.FormatInt(c.Done, 10)},
		{"skipped", strconv.FormatInt(c.Skipped, 10)},
		{"quarantined", strconv.FormatInt(c.Quarantined, 10)},
		{"failed", strconv.FormatInt(c.Failed, 10)},
	}
}

func reconcileCmd(tg *target, stdio IO) *cobra.Command {
	var (
		fix, asJSON bool
		concurrency int
	)
	cmd := &cobra.Command{
		Use:   "reconcile",
		Short: "Compare uploads, state records and outputs; list every inconsistency, and repair them with --fix",
		Long: `reconcile lists: uploads never processed; claims whose lease expired (stuck); FAILED records
waiting for a retry; SUCCEEDED records with an output missing or with the wrong checksum; records
and manifests whose upload is gone; renditions of generations nobody can commit any more and
quarantine copies no QUARANTINED record keeps (orphaned). It judges only sources under the upload
prefix, and only objects older than the run. --fix processes again what can be processed, removes
the outputs of uploads that are gone, and deletes orphaned objects after judging each again.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := open(cmd.Context(), *tg, stdio)
			if err != nil {
				return err
			}
			findings, err := d.ops.Reconcile(cmd.Context(), d.tg.staging, d.tg.prefix)
			if err != nil {
				return err
			}
			if asJSON {
				if err := printJSON(stdio.Out, findings); err != nil {
					return err
				}
			} else {
				rows := make([][]string, 0, len(findings))
				for _, f := range findings {
					rows = append(rows, []string{string(f.Kind), f.Key, f.Detail})
				}
				if err := table(stdio.Out, []string{"kind", "key", "detail"}, rows); err != nil {
					return err
				}
				fmt.Fprintf(stdio.Err, "%d inconsistencies\n", len(findings))
			}
			if !fix || len(findings) == 0 {
				return nil
			}
			return withProgress(stdio, "fix", func(p ops.Progress) (ops.Counts, error) {
				return d.ops.Fix(cmd.Context(), d.tg.staging, d.tg.prefix, findings, ops.FixOptions{Concurrency: concurrency, Force: true}, p)
			})
		},
	}
	cmd.Flags().BoolVar(&fix, "fix", false, "repair what can be repaired")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the findings as JSON")
	cmd.Flags().IntVar(&concurrency, "concurrency", 4, "objects repaired at once")
	return cmd
}

func redriveCmd(tg *target, stdio IO) *cobra.Command {
	var (
		quarantined, failed, dlq bool
		reason, queueURL, dlqURL string
		rate                     float64
		concurrency              int
	)
	cmd := &cobra.Command{
		Use:   "redrive (--quarantined [--reason R] | --failed | --dlq)",
		Short: "Process quarantined or failed files again (after a fix or a limit change), or move dead letters back to the queue; rate-limited",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opt := ops.RedriveOptions{Reason: reason, Rate: rate, Concurrency: concurrency}
			if dlq {
				if quarantined || failed || reason != "" {
					return errors.New("--dlq goes alone: dead letters are events, not records")
				}
				if queueURL == "" || dlqURL == "" {
					return errors.New("--dlq needs --queue-url and --dlq-url (or QUEUE_URL and DLQ_URL): the stack's outputs")
				}
				return redriveDLQ(cmd.Context(), stdio, dlqURL, queueURL, rate)
			}
			switch {
			case quarantined && !failed:
				opt.Status = state.Quarantined
			case failed && !quarantined && reason == "":
				opt.Status = state.Failed
			default:
				return errors.New("want --quarantined [--reason R], or --failed")
			}
			d, err := open(cmd.Context(), *tg, stdio)
			if err != nil {
				return err
			}
			return withProgress(stdio, "redrive", func(p ops.Progress) (ops.Counts, error) {
				return d.ops.Redrive(cmd.Context(), opt, p)
			})
		},
	}
	f := cmd.Flags()
	f.BoolVar(&quarantined, "quarantined", false, "redrive QUARANTINED files")
	f.StringVar(&reason, "reason", "", "only those quarantined with this reason (too_many_pixels, max_attempts, ...)")
	f.BoolVar(&failed, "failed", false, "redrive FAILED files")
	f.BoolVar(&dlq, "dlq", false, "move the dead-letter queue's messages back to the processing queue")
	f.StringVar(&queueURL, "queue-url", os.Getenv("QUEUE_URL"), "the processing queue (env QUEUE_URL)")
	f.StringVar(&dlqURL, "dlq-url", os.Getenv("DLQ_URL"), "the dead-letter queue (env DLQ_URL)")
	f.Float64Var(&rate, "rate", 10, "files (or messages) started per second (0: no limit)")
	f.IntVar(&concurrency, "concurrency", 4, "files processed at once")
	return cmd
}

func reportCmd(tg *target, stdio IO) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "report",
		Short: "The run summary: totals by status, success rate, top quarantine reasons, p50/p95 durations",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != ops.FormatTable && format != ops.FormatJSON && format != ops.FormatCSV {
				return fmt.Errorf("--format %q: want %s", format, strings.Join([]string{ops.FormatTable, ops.FormatJSON, ops.FormatCSV}, ", "))
			}
			d, err := open(cmd.Context(), *tg, stdio)
			if err != nil {
				return err
			}
			r, err := d.ops.Report(cmd.Context())
			if err != nil {
				return err
			}
			return r.Write(stdio.Out, format)
		},
	}
	cmd.Flags().StringVar(&format, "format", ops.FormatTable, "table, json or csv")
	return cmd
}

func replayCmd(tg *target, stdio IO) *cobra.Command {
	var (
		version string
		asJSON  bool
	)
	cmd := &cobra.Command{
		Use:   "replay KEY",
		Short: "Make a published upload's outputs again, here, and compare them with the published ones",
		Long: `replay reads KEY's manifest, the recipe document of the version it names (stored by version in
the output bucket, under the output prefix's _recipes/), and the source version it describes
(--version: another version of a versioned bucket), makes the outputs again in this process, and
prints each one's SHA-256 beside the published one. It exits 1 when any differs: renders are
deterministic, so a difference is a bug to report.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := open(cmd.Context(), *tg, stdio)
			if err != nil {
				return err
			}
			rp, err := d.proc.Replay(cmd.Context(), args[0], version)
			if err != nil {
				return err
			}
			if asJSON {
				err = printJSON(stdio.Out, rp)
			} else {
				err = writeReplay(stdio.Out, rp)
			}
			if err == nil && !rp.Same {
				err = ExitError(1)
			}
			return err
		},
	}
	cmd.Flags().StringVar(&version, "version", "", "the source version to replay (default: the one the manifest describes)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// writeReplay prints a replay: a line per output, and the verdict.
func writeReplay(w io.Writer, rp processor.Replay) error {
	fmt.Fprintf(w, "%s (%s) with recipe %q %s\n", rp.Key, rp.SourceVersion, rp.Recipe, rp.RecipeVersion)
	for _, o := range rp.Outputs {
		verdict := "same"
		if o.SHA256 != o.Published {
			verdict = "DIFFERENT (published " + cmpOrNone(o.Published) + ")"
		}
		fmt.Fprintf(w, "  %-12s %10d bytes  sha256 %s  %s\n", o.Name, o.Size, o.SHA256, verdict)
	}
	if rp.Same {
		_, err := fmt.Fprintln(w, "every output is byte for byte the published one")
		return err
	}
	_, err := fmt.Fprintln(w, "the outputs differ from the published ones")
	return err
}

func cmpOrNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func canaryCmd(tg *target, stdio IO) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "canary",
		Short: "Compare a recipe's canary with its baseline, or print the configuration that promotes it",
	}
	var asJSON bool
	report := &cobra.Command{
		Use:   "report NAME",
		Short: "Outcomes, quarantine reasons, time and output bytes of each version recipe NAME made",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := open(cmd.Context(), *tg, stdio)
			if err != nil {
				return err
			}
			baseline, canary, ok := d.proc.Canary(args[0])
			if !ok {
				return fmt.Errorf("no recipe named %q", args[0])
			}
			vs, err := d.ops.RecipeReport(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(stdio.Out, vs)
			}
			return writeRecipeReport(stdio.Out, vs, baseline, canary)
		},
	}
	report.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	promote := &cobra.Command{
		Use:   "promote NAME",
		Short: "Print RECIPES_JSON with recipe NAME's canary made its settings",
		Long: `promote prints the routing configuration with the canary of recipe NAME made the recipe's own
settings. Deploy it (sam deploy --parameter-overrides RecipesJSON='...'); then "sluice backfill"
reprocesses the files the old version made, and leaves those the canary made (its version is now
the recipe's).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := open(cmd.Context(), *tg, stdio)
			if err != nil {
				return err
			}
			rs, err := d.proc.Promoted(args[0])
			if err != nil {
				return err
			}
			return printJSON(stdio.Out, rs)
		},
	}
	cmd.AddCommand(report, promote)
	return cmd
}

// writeRecipeReport prints a line per version, marking the baseline and the canary.
func writeRecipeReport(w io.Writer, vs []ops.VersionReport, baseline, canary string) error {
	for _, v := range vs {
		role := "older"
		switch v.Version {
		case baseline:
			role = "baseline"
		case canary:
			role = "canary"
		}
		var reasons []string
		for _, r := range v.TopReasons {
			reasons = append(reasons, fmt.Sprintf("%s %d", r.Reason, r.Count))
		}
		fmt.Fprintf(w, "%-8s %s  %d records, %.1f%% succeeded, p50 %d ms, p95 %d ms, %d output bytes; quarantined: %s\n",
			role, v.Version, v.Records, 100*v.SuccessRate, v.P50MS, v.P95MS, v.OutputBytes, cmpOrNone(strings.Join(reasons, ", ")))
	}
	_, err := fmt.Fprintf(w, "baseline %s, canary %s\n", baseline, cmpOrNone(canary))
	return err
}
