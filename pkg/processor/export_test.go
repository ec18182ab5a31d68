package processor

import "time"

// SetClock replaces p's clock: tests use it to play a worker that runs after another's lease
// has expired.
func SetClock(p *Processor, now func() time.Time) { p.now = now }

// SetMaxCopyBytes lowers the size above which quarantine writes the report alone (S3's 5 GiB).
func SetMaxCopyBytes(p *Processor, n int64) { p.maxCopyBytes = n }
