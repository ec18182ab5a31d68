package ops

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
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

// Report scans the state table and summarises it.
func (o *Ops) Report(ctx context.Context) (Report, error) {
	var recs []state.Record
	err := o.states.Scan(ctx, func(r state.Record) error {
		recs = append(recs, r)
		return nil
	})
	return BuildReport(recs), err
}

// BuildReport summarises records.
func BuildReport(recs []state.Record) Report {
	r := Report{Records: len(recs)}
	statuses := map[state.Status]int{}
	reasons := map[string]int{}
	var durations []int64
	for _, rec := range recs {
		statuses[rec.Status]++
		if rec.Status == state.Quarantined {
			reasons[rec.Reason]++
		}
		if rec.DurationMS > 0 && rec.Finished() {
			durations = append(durations, rec.DurationMS)
		}
	}
	for s, n := range statuses {
		r.ByStatus = append(r.ByStatus, StatusCount{s, n})
	}
	sort.Slice(r.ByStatus, func(i, j int) bool { return r.ByStatus[i].Status < r.ByStatus[j].Status })
	for reason, n := range reasons {
		r.TopReasons = append(r.TopReasons, ReasonCount{reason, n})
	}
	sort.Slice(r.TopReasons, func(i, j int) bool {
		a, b := r.TopReasons[i], r.TopReasons[j]
		return a.Count > b.Count || (a.Count == b.Count && a.Reason < b.Reason)
	})
	r.TopReasons = r.TopReasons[:min(len(r.TopReasons), 5)]
	if ended := statuses[state.Succeeded] + statuses[state.Quarantined] + statuses[state.Failed]; ended > 0 {
		r.SuccessRate = float64(statuses[state.Succeeded]) / float64(ended)
	}
	slices.Sort(durations)
	r.P50MS, r.P95MS = percentile(durations, 50), percentile(durations, 95)
	return r
}

// percentile is the nearest-rank percentile of sorted values; 0 for none.
func percentile(sorted []int64, p int) int64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := (p*len(sorted) + 99) / 100 // ceil(p/100 · n)
	return sorted[max(rank, 1)-1]
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
