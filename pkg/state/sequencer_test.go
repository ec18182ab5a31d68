package state

import "testing"

// AWS: sequencers of one key's events are compared as hexadecimal strings after right-padding
// the shorter with zeros; the greater came later.
func TestSequencerBeforeRightPads(t *testing.T) {
	cases := []struct {
		a, b string
		want bool
	}{
		{"0062E9A2B1C3D4E5F5", "0062E9A2B1C3D4E5F6", true},
		{"0062E9A2B1C3D4E5F6", "0062E9A2B1C3D4E5F5", false},
		// Shorter but greater once right-padded: "0063" reads as 0063000..., after 0062E9...
		{"0062E9A2B1C3D4E5F6", "0063", true},
		{"0063", "0062E9A2B1C3D4E5F6", false},
		// Equal after padding: neither orders before the other.
		{"0062E9", "0062E900", false},
		{"0062E900", "0062E9", false},
		{"0062e9a2", "0062E9A3", true}, // case does not matter
		{"FF", "0100", false},          // right-padded: FF00 > 0100
		{"0100", "FF", true},
		{"", "0062E9", false},
		{"0062E9", "", false},
		{"not-hex", "0062E9", false},
	}
	for _, c := range cases {
		if got := SequencerBefore(c.a, c.b); got != c.want {
			t.Errorf("SequencerBefore(%q, %q) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}
