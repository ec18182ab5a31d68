package ops

import (
	"slices"
	"testing"
)

// Objects finish out of order; the checkpoint only ever names a key up to which all are done,
// and names each such key in order.
func TestWatermarkAdvancesOverContiguousHandledKeys(t *testing.T) {
	var got []string
	w := newWatermark(func(k string) { got = append(got, k) })
	done := make([]func(), 5)
	for i, k := range []string{"a", "b", "c", "d", "e"} {
		done[i] = w.add(k)
	}
	for _, i := range []int{2, 0, 1, 4} {
		done[i]()
	}
	if want := []string{"a", "c"}; !slices.Equal(got, want) {
		t.Fatalf("checkpoints %q, want %q (d is not done)", got, want)
	}
	done[3]()
	if want := []string{"a", "c", "e"}; !slices.Equal(got, want) || len(w.pending) != 0 {
		t.Fatalf("checkpoints %q (pending %v), want %q", got, w.pending, want)
	}
}
