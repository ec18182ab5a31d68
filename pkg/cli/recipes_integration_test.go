package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sluice-dev/sluice/pkg/recipe"
	"github.com/sluice-dev/sluice/pkg/state"
	"github.com/sluice-dev/sluice/pkg/testenv"
)

// A canary's life through the CLI: a backfill renders the keys the canary picks with its
// version and the rest with the baseline's; `canary report` counts each; `replay` makes a
// published file again byte for byte; `canary promote` prints the configuration that makes the
// canary the recipe, and a backfill under it reprocesses exactly the baseline's files.
func TestCanaryReplayAndPromoteThroughTheCLI(t *testing.T) {
	env := testenv.Open(t)
	staging, output, quar := env.Bucket(t), env.Bucket(t), env.Bucket(t)
	table := env.Table(t, state.TableDefinition)
	const recipes = `{"recipes":[{"name":"photos","kind":"image",
		"image":{"renditions":[{"name":"thumb","mode":"fill","width":48,"height":48,"format":"jpeg"}]},
		"canary":{"percent":30,"image":{"renditions":[{"name":"thumb","mode":"fill","width":48,"height":48,"format":"jpeg","quality":95}]}}}]}`
	const n = 20
	picked := 0
	for i := range n {
		key := fmt.Sprintf("uploads/c/%02d.jpg", i)
		if (recipe.Canary{Percent: 30}).Picks(key) {
			picked++
		}
		if _, err := env.S3.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(staging), Key: aws.String(key), Body: bytes.NewReader(jpegBytes(t, 120+i, 90))}); err != nil {
			t.Fatal(err)
		}
	}
	if picked == 0 || picked == n {
		t.Fatalf("the canary picks %d of %d: choose other keys", picked, n)
	}
	bin := buildCLI(t)
	run := func(recipesJSON string, args ...string) (string, error) {
		cmd := exec.Command(bin, append(args, "--staging-bucket", staging, "--table", table, "--output-bucket", output, "--quarantine-bucket", quar)...)
		cmd.Env = append(os.Environ(), "RECIPES_JSON="+recipesJSON)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run(recipes, "backfill", "--concurrency", "2"); err != nil || !regexp.MustCompile(fmt.Sprintf(`done\s+│\s+%d\s+│`, n)).MatchString(out) {
		t.Fatalf("backfill: %v\n%s", err, out)
	}
	report, err := run(recipes, "canary", "report", "photos")
	if err != nil || !regexp.MustCompile(fmt.Sprintf(`(?m)^baseline .* %d records, 100.0%% succeeded`, n-picked)).MatchString(report) ||
		!regexp.MustCompile(fmt.Sprintf(`(?m)^canary .* %d records, 100.0%% succeeded`, picked)).MatchString(report) {
		t.Fatalf("canary report (%d picked): %v\n%s", picked, err, report)
	}
	if out, err := run(recipes, "replay", "uploads/c/03.jpg"); err != nil || !strings.Contains(out, "every output is byte for byte the published one") {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	promoted, err := run(recipes, "canary", "promote", "photos")
	if err != nil {
		t.Fatalf("promote: %v\n%s", err, promoted)
	}
	rs, err := recipe.ParseRoutes([]byte(promoted))
	if err != nil || rs.Recipes[0].Canary != nil || rs.Recipes[0].Image.Renditions[0].Quality != 95 {
		t.Fatalf("promoted configuration %v:\n%s", err, promoted)
	}
	compact, _ := json.Marshal(rs)
	out, err := run(string(compact), "backfill", "--concurrency", "2")
	if err != nil || !regexp.MustCompile(fmt.Sprintf(`done\s+│\s+%d\s+│`, n-picked)).MatchString(out) ||
		!regexp.MustCompile(fmt.Sprintf(`skipped\s+│\s+%d\s+│`, picked)).MatchString(out) {
		t.Fatalf("backfill after the promotion (%d picked): %v\n%s", picked, err, out)
	}
}
