package jpegscale

import (
	"sync"

	"github.com/sluice-dev/sluice/pkg/workgroup"
)

// scanWorkers decode a progressive image's single-component scans, one goroutine per component,
// each in stream order: scans of different components touch different coefficient arrays, so
// they run at the same time. A scan of several components waits until every queued scan is
// done and runs on the caller's goroutine.
type scanWorkers struct {
	queues  []chan *scanState
	pending sync.WaitGroup  // queued scans not yet decoded
	exited  workgroup.Group // worker goroutines

	mu     sync.Mutex
	err    error // the first error a worker met: a *workgroup.Panic is raised again by do and close
	closed bool
}

// workers starts the decoder's scan workers on first use.
func (d *decoder) workers() *scanWorkers {
	if d.par == nil {
		w := &scanWorkers{queues: make([]chan *scanState, len(d.comps))}
		for i := range w.queues {
			q := make(chan *scanState, 16)
			w.queues[i] = q
			w.exited.Go(func() {
				for s := range q {
					w.run(s)
				}
			})
		}
		d.par = w
	}
	return d.par
}

// run decodes one queued scan; a panic in it is kept as the workers' error, so the worker goes
// on draining its queue (nobody waits for ever) and the caller raises it again.
func (w *scanWorkers) run(s *scanState) {
	defer w.pending.Done()
	var err error
	if p := workgroup.Catch(func() { err = s.run() }); p != nil {
		err = p
	}
	if err != nil {
		w.fail(err)
	}
}

func (w *scanWorkers) fail(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.mu.Unlock()
}

// firstErr is the first error a worker met so far; a panic a worker met is raised again here,
// in the caller's goroutine.
func (w *scanWorkers) firstErr() error {
	w.mu.Lock()
	err := w.err
	w.mu.Unlock()
	if p, ok := err.(*workgroup.Panic); ok {
		panic(p)
	}
	return err
}

// do decodes s: on its component's worker, or here after the workers are idle.
func (w *scanWorkers) do(s *scanState) error {
	if err := w.firstErr(); err != nil {
		return err
	}
	if len(s.ci) == 1 {
		w.pending.Add(1)
		w.queues[s.ci[0]] <- s
		return nil
	}
	w.pending.Wait()
	if err := w.firstErr(); err != nil {
		return err
	}
	return s.run()
}

// close waits for every queued scan, stops the workers and returns the first error; closing
// again only returns it again.
func (w *scanWorkers) close() error {
	if w == nil {
		return nil
	}
	if !w.closed {
		w.closed = true
		for _, q := range w.queues {
			close(q)
		}
		w.exited.Wait()
	}
	return w.firstErr()
}
