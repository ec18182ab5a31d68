package termtext_test

import (
	"bytes"
	"strings"
	"testing"
	"unicode"

	"github.com/sluice-dev/sluice/pkg/termtext"
)

// Keys an uploader can choose, each of which would act on a terminal printed as it is.
var hostile = []string{
	"uploads/\x1b]52;c;cm0gLXJmIH4K\x07photo.jpg", // OSC 52: writes the clipboard
	"uploads/\x1b[2J\x1b[Hpwned.jpg",              // clears the screen, moves the cursor
	"uploads/ok.jpg\rEVIL",                        // overprints the line
	"uploads/\u202egpj.exe",                       // right-to-left override
	"uploads/\x9b31mred.jpg",                      // C1 CSI
	"uploads/\xff\xfe.jpg",                        // invalid UTF-8
	"uploads/tab\there.jpg",
	"uploads/line\nbreak.jpg",
}

func TestVisibleQuotesWhatATerminalWouldAct(t *testing.T) {
	for _, s := range hostile {
		v := termtext.Visible(s)
		for _, r := range v {
			if !unicode.IsGraphic(r) || r == '\u202e' {
				t.Errorf("Visible(%q) = %q still holds %U", s, v, r)
			}
		}
		if !strings.HasPrefix(v, `"`) {
			t.Errorf("Visible(%q) = %q: not quoted", s, v)
		}
	}
	for _, s := range []string{"uploads/plain photo.jpg", "uploads/café ünïcode 写真.jpg", "renditions/a/0123/large.jpg", ""} {
		if v := termtext.Visible(s); v != s {
			t.Errorf("Visible(%q) = %q, want it unchanged", s, v)
		}
	}
}

func TestTableShowsEveryCellVisibly(t *testing.T) {
	var out bytes.Buffer
	rows := make([][]string, len(hostile))
	for i, s := range hostile {
		rows[i] = []string{s, "error: " + s}
	}
	if err := termtext.Table(&out, []string{"key", "detail"}, rows); err != nil {
		t.Fatal(err)
	}
	if i := strings.IndexFunc(out.String(), func(r rune) bool {
		return (r < 0x20 && r != '\n') || (r >= 0x7f && r < 0xa0) || r == '\u202e' || r == unicode.ReplacementChar
	}); i >= 0 {
		t.Fatalf("the table holds a control character at byte %d:\n%q", i, out.String())
	}
}
