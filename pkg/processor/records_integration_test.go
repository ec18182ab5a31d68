package processor_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sluice-dev/sluice/pkg/processor"
	"github.com/sluice-dev/sluice/pkg/state"
	"github.com/sluice-dev/sluice/pkg/storage"
)

// syntheticCSV streams a CSV of about size bytes to bucket/key: one row in 500 invalid, one in
// 700 a quoted note over two lines.
func syntheticCSV(t *testing.T, r *rig, key string, size int64) {
	t.Helper()
	up := r.objects.NewUpload(context.Background(), storage.Put{Bucket: r.staging, Key: key, ContentType: "text/csv"})
	w := bufio.NewWriterSize(up, 1<<20)
	w.WriteString("id,amount,note\n")
	var n int64
	for i := 1; n < size; i++ {
		var line string
		switch {
		case i%500 == 0:
			line = fmt.Sprintf("%d,not-a-number,bad row %d\n", i, i)
		case i%700 == 0:
			line = fmt.Sprintf("%d,%d.%02d,\"two\nlines %d\"\n", i, i%10000, i%100, i)
		default:
			line = fmt.Sprintf("%d,%d.%02d,order %d of a synthetic file\n", i, i%10000, i%100, i)
		}
		w.WriteString(line)
		n += int64(len(line))
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := up.Close(); err != nil {
		t.Fatal(err)
	}
}

// peakRSS resets the process's peak resident set (Linux), and reads it back: what the work in
// between needed at most.
func resetPeakRSS() bool { return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil }

func peakRSSMB(t *testing.T) float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	t.Fatal("no VmHWM")
	return 0
}

// TestRecordsResumeAcrossAttempts: a CSV processed under deadlines a quarter of what it needs
// stops at checkpoints and resumes over several attempts (none used up), and publishes exactly
// the bytes of one uninterrupted run: the rows, the rejected rows, the counts. SLUICE_RECORDS_MB
// sets the size (make records-scale: over 1 GB, with peak memory under 200 MB).
func TestRecordsResumeAcrossAttempts(t *testing.T) {
	mb := int64(24)
	if v := os.Getenv("SLUICE_RECORDS_MB"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			t.Fatalf("SLUICE_RECORDS_MB=%q", v)
		}
		mb = n
	}
	r, _ := routedRig(t, `{"recipes":[{"name":"orders","kind":"records","records":{"input":{"format":"csv"},
		"schema":`+ordersSchema+`,"output":{"format":"jsonl"},"max_bad_rows":0.01,"checkpoint_bytes":1048576}}]}`)
	r.cfg.DeadlineMargin = 0
	r.build(t)
	ctx := context.Background()
	syntheticCSV(t, r, "in/whole.csv", mb<<20)
	if _, err := r.env.S3.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String(r.staging), Key: aws.String("in/resumed.csv"),
		CopySource: aws.String(r.staging + "/in/whole.csv")}); err != nil {
		t.Fatal(err)
	}

	measure := resetPeakRSS()
	start := time.Now()
	if res := r.proc.Process(ctx, "whole", r.event("in/whole.csv")); res.Outcome != processor.Succeeded {
		t.Fatalf("uninterrupted: %+v", res)
	}
	whole := time.Since(start)
	budget := max(whole/4, 150*time.Millisecond)
	attempts := 0
	for ; attempts < 100; attempts++ {
		actx, cancel := context.WithTimeout(ctx, budget)
		res := r.proc.Process(actx, fmt.Sprintf("attempt-%d", attempts), r.event("in/resumed.csv"))
		cancel()
		if res.Outcome == processor.Succeeded {
			break
		}
		if res.Outcome != processor.Failed || !strings.Contains(res.Err.Error(), "paused at a checkpoint") && !strings.Contains(res.Err.Error(), "deadline") {
			t.Fatalf("attempt %d: %+v", attempts, res)
		}
	}
	peak := peakRSSMB(t)
	rec, _, _ := r.states.Get(ctx, state.ID(r.staging, "in/resumed.csv"))
	t.Logf("%d MiB: one run %v; %d stopped attempts of %v; %d attempts counted; peak RSS %.0f MB", mb, whole.Round(time.Millisecond), attempts, budget, rec.Attempts, peak)
	if attempts < 2 || rec.Attempts != 1 || rec.Progress != nil {
		t.Fatalf("%d stopped attempts (want at least 2), %d counted (want 1), progress left %+v", attempts, rec.Attempts, rec.Progress)
	}
	a, b := r.manifestOf(t, "in/whole.csv"), r.manifestOf(t, "in/resumed.csv")
	if *a.Records != *b.Records || a.Records.Invalid == 0 || len(a.Outputs) != 2 || len(b.Outputs) != 2 {
		t.Fatalf("counts %+v and %+v", a.Records, b.Records)
	}
	for i := range a.Outputs {
		if a.Outputs[i].SHA256 != b.Outputs[i].SHA256 || a.Outputs[i].Size != b.Outputs[i].Size {
			t.Errorf("%s: resumed %d bytes %s, uninterrupted %d bytes %s", a.Outputs[i].Name, b.Outputs[i].Size, b.Outputs[i].SHA256, a.Outputs[i].Size, a.Outputs[i].SHA256)
		}
	}
	if measure && mb >= 1024 && peak > 200 {
		t.Errorf("peak RSS %.0f MB, over 200 MB", peak)
	}
}

