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

// Events reach the processor through SQS: the queue's visibility timeout is at least six times
// the function timeout, poison messages go to a dead-letter queue after more receives than the
// processor's attempt limit, and only failed messages are retried (ReportBatchItemFailures).
func TestTemplateBuffersEventsWithADeadLetterQueue(t *testing.T) {
	doc := loadTemplate(t)
	timeout := dig(t, doc, "Globals", "Function", "Timeout").(int)
	queue := dig(t, doc, "Resources", "UploadQueue", "Properties")
	if vt := dig(t, queue, "VisibilityTimeout").(int); vt < 6*timeout {
		t.Errorf("UploadQueue VisibilityTimeout %d < 6 × function timeout %d", vt, timeout)
	}
	if dlq := dig(t, queue, "RedrivePolicy", "deadLetterTargetArn"); dlq != "UploadDeadLetterQueue.Arn" {
		t.Errorf("RedrivePolicy.deadLetterTargetArn = %v, want the dead-letter queue", dlq)
	}
	if r := dig(t, queue, "RedrivePolicy", "maxReceiveCount"); r != "MaxReceiveCount" {
		t.Errorf("maxReceiveCount = %v, want the MaxReceiveCount parameter", r)
	}
	maxReceive := dig(t, doc, "Parameters", "MaxReceiveCount", "Default").(int)
	maxAttempts := dig(t, doc, "Parameters", "MaxAttempts", "Default").(int)
	if maxReceive <= maxAttempts {
		t.Errorf("MaxReceiveCount %d must exceed MaxAttempts %d: the delivery after the last attempt quarantines the file", maxReceive, maxAttempts)
	}
	ev := dig(t, doc, "Resources", "ProcessorFunction", "Properties", "Events", "Uploads")
	if dig(t, ev, "Type") != "SQS" || dig(t, ev, "Properties", "Queue") != "UploadQueue.Arn" {
		t.Errorf("the processor's event source is %v, want the upload queue", ev)
	}
	if rt := dig(t, ev, "Properties", "FunctionResponseTypes").([]any); len(rt) != 1 || rt[0] != "ReportBatchItemFailures" {
		t.Errorf("FunctionResponseTypes = %v, want [ReportBatchItemFailures]", rt)
	}
}

// The staging bucket sends creations and removals under the upload prefix, and only those, to
// the queue; the prefix cannot match sluice's own output, temp or quarantine keys.
func TestTemplateNotifiesCreationsAndRemovalsUnderTheUploadPrefix(t *testing.T) {
	doc := loadTemplate(t)
	prefix := dig(t, doc, "Parameters", "UploadPrefix", "Default").(string)
	cfg, err := processor.LoadConfig(func(k string) string {
		return map[string]string{"STATE_TABLE": "t", "OUTPUT_BUCKET": "o", "QUARANTINE_BUCKET": "q"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, own := range []string{cfg.OutputPrefix, cfg.TempPrefix, cfg.QuarantinePrefix} {
		if strings.HasPrefix(own, prefix) || strings.HasPrefix(prefix, own) {
			t.Errorf("upload prefix %q overlaps sluice's own prefix %q", prefix, own)
		}
	}
	confs := dig(t, doc, "Resources", "StagingBucket", "Properties", "NotificationConfiguration", "QueueConfigurations").([]any)
	events := map[string]bool{}
	for _, c := range confs {
		if q := dig(t, c, "Queue"); q != "UploadQueue.Arn" {
			t.Errorf("notification to %v, want the upload queue", q)
		}
		rules := dig(t, c, "Filter", "S3Key", "Rules").([]any)
		if len(rules) != 1 || dig(t, rules[0], "Name") != "prefix" || dig(t, rules[0], "Value") != "UploadPrefix" {
			t.Errorf("notification filter %v, want prefix = UploadPrefix", rules)
		}
		events[dig(t, c, "Event").(string)] = true
	}
	if len(events) != 2 || !events["s3:ObjectCreated:*"] || !events["s3:ObjectRemoved:*"] {
		t.Errorf("notified events %v, want s3:ObjectCreated:* and s3:ObjectRemoved:*", events)
	}
}
