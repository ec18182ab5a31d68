package processor_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sluice-dev/sluice/pkg/failure"
	"github.com/sluice-dev/sluice/pkg/metrics"
	"github.com/sluice-dev/sluice/pkg/ops"
	"github.com/sluice-dev/sluice/pkg/processor"
	"github.com/sluice-dev/sluice/pkg/recipe"
	"github.com/sluice-dev/sluice/pkg/records"
	"github.com/sluice-dev/sluice/pkg/state"
	"github.com/sluice-dev/sluice/pkg/storage"
	"github.com/sluice-dev/sluice/pkg/testenv"
	"github.com/sluice-dev/sluice/pkg/trigger"
)

// ordersSchema is the rows' schema of the records recipes here.
const ordersSchema = `{"type":"object","required":["id","amount"],"additionalProperties":false,
	"properties":{"id":{"type":"integer","minimum":1},"amount":{"type":"number"},"note":{"type":"string"}}}`

// routedRig is a processor configured by RECIPES_JSON, its metrics kept.
func routedRig(t *testing.T, recipes string) (*rig, *bytes.Buffer) {
	t.Helper()
	env := testenv.Open(t)
	r := &rig{env: env, staging: env.Bucket(t), output: env.Bucket(t), quar: env.Bucket(t), table: env.Table(t, state.TableDefinition)}
	cfg, err := processor.LoadConfig(func(k string) string {
		return map[string]string{"STATE_TABLE": r.table, "OUTPUT_BUCKET": r.output, "QUARANTINE_BUCKET": r.quar, "RECIPES_JSON": recipes}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	r.cfg = cfg
	r.build(t)
	var emf bytes.Buffer
	r.proc, err = processor.Build(context.Background(), cfg, env.S3, env.DDB, slog.New(slog.NewJSONHandler(io.Discard, nil)), metrics.New(&emf, "processor"))
	if err != nil {
		t.Fatal(err)
	}
	return r, &emf
}

func (r *rig) manifestOf(t *testing.T, key string) processor.Manifest {
	t.Helper()
	m, err := processor.ReadManifest(r.get(t, r.output, r.proc.Keys().Manifest(key)))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func outputNamed(m processor.Manifest, name string) (state.Output, bool) {
	for _, o := range m.Outputs {
		if o.Name == name {
			return o, true
		}
	}
	return state.Output{}, false
}

// TestMixedUploadsRouteToTheirRecipes: uploads under several prefixes go to their recipes
// (image by prefix and type, records by glob, passthrough by prefix and type); a file a match's
// type refuses, and one no match takes, are skipped and counted; state, manifest and metrics
// carry each recipe's name and version.
func TestMixedUploadsRouteToTheirRecipes(t *testing.T) {
	r, emf := routedRig(t, `{"recipes":[
		{"name":"photos","kind":"image","match":{"prefix":"photos/","types":["image/*"]},
		 "image":{"renditions":[{"name":"thumb","mode":"fill","width":64,"height":64}]}},
		{"name":"orders","kind":"records","match":{"glob":"orders/**/*.csv"},
		 "records":{"input":{"format":"csv"},"schema":`+ordersSchema+`,"output":{"format":"jsonl"},"max_bad_rows":0.4}},
		{"name":"events","kind":"records","match":{"prefix":"logs/","types":["text/*"]},
		 "records":{"input":{"format":"jsonl"},"schema":`+ordersSchema+`,"output":{"format":"jsonl","gzip":true},"max_bad_rows":0}},
		{"name":"tables","kind":"records","match":{"prefix":"tables/"},
		 "records":{"input":{"format":"jsonl"},"schema":`+ordersSchema+`,"output":{"format":"parquet"},"max_bad_rows":0}},
		{"name":"docs","kind":"passthrough","match":{"prefix":"docs/","types":["application/pdf"]}}]}`)
	ctx := context.Background()
	if err := r.proc.StoreRecipes(ctx); err != nil {
		t.Fatal(err)
	}
	csv := "id,amount,note\n1,9.5,ok\n2,x,\n3,4,\"two\nlines\"\n0,1,\n5,6,last\n"
	pdf := []byte("%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n")
	uploads := map[string][]byte{
		"photos/a.jpg":          grayJPEG(t, 120, 90),
		"photos/notes.txt":      []byte("not a picture"),
		"orders/2026/12/07.csv": []byte(csv),
		"logs/app.jsonl":        []byte(`{"id":1,"amount":2}` + "\n" + `{"id":2, "amount":3.25}` + "\n"),
		"docs/spec.pdf":         pdf,
		"tables/t.jsonl":        []byte(`{"id":1,"amount":2,"note":"n"}` + "\n" + `{"id":2,"amount":0.5}` + "\n"),
		"misc/x.bin":            {1, 2, 3},
	}
	for k, b := range uploads {
		r.upload(t, k, b, nil)
	}
	want := map[string]processor.Outcome{
		"photos/a.jpg": processor.Succeeded, "orders/2026/12/07.csv": processor.Succeeded, "logs/app.jsonl": processor.Succeeded,
		"docs/spec.pdf": processor.Succeeded, "photos/notes.txt": processor.Skipped, "misc/x.bin": processor.Skipped,
		"tables/t.jsonl": processor.Succeeded,
	}
	for k, outcome := range want {
		if res := r.proc.Process(ctx, "req-"+k, r.event(k)); res.Outcome != outcome {
			t.Fatalf("%s: %+v, want %s", k, res, outcome)
		}
	}
	if n := strings.Count(emf.String(), `"Unmatched":1`); n != 2 {
		t.Errorf("%d objects counted as unmatched, want 2", n)
	}
	for k, name := range map[string]string{"photos/a.jpg": "photos", "orders/2026/12/07.csv": "orders", "logs/app.jsonl": "events", "docs/spec.pdf": "docs", "tables/t.jsonl": "tables"} {
		m := r.manifestOf(t, k)
		rec, _, err := r.states.Get(ctx, state.ID(r.staging, k))
		if err != nil || m.Recipe != name || rec.RecipeName != name || rec.RecipeVersion != m.RecipeVersion || !r.proc.Current(k, m.RecipeVersion) {
			t.Errorf("%s: manifest recipe %q %s, record %q %s (%v), want %q", k, m.Recipe, m.RecipeVersion, rec.RecipeName, rec.RecipeVersion, err, name)
		}
		if !strings.Contains(emf.String(), `"Recipe":"`+name+`","RecipeVersion":"`+m.RecipeVersion+`"`) {
			t.Errorf("%s: no metrics carry recipe %s %s", k, name, m.RecipeVersion)
		}
	}

	m := r.manifestOf(t, "orders/2026/12/07.csv")
	if m.Records == nil || *m.Records != (records.Summary{RowsIn: 5, Valid: 3, Invalid: 2}) {
		t.Fatalf("records summary %+v", m.Records)
	}
	rows, _ := outputNamed(m, "rows")
	if got := string(r.get(t, r.output, rows.Key)); got != `{"id":1,"amount":9.5,"note":"ok"}`+"\n"+`{"id":3,"amount":4,"note":"two\nlines"}`+"\n"+`{"id":5,"amount":6,"note":"last"}`+"\n" {
		t.Fatalf("rows:\n%s", got)
	}
	if sum := sha256.Sum256(r.get(t, r.output, rows.Key)); hex.EncodeToString(sum[:]) != rows.SHA256 {
		t.Error("the rows' checksum is not the manifest's")
	}
	rej, _ := outputNamed(m, "rejected")
	if rej.Bucket != r.quar || !r.proc.Keys().IsRejected(rej.Key) {
		t.Fatalf("the rejected rows are at s3://%s/%s, not beside the quarantine entry", rej.Bucket, rej.Key)
	}
	var bad []records.Rejected
	for line := range strings.Lines(string(r.get(t, r.quar, rej.Key))) {
		var b records.Rejected
		if err := json.Unmarshal([]byte(line), &b); err != nil {
			t.Fatal(err)
		}
		bad = append(bad, b)
	}
	if len(bad) != 2 || bad[0].Line != 3 || bad[0].Path != "/amount" || bad[1].Line != 6 || bad[1].Path != "/id" ||
		bad[1].Offset != int64(strings.Index(csv, "0,1,")) || bad[0].Reason == "" {
		t.Fatalf("rejected rows %+v", bad)
	}

	events := r.manifestOf(t, "logs/app.jsonl")
	if out, _ := outputNamed(events, "rows"); !strings.HasSuffix(out.Key, "/rows.jsonl.gz") || events.Records.Valid != 2 {
		t.Fatalf("events: %+v", events)
	}
	if out, _ := outputNamed(r.manifestOf(t, "tables/t.jsonl"), "rows"); !strings.HasSuffix(out.Key, "/rows.parquet") || !bytes.HasPrefix(r.get(t, r.output, out.Key), []byte("PAR1")) {
		t.Fatalf("tables: %+v", out)
	}
	doc, _ := outputNamed(r.manifestOf(t, "docs/spec.pdf"), "file")
	if got := r.get(t, r.output, doc.Key); !bytes.Equal(got, pdf) || !strings.HasSuffix(doc.Key, "/file.pdf") {
		t.Fatalf("passthrough published %q at %s", got, doc.Key)
	}
	if head, err := r.objects.Head(ctx, r.output, doc.Key); err != nil || head.ContentType != "application/pdf" {
		t.Fatalf("passthrough output: %+v %v", head, err)
	}

	// Each published file is made again, from its stored recipe, byte for byte.
	for _, k := range []string{"photos/a.jpg", "orders/2026/12/07.csv", "logs/app.jsonl", "docs/spec.pdf", "tables/t.jsonl"} {
		rp, err := r.proc.Replay(ctx, k, "")
		if err != nil || !rp.Same || len(rp.Outputs) == 0 {
			t.Errorf("replay %s: %+v %v", k, rp, err)
		}
	}
	// A manifest whose outputs are not what the recipe makes is caught.
	m.Outputs[0].SHA256 = strings.Repeat("0", 64)
	body, _ := json.Marshal(m)
	if _, err := r.objects.Put(ctx, storage.Put{Bucket: r.output, Key: r.proc.Keys().Manifest("orders/2026/12/07.csv"), Body: body, ContentType: "application/json"}); err != nil {
		t.Fatal(err)
	}
	if rp, err := r.proc.Replay(ctx, "orders/2026/12/07.csv", ""); err != nil || rp.Same {
		t.Errorf("replay of a tampered manifest: %+v %v", rp, err)
	}
}

// TestBadRowGateQuarantinesWithCounts: more bad rows than max_bad_rows quarantines the file as
// too_many_bad_rows, the counts in the reason and the report, the bad rows' list beside it;
// nothing is published.
func TestBadRowGateQuarantinesWithCounts(t *testing.T) {
	r, _ := routedRig(t, `{"recipes":[{"name":"orders","kind":"records",
		"records":{"input":{"format":"csv"},"schema":`+ordersSchema+`,"output":{"format":"jsonl"},"max_bad_rows":0.1}}]}`)
	ctx := context.Background()
	r.upload(t, "in/bad.csv", []byte("id,amount\n1,2\nx,2\n3,y\n4,5\n"), nil)
	res := r.proc.Process(ctx, "req", r.event("in/bad.csv"))
	if res.Outcome != processor.Quarantined || res.Reason != string(failure.TooManyBadRows) || !strings.Contains(res.Detail, "2 of 4 rows") {
		t.Fatalf("%+v", res)
	}
	rec, _, _ := r.states.Get(ctx, state.ID(r.staging, "in/bad.csv"))
	_, report := r.proc.Keys().Quarantine("in/bad.csv", rec.QuarantineGen)
	var rep processor.Report
	if err := json.Unmarshal(r.get(t, r.quar, report), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Records == nil || *rep.Records != (records.Summary{RowsIn: 4, Valid: 2, Invalid: 2}) || rep.RejectedRows != r.proc.Keys().Rejected("in/bad.csv", rec.QuarantineGen) {
		t.Fatalf("report %+v", rep)
	}
	if got := strings.Count(string(r.get(t, r.quar, rep.RejectedRows)), "\n"); got != 2 {
		t.Fatalf("%d rejected rows kept, want 2", got)
	}
	if _, err := r.objects.Head(ctx, r.output, r.proc.Keys().Manifest("in/bad.csv")); err == nil {
		t.Fatal("a quarantined file was published")
	}
	left, err := r.objects.Head(ctx, r.output, r.proc.Keys().Temp(rec.QuarantineGen, "in/bad.csv", "rejected", "jsonl"))
	if err == nil {
		t.Fatalf("the temp list was left behind: %+v", left)
	}
}

// TestUnmatchedQuarantinedAsNoRecipe: with "unmatched":"quarantine", a file no recipe takes is
// quarantined as no_recipe, with its detected type in the reason.
func TestUnmatchedQuarantinedAsNoRecipe(t *testing.T) {
	r, _ := routedRig(t, `{"unmatched":"quarantine","recipes":[{"name":"docs","kind":"passthrough","match":{"types":["application/pdf"]}}]}`)
	r.upload(t, "x/readme.txt", []byte("hello"), nil)
	res := r.proc.Process(context.Background(), "req", r.event("x/readme.txt"))
	if res.Outcome != processor.Quarantined || res.Reason != string(failure.NoRecipe) || !strings.Contains(res.Detail, "text/plain") {
		t.Fatalf("%+v", res)
	}
}

// TestLargeRecordsOutputIsStreamedInParts: an output over one part goes up as a multipart
// upload, verified by its composite checksum, and is byte for byte what the recipe makes; it is
// published by one copy, or (over the one-request copy limit, made small here) by a copy in
// parts, and either way HEAD tells its whole SHA-256, which the reconciler checks.
func TestLargeRecordsOutputIsStreamedInParts(t *testing.T) {
	spec := `{"input":{"format":"csv"},"schema":` + ordersSchema + `,"output":{"format":"jsonl"},"max_bad_rows":0}`
	r, _ := routedRig(t, `{"recipes":[{"name":"orders","kind":"records","records":`+spec+`}]}`)
	var in bytes.Buffer
	in.WriteString("id,amount,note\n")
	for i := 1; in.Len() < 12<<20; i++ {
		fmt.Fprintf(&in, "%d,%d.%02d,row %d of a file big enough for two parts\n", i, i%1000, i%100, i)
	}
	parsed, err := recipe.ParseRecords([]byte(spec))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := records.Compile(parsed)
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if _, err := plan.Run(bytes.NewReader(in.Bytes()), &want, io.Discard); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(want.Bytes())
	for _, c := range []struct {
		key               string
		maxCopy, copyPart int64
	}{{"big/one-copy.csv", storage.MaxCopyBytes, storage.CopyPartBytes}, {"big/copied-in-parts.csv", 10 << 20, 5 << 20}} {
		t.Run(c.key, func(t *testing.T) {
			defer func(a, b int64) { storage.MaxCopyBytes, storage.CopyPartBytes = a, b }(storage.MaxCopyBytes, storage.CopyPartBytes)
			storage.MaxCopyBytes, storage.CopyPartBytes = c.maxCopy, c.copyPart
			r.upload(t, c.key, in.Bytes(), nil)
			if res := r.proc.Process(context.Background(), "req", r.event(c.key)); res.Outcome != processor.Succeeded {
				t.Fatalf("%+v", res)
			}
			rows, _ := outputNamed(r.manifestOf(t, c.key), "rows")
			if rows.Size != int64(want.Len()) || rows.SHA256 != hex.EncodeToString(sum[:]) || !bytes.Equal(r.get(t, r.output, rows.Key), want.Bytes()) {
				t.Fatalf("published %d bytes (sha256 %s), want %d", rows.Size, rows.SHA256, want.Len())
			}
			head, err := r.objects.Head(context.Background(), r.output, rows.Key)
			if err != nil || head.SHA256 != rows.SHA256 || head.ContentType != "application/x-ndjson" {
				t.Fatalf("HEAD of %s: %+v (%v), want sha256 %s", rows.Key, head, err, rows.SHA256)
			}
		})
	}
}

// TestCanaryPicksTheSameKeysOnEveryRun: a canary at 10 % renders the keys its stable hash picks
// with its version, the rest with the baseline's, the same on a second processor (a second run);
// a canary output replays from its stored recipe; the recipe report counts each version apart.
func TestCanaryPicksTheSameKeysOnEveryRun(t *testing.T) {
	const recipes = `{"recipes":[{"name":"photos","kind":"image",
		"image":{"renditions":[{"name":"thumb","mode":"fill","width":32,"height":32,"format":"jpeg"}]},
		"canary":{"percent":10,"image":{"renditions":[{"name":"thumb","mode":"fill","width":32,"height":32,"format":"jpeg","quality":95}]}}}]}`
	r, _ := routedRig(t, recipes)
	ctx := context.Background()
	if err := r.proc.StoreRecipes(ctx); err != nil {
		t.Fatal(err)
	}
	baseline, canary, ok := r.proc.Canary("photos")
	if !ok || canary == "" || canary == baseline {
		t.Fatalf("versions %s %s %v", baseline, canary, ok)
	}
	img := grayJPEG(t, 40, 40)
	first := map[string]string{}
	picked := 0
	for i := range 60 {
		k := fmt.Sprintf("in/%02d.jpg", i)
		r.upload(t, k, img, nil)
		if res := r.proc.Process(ctx, "req", r.event(k)); res.Outcome != processor.Succeeded {
			t.Fatalf("%s: %+v", k, res)
		}
		first[k] = r.manifestOf(t, k).RecipeVersion
		if first[k] == canary {
			picked++
		}
		if want := (recipe.Canary{Percent: 10}).Picks(k); (first[k] == canary) != want || !r.proc.Current(k, first[k]) {
			t.Errorf("%s made with %s; picked %v", k, first[k], want)
		}
	}
	if picked == 0 || picked > 15 {
		t.Fatalf("the canary took %d of 60", picked)
	}
	again, _ := routedRig(t, recipes)
	for k, v := range first {
		again.upload(t, k, img, nil)
		if res := again.proc.Process(ctx, "req", again.event(k)); res.Outcome != processor.Succeeded || again.manifestOf(t, k).RecipeVersion != v {
			t.Errorf("%s: a second run made it with %s, the first with %s", k, again.manifestOf(t, k).RecipeVersion, v)
		}
	}
	for k, v := range first {
		if v == canary {
			if rp, err := r.proc.Replay(ctx, k, ""); err != nil || !rp.Same || rp.RecipeVersion != canary {
				t.Errorf("replay of canary output %s: %+v %v", k, rp, err)
			}
			break
		}
	}
	vs, err := ops.New(r.cfg, r.objects, r.states, r.proc).RecipeReport(ctx, "photos")
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, v := range vs {
		counts[v.Version] = v.Records
		if v.OutputBytes == 0 {
			t.Errorf("version %s: no output bytes", v.Version)
		}
	}
	if len(vs) != 2 || counts[canary] != picked || counts[baseline] != 60-picked {
		t.Fatalf("report %+v, want %d canary and %d baseline", vs, picked, 60-picked)
	}
}

// TestRejectedRowsFollowTheirGeneration: a published records file's list of rejected rows, in
// the quarantine bucket, is an output of its generation: the reconciler keeps it (and judges it
// orphaned once nothing publishes or keeps it), a reprocess of a new version replaces it, and a
// removal deletes it with the rest.
func TestRejectedRowsFollowTheirGeneration(t *testing.T) {
	r, _ := routedRig(t, `{"recipes":[{"name":"orders","kind":"records","records":{"input":{"format":"csv"},
		"schema":`+ordersSchema+`,"output":{"format":"jsonl"},"max_bad_rows":0.5}}]}`)
	ctx := context.Background()
	const key = "orders/a.csv"
	rejectedOf := func() state.Output {
		out, ok := outputNamed(r.manifestOf(t, key), "rejected")
		if !ok {
			t.Fatal("no rejected rows listed")
		}
		return out
	}
	r.upload(t, key, []byte("id,amount\n1,2\nx,3\n"), nil)
	if res := r.proc.Process(ctx, "v1", r.event(key)); res.Outcome != processor.Succeeded {
		t.Fatalf("%+v", res)
	}
	first := rejectedOf()
	time.Sleep(1100 * time.Millisecond) // S3 times are to the second: the list is older than the run
	o := ops.New(r.cfg, r.objects, r.states, r.proc)
	if findings, err := o.Reconcile(ctx, r.staging, "orders/"); err != nil || len(findings) != 0 {
		t.Fatalf("reconcile of a published records file: %+v %v", findings, err)
	}

	r.upload(t, key, []byte("id,amount\n1,2\ny,4\n5,6\n"), nil)
	if res := r.proc.Process(ctx, "v2", r.event(key)); res.Outcome != processor.Succeeded {
		t.Fatalf("%+v", res)
	}
	second := rejectedOf()
	if _, err := r.objects.Head(ctx, r.quar, first.Key); !errors.Is(err, storage.ErrNotFound) || second.Key == first.Key {
		t.Fatalf("the superseded list %s is still there (%v)", first.Key, err)
	}

	// A list no record lists or keeps (a worker that died after writing it) is judged orphaned.
	strayGen := strings.Repeat("ab", 12)
	stray := r.proc.Keys().Rejected(key, strayGen)
	head, err := r.objects.Head(ctx, r.quar, second.Key)
	if err != nil {
		t.Fatal(err)
	}
	meta := maps.Clone(head.Metadata)
	meta["sluice-generation"] = strayGen
	if _, err := r.objects.Copy(ctx, storage.Copy{SrcBucket: r.quar, SrcKey: second.Key, DstBucket: r.quar, DstKey: stray, Metadata: meta}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	findings, err := o.Reconcile(ctx, r.staging, "orders/")
	if err != nil || len(findings) != 1 || findings[0].Key != stray || findings[0].Kind != ops.OrphanedQuarantine {
		t.Fatalf("reconcile with a stray list: %+v %v", findings, err)
	}

	if _, err := r.env.S3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(r.staging), Key: aws.String(key)}); err != nil {
		t.Fatal(err)
	}
	removal := r.event(key)
	removal.Action, removal.Name = trigger.Removed, "ObjectRemoved:Delete"
	if res := r.proc.Process(ctx, "rm", removal); res.Outcome != processor.Removed {
		t.Fatalf("%+v", res)
	}
	if _, err := r.objects.Head(ctx, r.quar, second.Key); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("the removal left the list %s (%v)", second.Key, err)
	}
}