// TestRecordsCrashAfterEachCheckpointAndPart: a records file is processed by a chain of
// processes, each SIGKILLed (a real separate process) right after its first checkpoint, so that
// every checkpoint is followed by a kill and a resumption; another copy by a chain killed right
// after each part upload (the first process after its first part, each later one after its
// second: its first sends again the part it resumed in, its second is a new one). Then nothing is lost and no row is written twice: the counts and the
// outputs' checksums are those of one uninterrupted run; killed attempts that recorded progress
// used up none; nothing half-written was ever visible, and no temp object is left.
func TestRecordsCrashAfterEachCheckpointAndPart(t *testing.T) {
	const recipes = `{"recipes":[{"name":"orders","kind":"records","records":{"input":{"format":"csv"},
		"schema":` + ordersSchema + `,"output":{"format":"jsonl"},"max_bad_rows":0.01,"checkpoint_bytes":2097152}}]}`
	r, _ := routedRig(t, recipes)
	r.cfg.MaxAttempts = 20
	r.build(t)
	ctx := context.Background()
	syntheticCSV(t, r, "in/whole.csv", 20<<20)
	if res := r.proc.Process(ctx, "whole", r.event("in/whole.csv")); res.Outcome != processor.Succeeded {
		t.Fatalf("uninterrupted: %+v", res)
	}
	whole := r.manifestOf(t, "in/whole.csv")
	hours := 0 // each process's clock runs past the dead ones' leases
	for _, c := range []struct {
		service, operation string
		atLeast            int
	}{{"DynamoDB", "UpdateItem", 9}, {"S3", "UploadPart", 3}} {
		t.Run("killed after each "+c.operation, func(t *testing.T) {
			key := "in/killed-" + c.operation + ".csv"
			if _, err := r.env.S3.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String(r.staging), Key: aws.String(key),
				CopySource: aws.String(r.staging + "/in/whole.csv")}); err != nil {
				t.Fatal(err)
			}
			ev := r.event(key)
			kills := 0
			for {
				hours++
				call := 1
				if c.operation == "UploadPart" && kills > 0 {
					call = 2
				}
				killed, err := r.crashChild(crashSpec{Event: ev, RequestID: fmt.Sprint("req-", hours), Service: c.service, Operation: c.operation,
					Call: call, After: true, ClockOffset: time.Duration(hours) * time.Hour}, map[string]string{"RECIPES_JSON": recipes})
				if err != nil {
					t.Fatal(err)
				}
				if !killed {
					break // it finished
				}
				if kills++; kills > 40 {
					t.Fatal("the chain did not finish in 40 processes")
				}
				r.checkPublished(t, key, false)
				if rec := r.record(t, key); rec.Status != state.Processing || rec.Progress == nil {
					t.Fatalf("after kill %d: %s, progress %v", kills, rec.Status, rec.Progress != nil)
				}
			}
			t.Logf("killed %d times, each right after %s", kills, c.operation)
			if kills < c.atLeast {
				t.Errorf("%d kills, want at least %d", kills, c.atLeast)
			}
			processor.SetClock(r.proc, func() time.Time { return time.Now().Add(time.Duration(hours+1) * time.Hour) })
			if res := r.proc.Process(ctx, "after", ev); res.Outcome != processor.Duplicate {
				t.Fatalf("a delivery after the chain: %+v", res)
			}
			if temps := r.checkPublished(t, key, true); len(temps) != 0 {
				t.Errorf("temp objects left: %v", temps)
			}
			rec, m := r.record(t, key), r.manifestOf(t, key)
			if rec.Status != state.Succeeded || rec.Attempts != 1 || *m.Records != *whole.Records {
				t.Fatalf("state %s, %d attempts; counts %+v, uninterrupted %+v", rec.Status, rec.Attempts, m.Records, whole.Records)
			}
			for i := range whole.Outputs {
				if whole.Outputs[i].SHA256 != m.Outputs[i].SHA256 || whole.Outputs[i].Size != m.Outputs[i].Size {
					t.Errorf("%s: %d bytes %s after the kills, %d bytes %s uninterrupted", m.Outputs[i].Name, m.Outputs[i].Size, m.Outputs[i].SHA256, whole.Outputs[i].Size, whole.Outputs[i].SHA256)
				}
			}
		})
	}
}
