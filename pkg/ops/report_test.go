package ops

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/sluice-dev/sluice/pkg/state"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func sampleRecords() []state.Record {
	var recs []state.Record
	for i := range 17 {
		recs = append(recs, state.Record{Key: fmt.Sprint("uploads/ok-", i), Status: state.Succeeded, DurationMS: int64(100 + 10*i)})
	}
	for i, reason := range []string{"corrupt", "corrupt", "too_large", "unsupported_type", "corrupt", "max_attempts", "empty", "too_many_pixels"} {
		recs = append(recs, state.Record{Key: fmt.Sprint("uploads/bad-", i), Status: state.Quarantined, Reason: reason, DurationMS: int64(20 + i)})
	}
	recs = append(recs,
		state.Record{Key: "uploads/flaky", Status: state.Failed, Attempts: 2},
		state.Record{Key: "uploads/busy", Status: state.Processing},
		state.Record{Key: "uploads/gone", Status: state.Deleted})
	return recs
}

func buildReport(recs []state.Record) Report {
	var b reportBuilder
	for _, r := range recs {
		b.add(r)
	}
	return b.report()
}

func TestBuildReport(t *testing.T) {
	r := buildReport(sampleRecords())
	if r.Records != 28 || len(r.TopReasons) != 5 || r.TopReasons[0] != (ReasonCount{"corrupt", 3}) {
		t.Fatalf("report %+v", r)
	}
	if want := 17.0 / 26; r.SuccessRate != want {
		t.Errorf("success rate %v, want %v", r.SuccessRate, want)
	}
	// 25 durations: 20..27 and 100..260; nearest rank p50 = 13th = 140, p95 = 24th = 250.
	if r.P50MS != 140 || r.P95MS != 250 {
		t.Errorf("p50 %d p95 %d, want 140 and 250", r.P50MS, r.P95MS)
	}
	if empty := buildReport(nil); empty.SuccessRate != 0 || empty.P95MS != 0 {
		t.Errorf("empty report %+v", empty)
	}
}

// Durations are kept to three significant figures, so a table's histogram stays small.
func TestReportDurationsKeepThreeFigures(t *testing.T) {
	for ms, want := range map[int64]int64{7: 7, 999: 999, 1000: 1000, 1234: 1230, 98765: 98700, 899999: 899000} {
		if got := threeFigures(ms); got != want {
			t.Errorf("threeFigures(%d) = %d, want %d", ms, got, want)
		}
	}
	var b reportBuilder
	for ms := range int64(100000) {
		b.add(state.Record{Status: state.Succeeded, DurationMS: ms + 1})
	}
	if len(b.durations) > 3000 { // about 900 per decade
		t.Errorf("%d distinct durations kept for 100,000 records", len(b.durations))
	}
	if r := b.report(); r.P50MS != 50000 || r.P95MS != 95000 {
		t.Errorf("p50 %d p95 %d, want 50000 and 95000", r.P50MS, r.P95MS)
	}
}

// The report's three formats, golden-tested (go test ./pkg/ops -run Golden -update rewrites them).
func TestReportGolden(t *testing.T) {
	r := buildReport(sampleRecords())
	for _, format := range []string{FormatTable, FormatJSON, FormatCSV} {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			if err := r.Write(&buf, format); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "report."+format)
			if *update {
				if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf.Bytes(), want) {
				t.Errorf("%s report differs from %s:\n%s", format, golden, buf.String())
			}
		})
	}
	if err := r.Write(&bytes.Buffer{}, "xml"); err == nil {
		t.Error("an unknown format was accepted")
	}
}
