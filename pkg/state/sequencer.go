package state

import "strings"

// SequencerBefore reports whether S3 event sequencer a orders strictly before b. S3 gives the
// events of one key hexadecimal sequencers of varying length; its documentation compares them
// as strings after right-padding the shorter with zeros (so "0063" is after "0062E9A2…", and
// "0062E9" equals "0062E900"). An empty or malformed sequencer (a backfill, a redrive, a foreign
// producer) orders nothing, so the answer is false.
func SequencerBefore(a, b string) bool {
	if !isHex(a) || !isHex(b) {
		return false
	}
	a, b = strings.ToUpper(a), strings.ToUpper(b)
	if n := len(b) - len(a); n > 0 {
		a += strings.Repeat("0", n)
	} else if n < 0 {
		b += strings.Repeat("0", -n)
	}
	return a < b
}

func isHex(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
