package ops_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sluice-dev/sluice/pkg/awsclient"
	"github.com/sluice-dev/sluice/pkg/faultinject"
	"github.com/sluice-dev/sluice/pkg/ops"
	"github.com/sluice-dev/sluice/pkg/state"
	"github.com/sluice-dev/sluice/pkg/storage"
)

// TestScale is `make scale`: at each size in SLUICE_SCALE (sources, comma-separated) it fills
// the local stack with that many zero-byte uploads, their state records (nine in ten SUCCEEDED
// with a manifest, one QUARANTINED) and manifests, then runs the operator commands over them as
// they run at that size: the reconciler's steady-state pass (5 % of outputs sampled), report
// (status --summary is the same scan), a backfill that finds everything done, and a redrive
// whose filter matches nothing. Per size and command it prints wall time, sources per second,
// peak heap and requests by operation, and it fails if a command's peak heap grows with the
// number of objects: more than 1.2× from the smallest size to the largest, or above 256 MB.
func TestScale(t *testing.T) {
	spec := os.Getenv("SLUICE_SCALE")
	if spec == "" {
		t.Skip("make scale runs it (SLUICE_SCALE=10000,100000)")
	}
	var sizes []int
	for f := range strings.SplitSeq(spec, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 100 {
			t.Fatalf("SLUICE_SCALE=%q: want sizes of at least 100, comma-separated", spec)
		}
		sizes = append(sizes, n)
	}
	slices.Sort(sizes)
	peaks := map[string][]float64{}
	fmt.Printf("%-9s %-26s %9s %10s %9s  %s\n", "sources", "command", "wall", "sources/s", "heap MB", "requests")
	for _, n := range sizes {
		for _, row := range scaleRun(t, n) {
			fmt.Printf("%-9d %-26s %9s %10.0f %9.1f  %s\n", n, row.command, row.wall.Round(time.Millisecond), float64(n)/row.wall.Seconds(), row.peakMB, row.requests)
			peaks[row.command] = append(peaks[row.command], row.peakMB)
		}
	}
	for cmd, p := range peaks {
		if last := p[len(p)-1]; last > 256 || (len(p) > 1 && last > 1.2*p[0]) {
			t.Errorf("%s: peak heap %.1f MB at %d sources, %.1f MB at %d: it grows with the objects", cmd, last, sizes[len(sizes)-1], p[0], sizes[0])
		}
	}
}

type scaleRow struct {
	command  string
	wall     time.Duration
	peakMB   float64
	requests string
}

// scaleRun seeds n sources and measures each command over them.
func scaleRun(t *testing.T, n int) []scaleRow {
	r := newRig(t)
	ctx := context.Background()
	seedScale(t, r, n)
	// The commands under test talk through a counting transport.
	cfg, inj := r.env.WithFaults()
	o := ops.New(r.cfg, storage.New(awsclient.S3(cfg)), state.New(awsclient.DynamoDB(cfg), r.table, 0), r.proc)
	lastPass := time.Now().Add(-24 * time.Hour) // the records are older: a steady-state pass
	var rows []scaleRow
	rows = append(rows, measure(t, "reconcile (5% sampled)", inj, func() error {
		found, cur, err := o.ReconcileFrom(ctx, r.staging, "uploads/", ops.Cursor{Pass: lastPass, Phase: ops.PhaseDone}, ops.ReconcileOptions{SamplePercent: 5})
		if err == nil && (len(found) != 0 || cur.Phase != ops.PhaseDone) {
			err = fmt.Errorf("%d findings (%+v...), phase %s", len(found), found[:min(len(found), 3)], cur.Phase)
		}
		return err
	}))
	rows = append(rows, measure(t, "report / status --summary", inj, func() error {
		rep, err := o.Report(ctx)
		if err == nil && rep.Records != n {
			err = fmt.Errorf("report counted %d records", rep.Records)
		}
		return err
	}))
	rows = append(rows, measure(t, "backfill (all done)", inj, func() error {
		c, err := o.Backfill(ctx, ops.BackfillOptions{Bucket: r.staging, Prefix: "uploads/", Concurrency: 4}, nil)
		if err == nil && c.Skipped != int64(n) {
			err = fmt.Errorf("backfill: %+v", c)
		}
		return err
	}))
	rows = append(rows, measure(t, "redrive (none match)", inj, func() error {
		c, err := o.Redrive(ctx, ops.RedriveOptions{Status: state.Quarantined, Reason: "too_large"}, nil)
		if err == nil && c.Total != 0 {
			err = fmt.Errorf("redrive: %+v", c)
		}
		return err
	}))
	return rows
}

