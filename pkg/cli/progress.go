package cli

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/sluice-dev/sluice/pkg/ops"
	"github.com/sluice-dev/sluice/pkg/processor"
)

// progress shows a command's advance: a live bar on a terminal (done / skipped / quarantined /
// failed, rate, ETA), otherwise a line every few seconds, so logs of a piped run stay readable.
type progress struct {
	mu     sync.Mutex
	counts map[ops.Kind]int64
	total  int64

	bar *mpb.Bar
	p   *mpb.Progress

	w     io.Writer // plain mode
	every time.Duration
	last  time.Time
	name  string
}

func newProgress(w io.Writer, name string, terminal bool) *progress {
	pr := &progress{counts: map[ops.Kind]int64{}, w: w, every: 5 * time.Second, name: name}
	if !terminal {
		return pr
	}
	pr.p = mpb.New(mpb.WithOutput(w), mpb.WithWidth(32), mpb.WithRefreshRate(150*time.Millisecond), mpb.WithAutoRefresh())
	pr.bar = pr.p.AddBar(0,
		mpb.PrependDecorators(decor.Name(name+" "), decor.CountersNoUnit("%d/%d ")),
		mpb.AppendDecorators(
			decor.Any(func(decor.Statistics) string { return " " + pr.line() }),
			decor.AverageSpeed(0, "  %.1f/s"),
			decor.Name("  ETA "), decor.AverageETA(decor.ET_STYLE_GO),
		),
	)
	return pr
}

// line is the counters as words.
func (pr *progress) line() string {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return fmt.Sprintf("done %d  skipped %d  quarantined %d  failed %d",
		pr.counts[ops.KindDone], pr.counts[ops.KindSkipped], pr.counts[ops.KindQuarantined], pr.counts[ops.KindFailed])
}

// SetTotal implements ops.Progress.
func (pr *progress) SetTotal(n int64) {
	pr.mu.Lock()
	pr.total = n
	pr.mu.Unlock()
	if pr.bar != nil {
		pr.bar.SetTotal(n, false)
	}
}

// Finished implements ops.Progress.
func (pr *progress) Finished(k ops.Kind, _ string, _ processor.Result) {
	pr.mu.Lock()
	pr.counts[k]++
	n, total := pr.sum(), pr.total
	due := pr.bar == nil && time.Since(pr.last) >= pr.every
	if due {
		pr.last = time.Now()
	}
	pr.mu.Unlock()
	if pr.bar != nil {
		pr.bar.Increment()
		return
	}
	if due {
		fmt.Fprintf(pr.w, "%s %d/%d  %s\n", pr.name, n, total, pr.line())
	}
}

func (pr *progress) sum() (n int64) {
	for _, v := range pr.counts {
		n += v
	}
	return n
}

// Close ends the bar (complete, or where a stop left it) and waits for its last frame.
func (pr *progress) Close() {
	if pr.bar == nil {
		return
	}
	pr.mu.Lock()
	n := pr.sum()
	pr.mu.Unlock()
	pr.bar.SetTotal(n, true)
	pr.p.Wait()
}
