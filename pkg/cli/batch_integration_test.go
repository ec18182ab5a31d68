package cli_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sluice-dev/sluice/pkg/metrics"
	"github.com/sluice-dev/sluice/pkg/ops"
	"github.com/sluice-dev/sluice/pkg/processor"
	"github.com/sluice-dev/sluice/pkg/state"
	"github.com/sluice-dev/sluice/pkg/testenv"
)

// backfill --via batch-operations creates an S3 Batch Operations job on the processor (S3 Control
// is a protocol-level fake reached as a proxy: that service has no local server, and its client
// puts the account id in the host name), once per --token; the job's generated manifest lists the
// prefix (or an S3 Inventory report is the manifest); --job shows the job and, once it ended,
// its completion report as a local backfill's counts.
func TestBackfillOnS3BatchOperations(t *testing.T) {
	env := testenv.Open(t)
	ctx := context.Background()
	staging, output, quar := env.Bucket(t), env.Bucket(t), env.Bucket(t)
	table := env.Table(t, state.TableDefinition)
	put := func(key string, body []byte) {
		if _, err := env.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(staging), Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"a", "b", "c", "d e", "f+g", "ü"} {
		put("uploads/b/"+k+".jpg", jpegBytes(t, 300, 200))
	}
	put("uploads/b/junk.jpg", []byte("not an image"))
	put("uploads/elsewhere.jpg", jpegBytes(t, 300, 200))

	cfg, err := processor.LoadConfig(func(k string) string {
		return map[string]string{"STATE_TABLE": table, "OUTPUT_BUCKET": output, "QUARANTINE_BUCKET": quar}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	proc, err := processor.Build(ctx, cfg, env.S3, env.DDB, slog.New(slog.NewJSONHandler(io.Discard, nil)), metrics.New(io.Discard, "processor"))
	if err != nil {
		t.Fatal(err)
	}
	const fn = "arn:aws:lambda:us-east-1:123456789012:function:sluice-processor"
	ctl := testenv.NewS3Control(t, env.S3)
	ctl.Function(fn, func(ctx context.Context, payload []byte) ([]byte, error) {
		out, err := proc.Handle(ctx, payload)
		if err != nil {
			return nil, err
		}
		return json.Marshal(out)
	})
	bin := buildCLI(t)
	sluice := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"backfill", "--staging-bucket", staging, "--table", table, "--output-bucket", output,
			"--quarantine-bucket", quar, "--account-id", "123456789012"}, args...)...)
		cmd.Env = append(os.Environ(), "HTTP_PROXY="+ctl.URL(), "http_proxy="+ctl.URL(), "NO_PROXY=", "no_proxy=",
			"AWS_ENDPOINT_URL_S3_CONTROL=http://s3-control.sluice.test")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("sluice backfill %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
		}
		return string(out)
	}
	create := []string{"--via", "batch-operations", "--prefix", "uploads/b/", "--role-arn", "arn:aws:iam::123456789012:role/batch",
		"--function-arn", fn, "--token", "backfill-1"}
	id := strings.TrimSpace(sluice(create...))
	if again := strings.TrimSpace(sluice(create...)); id == "" || again != id {
		t.Fatalf("job ids %q then %q: want one job per token", id, again)
	}
	ctl.Wait()
	counts := sluice("--job", id)
	for _, want := range []string{`listed\s+│\s+7\s`, `done\s+│\s+6\s`, `quarantined\s+│\s+1\s`, `failed\s+│\s+0\s`} {
		if !regexp.MustCompile(want).MatchString(counts) {
			t.Errorf("--job lacks %s:\n%s", want, counts)
		}
	}
	var c ops.Counts
	if err := json.Unmarshal([]byte(sluice("--job", id, "--format", "json")), &c); err != nil || c != (ops.Counts{Total: 7, Done: 6, Quarantined: 1}) {
		t.Errorf("--job --format json: %+v %v", c, err)
	}
	if got := sluice("--job", id, "--format", "csv"); got != "metric,value\nlisted,7\ndone,6\nskipped,0\nquarantined,1\nfailed,0\n" {
		t.Errorf("--job --format csv:\n%s", got)
	}
	// An S3 Inventory report as the manifest: its objects are already done.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	fmt.Fprintf(zw, "\"%s\",\"uploads%%2Fb%%2Fa.jpg\",\"12\",\"etag\"\n\"%s\",\"uploads%%2Fb%%2Fd+e.jpg\",\"12\",\"etag\"\n", staging, staging)
	zw.Close()
	inv := `{"sourceBucket":"` + staging + `","version":"2016-11-30","fileFormat":"CSV","fileSchema":"Bucket, Key, Size, ETag","files":[{"key":"inventory/data/1.csv.gz"}]}`
	for key, body := range map[string][]byte{"inventory/data/1.csv.gz": gz.Bytes(), "inventory/manifest.json": []byte(inv)} {
		if _, err := env.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(output), Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
			t.Fatal(err)
		}
	}
	fromInventory := strings.TrimSpace(sluice("--via", "batch-operations", "--manifest", "s3://"+output+"/inventory/manifest.json",
		"--role-arn", "arn:aws:iam::123456789012:role/batch", "--function-arn", fn, "--token", "backfill-2"))
	ctl.Wait()
	if got := sluice("--job", fromInventory, "--format", "csv"); fromInventory == id || got != "metric,value\nlisted,2\ndone,0\nskipped,2\nquarantined,0\nfailed,0\n" {
		t.Errorf("job %s from an inventory report:\n%s", fromInventory, got)
	}
	rec, found, err := state.New(env.DDB, table, 0).Get(ctx, state.ID(staging, "uploads/b/d e.jpg"))
	if err != nil || !found || rec.Status != state.Succeeded {
		t.Errorf("uploads/b/d e.jpg: %+v %v", rec, err)
	}
	if _, found, _ := state.New(env.DDB, table, 0).Get(ctx, state.ID(staging, "uploads/elsewhere.jpg")); found {
		t.Error("an object outside the prefix was processed")
	}
}
