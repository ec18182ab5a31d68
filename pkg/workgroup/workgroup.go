// Package workgroup runs goroutines whose panics do not end the process. A panic in one of a
// Group's goroutines is caught there and raised again in the goroutine that Waits, where the
// caller's own recover sees it: the processor's fails that one attempt, counts it, and the
// other messages of an SQS batch go on. A bare go statement, sync.WaitGroup.Go or errgroup would
// let the panic kill the process, and with it every message of the batch. That re-raise is all
// this package adds to sync.WaitGroup.
package workgroup

import (
	"fmt"
	"runtime/debug"
	"sync"
)

// Panic is a panic caught in a worker goroutine, with that goroutine's stack.
type Panic struct {
	Value any
	Stack []byte
}

func (p *Panic) Error() string { return fmt.Sprintf("panic in a worker goroutine: %v", p.Value) }

// Catch runs f and returns the panic it raised, or nil.
func Catch(f func()) (p *Panic) {
	defer func() {
		if v := recover(); v != nil {
			p = &Panic{Value: v, Stack: debug.Stack()}
		}
	}()
	f()
	return nil
}

// Group is a sync.WaitGroup whose goroutines' first panic is raised again by Wait.
type Group struct {
	wg    sync.WaitGroup
	mu    sync.Mutex
	first *Panic
}

// Go runs f in a goroutine of the group.
func (g *Group) Go(f func()) {
	g.wg.Go(func() {
		if p := Catch(f); p != nil {
			g.mu.Lock()
			if g.first == nil {
				g.first = p
			}
			g.mu.Unlock()
		}
	})
}

// Wait waits for every goroutine of the group, then raises the first panic among them, if any,
// in the caller's goroutine.
func (g *Group) Wait() {
	g.wg.Wait()
	if g.first != nil {
		panic(g.first)
	}
}