// measure runs f, sampling the heap, and counts its requests.
func measure(t *testing.T, command string, inj *faultinject.Transport, f func() error) scaleRow {
	t.Helper()
	// A tight GC target, so that the peak is what the command keeps, not when the collector
	// happened to run.
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	runtime.GC()
	before := inj.AllCalls()
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(sample)
			if v := sample[0].Value.Uint64(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	})
	start := time.Now()
	err := f()
	wall := time.Since(start)
	close(done)
	wg.Wait()
	if err != nil {
		t.Fatalf("%s: %v", command, err)
	}
	var reqs []string
	for op, c := range inj.AllCalls() {
		if d := c - before[op]; d > 0 {
			reqs = append(reqs, fmt.Sprintf("%s %d", op, d))
		}
	}
	slices.Sort(reqs)
	return scaleRow{command: command, wall: wall, peakMB: float64(peak.Load()) / (1 << 20), requests: strings.Join(reqs, ", ")}
}

// seedScale writes n zero-byte uploads, their records and the SUCCEEDED ones' manifests.
func seedScale(t *testing.T, r *rig, n int) {
	t.Helper()
	ctx := context.Background()
	const emptyETag = "d41d8cd98f00b204e9800998ecf8427e" // MD5 of no bytes
	updated := time.Now().Add(-48 * time.Hour)
	key := func(i int) string { return fmt.Sprintf("uploads/%02d/%07d.jpg", i%100, i) }
	record := func(i int) state.Record {
		k := key(i)
		rec := state.Record{ID: state.ID(r.staging, k), Bucket: r.staging, Key: k, Status: state.Succeeded, Rev: 3,
			ObjectVersion: "etag:" + emptyETag, ObjectETag: emptyETag, RecipeVersion: r.proc.RecipeVersion(),
			ManifestKey: r.proc.Keys().Manifest(k), DurationMS: int64(50 + i%450), CreatedAt: updated, UpdatedAt: updated,
			History: []state.Transition{{At: updated, RequestID: "seed", To: state.Processing}, {At: updated, RequestID: "seed", From: state.Processing, To: state.Succeeded}}}
		if i%10 == 0 {
			rec.Status, rec.Reason, rec.ManifestKey = state.Quarantined, "corrupt", ""
		}
		return rec
	}
	parallel(t, n, 32, func(i int) error {
		if _, err := r.env.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(r.staging), Key: aws.String(key(i))}); err != nil {
			return err
		}
		if i%10 == 0 {
			return nil
		}
		_, err := r.env.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(r.output), Key: aws.String(r.proc.Keys().Manifest(key(i)))})
		return err
	})
	parallel(t, (n+24)/25, 8, func(b int) error {
		var writes []ddbtypes.WriteRequest
		for i := b * 25; i < min(n, b*25+25); i++ {
			item, err := attributevalue.MarshalMap(record(i))
			if err != nil {
				return err
			}
			writes = append(writes, ddbtypes.WriteRequest{PutRequest: &ddbtypes.PutRequest{Item: item}})
		}
		req := map[string][]ddbtypes.WriteRequest{r.table: writes}
		for len(req) > 0 {
			out, err := r.env.DDB.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: req})
			if err != nil {
				return err
			}
			req = out.UnprocessedItems
		}
		return nil
	})
}

// parallel runs f(0..n-1) on workers goroutines and fails the test at the first error.
func parallel(t *testing.T, n, workers int, f func(i int) error) {
	t.Helper()
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		errs = make([]error, workers)
	)
	for w := range workers {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n && errs[w] == nil; i = int(next.Add(1) - 1) {
				errs[w] = f(i)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}
