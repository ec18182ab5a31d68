package announce

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"github.com/sluice-dev/sluice/pkg/state"
)

// Printer announces by writing each event, as EventBridge would deliver it to a rule's target
// (source, detail-type, detail), as one JSON line: what `sluice local serve` shows.
type Printer struct {
	mu sync.Mutex
	w  io.Writer
}

// NewPrinter prints events to w.
func NewPrinter(w io.Writer) *Printer { return &Printer{w: w} }

// Announce prints one line per record that holds an outcome.
func (p *Printer) Announce(_ context.Context, recs []state.Record) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, rec := range recs {
		d, ok := DetailOf(rec)
		if !ok {
			continue
		}
		detail, err := json.Marshal(d)
		if err == nil {
			err = WriteLine(p.w, Source, DetailType(rec.Status), detail)
		}
		if err != nil {
			return fmt.Errorf("print the event of %s: %w", rec.ID, err)
		}
	}
	return nil
}

// WriteLine writes one event as a rule's target receives it (source, detail-type, detail), as
// one JSON line: the printed form of every local announcement.
func WriteLine(w io.Writer, source, detailType string, detail json.RawMessage) error {
	line, err := json.Marshal(struct {
		Source     string          `json:"source"`
		DetailType string          `json:"detail-type"`
		Detail     json.RawMessage `json:"detail"`
	}{source, detailType, detail})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", line)
	return err
}
