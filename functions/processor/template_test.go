package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/sluice-dev/sluice/pkg/processor"
)

// loadTemplate parses template.yaml; CloudFormation's short tags (!Ref, !Sub, ...) parse as
// tagged nodes, which is all these checks need.
func loadTemplate(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("template.yaml: %v", err)
	}
	return doc
}

func dig(t *testing.T, v any, path ...string) any {
	t.Helper()
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("template.yaml: %s is not a mapping", p)
		}
		if v, ok = m[p]; !ok {
			t.Fatalf("template.yaml: missing %s", strings.Join(path, "."))
		}
	}
	return v
}

// The variables the template sets are exactly those the processor reads.
func TestTemplateSetsEveryVariableTheCodeReads(t *testing.T) {
	doc := loadTemplate(t)
	vars := dig(t, doc, "Resources", "ProcessorFunction", "Properties", "Environment", "Variables").(map[string]any)
	read := map[string]bool{"AWS_ENDPOINT_URL_S3": true, "AWS_ENDPOINT_URL_DYNAMODB": true} // read by the SDK and awsclient
	_, _ = processor.LoadConfig(func(k string) string { read[k] = true; return "" })
	var missing, unused []string
	for k := range read {
		if _, ok := vars[k]; !ok {
			missing = append(missing, k)
		}
	}
	for k := range vars {
		if !read[k] {
			unused = append(unused, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(unused)
	if len(missing)+len(unused) > 0 {
		t.Fatalf("template.yaml ProcessorFunction variables: missing %v, unused %v", missing, unused)
	}
}

// SAM's makefile build calls build-<LogicalId> with ARTIFACTS_DIR; it must produce bootstrap.
func TestMakefileBuildsTheFunctionForSAM(t *testing.T) {
	doc := loadTemplate(t)
	if m := dig(t, doc, "Resources", "ProcessorFunction", "Metadata", "BuildMethod"); m != "makefile" {
		t.Fatalf("BuildMethod = %v, want makefile", m)
	}
	if testing.Short() {
		t.Skip("builds the arm64 binary")
	}
	dir := t.TempDir()
	cmd := exec.Command("make", "-s", "-C", filepath.Join("..", ".."), "build-ProcessorFunction", "ARTIFACTS_DIR="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make build-ProcessorFunction: %v\n%s", err, out)
	}
	if st, err := os.Stat(filepath.Join(dir, "bootstrap")); err != nil || st.Size() == 0 {
		t.Fatalf("no bootstrap in ARTIFACTS_DIR: %v", err)
	}
}
