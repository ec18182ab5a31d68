package recipe

import (
	"strings"
	"testing"
)

const recordsSpec = `{"input":{"format":"csv"},"schema":{"type":"object"},"output":{"format":"jsonl"},"max_bad_rows":0.01}`

func TestParseRoutesNamesTheEntryOfEachProblem(t *testing.T) {
	for _, c := range []struct{ doc, want string }{
		{`{"recipes":[{"name":"a","kind":"video"}]}`, `recipes[0] "a": kind: "video"`},
		{`{"recipes":[{"name":"a","kind":"records"}]}`, `recipes[0] "a": records: a records recipe needs`},
		{`{"recipes":[{"name":"a","kind":"passthrough","match":{"glob":"[x"}}]}`, `recipes[0] "a": match.glob`},
		{`{"recipes":[{"name":"a","kind":"passthrough","match":{"types":["pdf"]}}]}`, `recipes[0] "a": match.types[0]`},
		{`{"recipes":[{"name":"a","kind":"passthrough"},{"name":"b","kind":"passthrough"}]}`, `recipes[1] "b": never reached`},
		{`{"recipes":[{"name":"a","kind":"passthrough","match":{"prefix":"x/"}},{"name":"a","kind":"passthrough"}]}`, `recipes[1] "a": name: used twice`},
		{`{"recipes":[{"name":"o","kind":"records","records":{"input":{"format":"xml"}}}]}`, `recipes[0] "o": records: input.format`},
		{`{"recipes":[{"name":"i","kind":"image","image":{"jpeg_quality":0}}]}`, `recipes[0] "i": image: jpeg_quality`},
		{`{"recipes":[{"name":"a","kind":"passthrough","typo":1}]}`, `unknown field "typo"`},
		{`{"unmatched":"drop","recipes":[{"name":"a","kind":"passthrough"}]}`, `unmatched: "drop"`},
	} {
		_, err := ParseRoutes([]byte(c.doc))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.doc, err, c.want)
		}
	}
}

func TestRoutesMatchAndVersion(t *testing.T) {
	rs, err := ParseRoutes([]byte(`{"recipes":[
		{"name":"orders","kind":"records","match":{"glob":"orders/**/*.csv"},"records":` + recordsSpec + `},
		{"name":"photos","kind":"image","match":{"prefix":"photos/","types":["image/*"]},"image":{}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	o, p := rs.Recipes[0], rs.Recipes[1]
	if !o.Match.MatchesKey("orders/2026/12/a.csv") || o.Match.MatchesKey("orders/a.json") || o.Match.MatchesKey("x/orders/a.csv") {
		t.Error("glob")
	}
	if !p.Match.MatchesType("image/heic") || p.Match.MatchesType("text/plain") || !(Match{}).MatchesType("anything/else") {
		t.Error("types")
	}
	if p.Version() != Default().Version() {
		t.Error("an image entry's version is not its recipe's (RECIPE_JSON's versions would change)")
	}
	renamed := o
	renamed.Name, renamed.Match = "other", Match{}
	spaced, err := ParseRecords([]byte(strings.ReplaceAll(recordsSpec, `{"type":"object"}`, `{ "type" : "object" }`)))
	if err != nil {
		t.Fatal(err)
	}
	respaced := o
	respaced.Records = &spaced
	stricter := *o.Records
	stricter.MaxBadRows = 0
	changed := o
	changed.Records = &stricter
	if renamed.Version() != o.Version() || respaced.Version() != o.Version() || changed.Version() == o.Version() {
		t.Error("a records version must follow its settings only")
	}
}

// TestCanaryPicksAStableShare: the same keys on every run (the pick is a function of the key
// alone), about the share asked for, and a larger share keeps every key a smaller one picked.
func TestCanaryPicksAStableShare(t *testing.T) {
	const goldenPicks = 1953
	ten, twenty := Canary{Percent: 10}, Canary{Percent: 20}
	n := 0
	for i := range 20000 {
		key := "uploads/" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + "/" + string(rune(i))
		if ten.Picks(key) {
			n++
			if !twenty.Picks(key) {
				t.Fatalf("%q: picked at 10 %% but not at 20 %%", key)
			}
		}
	}
	// The pick is a function of the key alone: these keys give this count on every machine,
	// in every run (a change here changes which files existing canaries took).
	if n != goldenPicks {
		t.Fatalf("10 %% picked %d of 20,000, want %d", n, goldenPicks)
	}
	if !(Canary{Percent: 100}).Picks("any") || (Canary{Percent: 0.01}).Picks("uploads/a.jpg") && (Canary{Percent: 0.01}).Picks("uploads/b.jpg") {
		t.Error("bounds")
	}
}

func TestCanaryIsValidatedAndVersioned(t *testing.T) {
	rs, err := ParseRoutes([]byte(`{"recipes":[{"name":"photos","kind":"image","image":{},
		"canary":{"percent":10,"image":{"jpeg_quality":90}}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	e := rs.Recipes[0]
	if e.CanaryEntry().Version() == e.Version() || e.Promoted().Version() != e.CanaryEntry().Version() || e.Promoted().Canary != nil {
		t.Fatal("canary versions")
	}
	for doc, want := range map[string]string{
		`{"recipes":[{"name":"p","kind":"image","image":{},"canary":{"percent":0,"image":{"jpeg_quality":90}}}]}`: "canary.percent",
		`{"recipes":[{"name":"p","kind":"image","image":{},"canary":{"percent":5,"image":{}}}]}`:                  "nothing to try",
		`{"recipes":[{"name":"p","kind":"image","image":{},"canary":{"percent":5,"image":{"jpeg_quality":0}}}]}`:  "canary.image: jpeg_quality",
	} {
		if _, err := ParseRoutes([]byte(doc)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", doc, err, want)
		}
	}
}
