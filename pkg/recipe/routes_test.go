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
