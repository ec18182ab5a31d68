package ops

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strconv"

	"github.com/sluice-dev/sluice/pkg/state"
	"github.com/sluice-dev/sluice/pkg/termtext"
)

// Report summarises the state table: how many files stand where, the success rate, the top
// quarantine reasons and how long processing took.
type Report struct {
	Records     int           `json:"records"`
	ByStatus    []StatusCount `json:"by_status"`
	SuccessRate float64       `json:"success_rate"` // SUCCEEDED / (SUCCEEDED + QUARANTINED + FAILED)
	TopReasons  []ReasonCount `json:"top_reasons"`  // quarantine reasons, most frequent first (at most 5)
	P50MS       int64         `json:"duration_p50_ms"`
	P95MS       int64         `json:"duration_p95_ms"`
}

// StatusCount is the number of records in one status.
type StatusCount struct {
	Status state.Status `json:"status"`
	Count  int          `json:"count"`
}

// ReasonCount is the number of quarantined records with one reason.
type ReasonCount struct {
	Reason string `json:"reason"`
	Count  int    `json:"count"`
}

// reportFields are the attributes a report reads of each record.
var reportFields = []string{"status", "reason", "duration_ms"}

// Report scans the state table and summarises it as it goes: three attributes of each record
// are read (a projection) and added to counters, so its memory does not grow with the table.
func (o *Ops) Report(ctx context.Context) (Report, error) {
	var b reportBuilder
	err := o.states.Scan(ctx, state.Read{Fields: reportFields, Segments: o.Segments}, func(r state.Record) error {
		b.add(r)
		return nil
	})
	return b.report(), err
}

// reportBuilder aggregates records into a Report one at a time, in memory bounded by the number
// of statuses, reasons and distinct durations (kept to three significant figures), not of
// records. The zero value is ready.
type reportBuilder struct {
	records   int
	statuses  map[state.Status]int
	reasons   map[string]int
	durations map[int64]int // rounded duration → records
}

// add counts one record.
func (b *reportBuilder) add(rec state.Record) {
	if rec.Status == "" {
		return // not a source's record: an operator's checkpoint (state.SaveCheckpoint)
	}
	if b.statuses == nil {
		b.statuses, b.reasons, b.durations = map[state.Status]int{}, map[string]int{}, map[int64]int{}
	}
	b.records++
	b.statuses[rec.Status]++
	if rec.Status == state.Quarantined {
		b.reasons[rec.Reason]++
	}
	if rec.DurationMS > 0 && rec.Finished() {
		b.durations[threeFigures(rec.DurationMS)]++
	}
}

// report is the summary of what was added.
func (b *reportBuilder) report() Report {
	r := Report{Records: b.records}
	for s, n := range b.statuses {
		r.ByStatus = append(r.ByStatus, StatusCount{s, n})
	}
	sort.Slice(r.ByStatus, func(i, j int) bool { return r.ByStatus[i].Status < r.ByStatus[j].Status })
	for reason, n := range b.reasons {
		r.TopReasons = append(r.TopReasons, ReasonCount{reason, n})
	}
	sort.Slice(r.TopReasons, func(i, j int) bool {
		a, b := r.TopReasons[i], r.TopReasons[j]
		return a.Count > b.Count || (a.Count == b.Count && a.Reason < b.Reason)
	})
	r.TopReasons = r.TopReasons[:min(len(r.TopReasons), 5)]
	if ended := b.statuses[state.Succeeded] + b.statuses[state.Quarantined] + b.statuses[state.Failed]; ended > 0 {
		r.SuccessRate = float64(b.statuses[state.Succeeded]) / float64(ended)
	}
	r.P50MS, r.P95MS = percentile(b.durations, 50), percentile(b.durations, 95)
	return r
}

// threeFigures rounds ms down to three significant figures (exact below a second), which keeps
// the histogram of a whole table small and its percentiles within 1 %.
func threeFigures(ms int64) int64 {
	unit := int64(1)
	for ms/unit >= 1000 {
		unit *= 10
	}
	return ms / unit * unit
}

// percentile is the nearest-rank percentile of a histogram (value → count); 0 for none.
func percentile(hist map[int64]int, p int) int64 {
	n := 0
	for _, c := range hist {
		n += c
	}
	if n == 0 {
		return 0
	}
	rank := max((p*n+99)/100, 1) // ceil(p/100 · n)
	values := slices.Sorted(maps.Keys(hist))
	for _, v := range values {
		if rank -= hist[v]; rank <= 0 {
			return v
		}
	}
	return values[len(values)-1]
}

// Formats Write understands.
const (
	FormatTable = "table"
	FormatJSON  = "json"
	FormatCSV   = "csv"
)

// Write prints the report as a table, JSON or CSV (one metric,value row per figure).
func (r Report) Write(w io.Writer, format string) error {
	switch format {
	case FormatJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	case FormatCSV, FormatTable:
		rows := r.rows()
		if format == FormatCSV {
			cw := csv.NewWriter(w)
			if err := cw.WriteAll(append([][]string{{"metric", "value"}}, rows...)); err != nil {
				return err
			}
			return cw.Error()
		}
		return termtext.Table(w, []string{"metric", "value"}, rows)
	}
	return fmt.Errorf("report format %q: want table, json or csv", format)
}

func (r Report) rows() [][]string {
	rows := [][]string{{"records", strconv.Itoa(r.Records)}}
	for _, s := range r.ByStatus {
		rows = append(rows, []string{"status " + string(s.Status), strconv.Itoa(s.Count)})
	}
	rows = append(rows, []string{"success rate", strconv.FormatFloat(100*r.SuccessRate, 'f', 1, 64) + "%"})
	for _, q := range r.TopReasons {
		rows = append(rows, []string{"quarantined " + q.Reason, strconv.Itoa(q.Count)})
	}
	return append(rows,
		[]string{"duration p50 ms", strconv.FormatInt(r.P50MS, 10)},
		[]string{"duration p95 ms", strconv.FormatInt(r.P95MS, 10)})
}

// VersionReport is the report of what one version of a recipe made.
type VersionReport struct {
	Version string `json:"recipe_version"`
	Report
	OutputBytes int64 `json:"output_bytes"` // the published outputs' bytes
}

// recipeReportFields are the attributes a recipe report reads of each record.
var recipeReportFields = []string{"status", "reason", "duration_ms", "recipe_name", "recipe_version", "outputs"}

// RecipeReport summarises, version by version (a canary beside its baseline), the records the
// recipe name made, in one scan; memory grows with the versions, not the records.
func (o *Ops) RecipeReport(ctx context.Context, name string) ([]VersionReport, error) {
	builders := map[string]*reportBuilder{}
	bytes := map[string]int64{}
	err := o.states.Scan(ctx, state.Read{Fields: recipeReportFields, Segments: o.Segments}, func(r state.Record) error {
		if r.RecipeName != name {
			return nil
		}
		b := builders[r.RecipeVersion]
		if b == nil {
			b = &reportBuilder{}
			builders[r.RecipeVersion] = b
		}
		b.add(r)
		for _, out := range r.Outputs {
			bytes[r.RecipeVersion] += out.Size
		}
		return nil
	})
	out := make([]VersionReport, 0, len(builders))
	for _, v := range slices.Sorted(maps.Keys(builders)) {
		out = append(out, VersionReport{Version: v, Report: builders[v].report(), OutputBytes: bytes[v]})
	}
	return out, err
}
