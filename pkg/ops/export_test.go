package ops

import "time"

// SetClock replaces o's clock: tests use it to judge records as a later run would.
func SetClock(o *Ops, now func() time.Time) { o.now = now }
