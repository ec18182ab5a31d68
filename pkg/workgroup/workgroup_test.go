package workgroup_test

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/sluice-dev/sluice/pkg/workgroup"
)

func TestWaitRaisesAWorkersPanicInTheWaiter(t *testing.T) {
	var g workgroup.Group
	var done atomic.Int32
	for i := range 4 {
		g.Go(func() {
			if i == 2 {
				panic("decoder bug")
			}
			done.Add(1)
		})
	}
	p := workgroup.Catch(g.Wait)
	if p == nil {
		t.Fatal("Wait returned after a worker panicked")
	}
	var inner *workgroup.Panic
	if !errors.As(p.Value.(error), &inner) || inner.Value != "decoder bug" || !strings.Contains(string(inner.Stack), "workgroup_test") {
		t.Fatalf("raised %#v, want the worker's panic with its stack", p.Value)
	}
	if done.Load() != 3 {
		t.Errorf("%d other workers finished, want all 3", done.Load())
	}
}

func TestWaitWithoutPanics(t *testing.T) {
	var g workgroup.Group
	var n atomic.Int32
	for range 8 {
		g.Go(func() { n.Add(1) })
	}
	g.Wait()
	if n.Load() != 8 {
		t.Fatalf("%d ran", n.Load())
	}
	if p := workgroup.Catch(func() {}); p != nil {
		t.Fatalf("Catch of a quiet function: %v", p)
	}
}
