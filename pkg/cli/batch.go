package cli

import (
	"context"
	"crypto/rand"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/sluice-dev/sluice/pkg/batchjob"
	"github.com/sluice-dev/sluice/pkg/ops"
)

// batchFlags are backfill's flags for S3 Batch Operations.
type batchFlags struct {
	account, role, function, manifest, token, job, format string
}

func (f *batchFlags) add(fs *pflag.FlagSet) {
	fs.StringVar(&f.job, "job", "", "show an S3 Batch Operations backfill job's progress and, once it ended, its completion report as counts")
	fs.StringVar(&f.account, "account-id", os.Getenv("AWS_ACCOUNT_ID"), "for --via batch-operations and --job: the AWS account (env AWS_ACCOUNT_ID)")
	fs.StringVar(&f.role, "role-arn", os.Getenv("BATCH_OPERATIONS_ROLE"), "for --via batch-operations: the stack's BatchOperationsRole output (env BATCH_OPERATIONS_ROLE)")
	fs.StringVar(&f.function, "function-arn", os.Getenv("PROCESSOR_FUNCTION_ARN"), "for --via batch-operations: the processor function's ARN (env PROCESSOR_FUNCTION_ARN)")
	fs.StringVar(&f.manifest, "manifest", "", "for --via batch-operations: a manifest in S3 instead of listing --prefix: a CSV (s3://bucket/key; bucket,key lines, keys URL-encoded) or an S3 Inventory report's manifest.json")
	fs.StringVar(&f.token, "token", "", "for --via batch-operations: an idempotency token (the same token creates one job; default: a new one)")
	fs.StringVar(&f.format, "format", ops.FormatTable, "with --job: table, json or csv")
}

// createBatchJob creates the job that backfills opt through the processor and prints its id.
func createBatchJob(ctx context.Context, stdio IO, d *deployment, opt ops.BackfillOptions, f batchFlags) error {
	var missing []string
	for flag, v := range map[string]string{"--account-id": f.account, "--role-arn": f.role, "--function-arn": f.function} {
		if v == "" {
			missing = append(missing, flag)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("--via batch-operations needs %s (the stack's outputs)", strings.Join(missing, ", "))
	}
	spec := batchjob.Spec{AccountID: f.account, RoleARN: f.role, FunctionARN: f.function, Token: f.token,
		Bucket: opt.Bucket, Prefix: opt.Prefix, From: opt.From, To: opt.To, ReportBucket: d.output, ReportPrefix: "batch-reports"}
	if spec.Token == "" {
		b := make([]byte, 12)
		rand.Read(b)
		spec.Token = hex.EncodeToString(b)
	}
	if f.manifest != "" {
		bucket, key, ok := strings.Cut(strings.TrimPrefix(f.manifest, "s3://"), "/")
		if !ok || !strings.HasPrefix(f.manifest, "s3://") || key == "" {
			return fmt.Errorf("--manifest %q: want s3://bucket/key", f.manifest)
		}
		head, err := d.objects.Head(ctx, bucket, key)
		if err != nil {
			return fmt.Errorf("--manifest: %w", err)
		}
		spec.ManifestBucket, spec.ManifestKey, spec.ManifestETag = bucket, key, head.ETag
	}
	id, err := batchjob.Create(ctx, d.control, spec)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdio.Out, id)
	fmt.Fprintf(stdio.Err, "S3 Batch Operations job %s created; follow it with: sluice backfill --job %s\n", id, id)
	return nil
}

// followBatchJob prints a job's progress, or, once it ended, its completion report as the counts
// a local backfill prints.
func followBatchJob(ctx context.Context, stdio IO, d *deployment, f batchFlags) error {
	if f.account == "" {
		return errors.New("--job needs --account-id (or AWS_ACCOUNT_ID)")
	}
	st, err := batchjob.Describe(ctx, d.control, f.account, f.job)
	if err != nil {
		return err
	}
	if f.format != ops.FormatTable && f.format != ops.FormatJSON && f.format != ops.FormatCSV {
		return fmt.Errorf("--format %q: want table, json or csv", f.format)
	}
	if !st.Ended() {
		if f.format == ops.FormatJSON {
			return printJSON(stdio.Out, map[string]any{"job": st.ID, "state": st.State, "tasks": st.Total, "succeeded": st.Succeeded, "failed": st.Failed})
		}
		return table(stdio.Out, []string{"job " + st.ID, st.State}, [][]string{
			{"tasks", strconv.FormatInt(st.Total, 10)},
			{"succeeded", strconv.FormatInt(st.Succeeded, 10)},
			{"failed", strconv.FormatInt(st.Failed, 10)},
		})
	}
	var c ops.Counts
	err = batchjob.ReadReport(ctx, d.objects, st.ReportBucket, st.ReportPrefix, st.ID, func(t batchjob.Task) error {
		batchjob.Count(&c, t)
		return nil
	})
	if err != nil {
		return errors.Join(fmt.Errorf("job %s %s %v", st.ID, st.State, st.Reasons), err)
	}
	switch f.format {
	case ops.FormatJSON:
		return printJSON(stdio.Out, c)
	case ops.FormatCSV:
		w := csv.NewWriter(stdio.Out)
		if err := w.WriteAll(append([][]string{{"metric", "value"}}, countRows(c)...)); err != nil {
			return err
		}
		return w.Error()
	}
	return table(stdio.Out, []string{"backfill job " + st.ID, "objects"}, countRows(c))
}
