package processor

import "time"

// SetClock replaces p's clock: tests use it to play a worker that runs after another's lease
// has expired.
func SetClock(p *Processor, now func() time.Time) { p.now = now }
