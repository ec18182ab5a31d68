package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/sluice-dev/sluice/pkg/processor"
	"github.com/sluice-dev/sluice/pkg/reconciler"
	"github.com/sluice-dev/sluice/pkg/tracing"
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

// The variables the template sets for each function are exactly those its code reads.
func TestTemplateSetsEveryVariableTheCodeReads(t *testing.T) {
	doc := loadTemplate(t)
	loaders := map[string]func(func(string) string){
		"ProcessorFunction": func(g func(string) string) {
			_, _ = processor.LoadConfig(g)
			_, _ = tracing.LoadConfig(g)
		},
		"ReconcilerFunction": func(g func(string) string) { _, _ = reconciler.LoadConfig(g) },
	}
	fns := resources(t, doc, "AWS::Serverless::Function")
	if len(fns) != len(loaders) {
		t.Fatalf("%d functions in the template, %d known here: add the new one's configuration loader", len(fns), len(loaders))
	}
	for id, load := range loaders {
		vars := dig(t, fns[id], "Properties", "Environment", "Variables").(map[string]any)
		read := map[string]bool{"AWS_ENDPOINT_URL_S3": true, "AWS_ENDPOINT_URL_DYNAMODB": true} // read by the SDK and awsclient
		load(func(k string) string { read[k] = true; return "" })
		for _, k := range []string{"AWS_REGION", "AWS_LAMBDA_FUNCTION_NAME"} {
			delete(read, k) // Lambda sets them (a template may not)
		}
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
			t.Errorf("template.yaml %s variables: missing %v, unused %v", id, missing, unused)
		}
	}
}

// bytesPerPixel is one job's peak memory per source pixel, for each pixel limit, rounded up
// from what make bench measures (TestPeakRSS: 7.1 for a 40 MP PNG, the case no reduced decode
// helps; 23–29 for an 8.3 MP HEIC; 70–72 for an 8.3 MP AVIF, across runs).
var bytesPerPixel = map[string]float64{"MaxPixels": 7.5, "MaxHeicPixels": 30, "MaxAvifPixels": 75}

// The smallest memory the template allows holds a job at the largest pixel count it allows by
// default, for each format's limit, with room for the runtime.
func TestTemplateMemoryCoversThePixelLimit(t *testing.T) {
	doc := loadTemplate(t)
	minMB := dig(t, doc, "Parameters", "MemorySize", "MinValue").(int)
	for param, bpp := range bytesPerPixel {
		maxPixels := dig(t, doc, "Parameters", param, "Default").(int)
		if need := bpp*float64(maxPixels)/(1<<20) + 64; float64(minMB) < need {
			t.Errorf("MemorySize MinValue %d MB < %.0f MB that a job at %s (%d pixels) needs", minMB, need, param, maxPixels)
		}
	}
}

// maxBinaryBytes is the budget for one function's bootstrap (issue: cold start and deploy size).
const maxBinaryBytes = 25_000_000

// SAM's makefile build calls build-<LogicalId> with ARTIFACTS_DIR; for every function it must
// produce bootstrap, and every function directory must be in the template.
func TestMakefileBuildsEveryFunctionForSAM(t *testing.T) {
	doc := loadTemplate(t)
	fns := resources(t, doc, "AWS::Serverless::Function")
	dirs, err := filepath.Glob(filepath.Join("..", "*", "main.go"))
	if err != nil || len(dirs) != len(fns) {
		t.Fatalf("%d function directories (%v), %d functions in the template", len(dirs), err, len(fns))
	}
	for id, fn := range fns {
		if m := dig(t, fn, "Metadata", "BuildMethod"); m != "makefile" {
			t.Errorf("%s: BuildMethod = %v, want makefile", id, m)
		}
		if testing.Short() {
			continue // builds the arm64 binaries
		}
		dir := t.TempDir()
		cmd := exec.Command("make", "-s", "-C", filepath.Join("..", ".."), "build-"+id, "ARTIFACTS_DIR="+dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("make build-%s: %v\n%s", id, err, out)
		}
		st, err := os.Stat(filepath.Join(dir, "bootstrap"))
		if err != nil || st.Size() == 0 {
			t.Fatalf("%s: no bootstrap in ARTIFACTS_DIR: %v", id, err)
		}
		if st.Size() > maxBinaryBytes {
			t.Errorf("%s: bootstrap is %.1f MB, over the %d MB budget", id, float64(st.Size())/1e6, maxBinaryBytes/1_000_000)
		}
		t.Logf("%s: bootstrap %.1f MB (linux/arm64, stripped)", id, float64(st.Size())/1e6)
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
	// Receives a message may need: its attempts, the delivery that quarantines it, and the busy
	// retries while another worker's lease runs (one lease: the timeout and two commit windows,
	// a retry every 10 s at the soonest).
	busy := (timeout + int(2*processor.DefaultCommitWindow.Seconds()) + 9) / 10
	if need := maxAttempts + 1 + busy; maxReceive < need {
		t.Errorf("MaxReceiveCount %d < %d: MaxAttempts %d, the quarantining delivery, and up to %d busy retries during one lease",
			maxReceive, need, maxAttempts, busy)
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

// resources returns the template's resources of one type, by logical id.
func resources(t *testing.T, doc map[string]any, typ string) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for id, r := range dig(t, doc, "Resources").(map[string]any) {
		if m := r.(map[string]any); m["Type"] == typ {
			out[id] = m
		}
	}
	return out
}

// statements lists every policy statement in the template (role policies, bucket and queue
// policies, trust policies), each with where it is.
func statements(t *testing.T, doc map[string]any) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	add := func(where string, policy any) {
		for i, s := range dig(t, policy, "Statement").([]any) {
			st, ok := s.(map[string]any)
			if !ok { // a conditional statement: !If [cond, statement, AWS::NoValue]
				alt := s.([]any)
				st = alt[1].(map[string]any)
			}
			out[fmt.Sprintf("%s[%d]", where, i)] = st
		}
	}
	for id, r := range resources(t, doc, "AWS::IAM::Role") {
		add(id+".AssumeRolePolicyDocument", dig(t, r, "Properties", "AssumeRolePolicyDocument"))
		for _, p := range dig(t, r, "Properties", "Policies").([]any) {
			add(id+"."+dig(t, p, "PolicyName").(string), dig(t, p, "PolicyDocument"))
		}
	}
	for _, typ := range []string{"AWS::S3::BucketPolicy", "AWS::SQS::QueuePolicy"} {
		for id, r := range resources(t, doc, typ) {
			add(id, dig(t, r, "Properties", "PolicyDocument"))
		}
	}
	return out
}

func list(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// scopedObjects is the only wildcard an Allow may carry: object keys under a named prefix of a
// named bucket ("${Bucket.Arn}/prefix/*").
var scopedObjects = regexp.MustCompile(`^\$\{[A-Za-z]+\.Arn\}/[^*]+\*$`)

// unscopable are the actions IAM cannot scope to a resource (the Service Authorization
// Reference lists no resource type for them): their statements must say "*".
var unscopable = map[string]bool{"xray:PutTraceSegments": true, "xray:PutTelemetryRecords": true, "xray:PutSpans": true, "xray:PutSpansForIndexing": true}

// Least privilege: functions use the template's own roles (so SAM attaches no managed policy),
// and no Allow statement has a wildcard action, or a wildcard resource other than the objects
// under one prefix of one bucket, except a statement of unscopable actions alone. (Deny
// statements may say "*": they take away.)
func TestTemplateIAMIsLeastPrivilege(t *testing.T) {
	doc := loadTemplate(t)
	for id, fn := range resources(t, doc, "AWS::Serverless::Function") {
		props := dig(t, fn, "Properties").(map[string]any)
		if _, ok := props["Role"]; !ok {
			t.Errorf("%s has no Role of its own: SAM would attach managed policies with wildcard resources", id)
		}
		if _, ok := props["Policies"]; ok {
			t.Errorf("%s has Policies: put its permissions on its role", id)
		}
	}
	sts := statements(t, doc)
	if len(sts) < 10 {
		t.Fatalf("found only %d policy statements; the walk is broken", len(sts))
	}
	for where, st := range sts {
		if st["Effect"] != "Allow" {
			continue
		}
		for _, a := range list(st["Action"]) {
			if strings.Contains(a, "*") {
				t.Errorf("%s allows wildcard action %q", where, a)
			}
		}
		if strings.HasSuffix(where, "AssumeRolePolicyDocument[0]") {
			continue // a trust policy names a principal, not resources
		}
		res := list(st["Resource"])
		if len(res) == 0 {
			t.Errorf("%s allows without naming a resource", where)
		}
		onlyUnscopable := true
		for _, a := range list(st["Action"]) {
			onlyUnscopable = onlyUnscopable && unscopable[a]
		}
		for _, r := range res {
			if strings.Contains(r, "*") && !scopedObjects.MatchString(r) && !(r == "*" && onlyUnscopable) {
				t.Errorf("%s allows wildcard resource %q", where, r)
			}
		}
	}
}

// Every bucket is encrypted, blocks public access and refuses plain HTTP; the staging bucket is
// versioned; temp objects expire; the table has point-in-time recovery, encryption and TTL.
func TestTemplateStorageIsHardened(t *testing.T) {
	doc := loadTemplate(t)
	tlsOnly := map[string]bool{}
	for id, st := range statements(t, doc) {
		cond, _ := st["Condition"].(map[string]any)
		b, _ := cond["Bool"].(map[string]any)
		if st["Effect"] == "Deny" && st["Principal"] == "*" && st["Action"] == "s3:*" && b["aws:SecureTransport"] == false {
			bucket := dig(t, doc, "Resources", strings.Split(id, "[")[0], "Properties", "Bucket").(string)
			tlsOnly[bucket] = true
		}
	}
	buckets := resources(t, doc, "AWS::S3::Bucket")
	if len(buckets) != 3 {
		t.Fatalf("%d buckets, want staging, output and quarantine", len(buckets))
	}
	for id, b := range buckets {
		props := dig(t, b, "Properties")
		rules := dig(t, props, "BucketEncryption", "ServerSideEncryptionConfiguration").([]any)
		if len(rules) == 0 || dig(t, rules[0], "ServerSideEncryptionByDefault", "SSEAlgorithm") == nil {
			t.Errorf("%s: no default encryption", id)
		}
		for _, k := range []string{"BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"} {
			if dig(t, props, "PublicAccessBlockConfiguration", k) != true {
				t.Errorf("%s: %s is not true", id, k)
			}
		}
		if !tlsOnly[id] {
			t.Errorf("%s: no bucket policy denies requests without TLS", id)
		}
	}
	if v := dig(t, buckets["StagingBucket"], "Properties", "VersioningConfiguration", "Status"); v != "Enabled" {
		t.Errorf("staging bucket versioning %v", v)
	}
	tempExpires := false
	for _, r := range dig(t, buckets["OutputBucket"], "Properties", "LifecycleConfiguration", "Rules").([]any) {
		if m := r.(map[string]any); m["Prefix"] == "tmp/" && m["ExpirationInDays"] == 1 && m["Status"] == "Enabled" {
			tempExpires = true
		}
	}
	if !tempExpires {
		t.Error("output bucket: no lifecycle rule expires tmp/ after a day")
	}
	table := dig(t, doc, "Resources", "StateTable", "Properties")
	if dig(t, table, "PointInTimeRecoverySpecification", "PointInTimeRecoveryEnabled") != true ||
		dig(t, table, "SSESpecification", "SSEEnabled") != true ||
		dig(t, table, "TimeToLiveSpecification", "AttributeName") != "expires_at" {
		t.Errorf("state table: %v", table)
	}
}

// Alarms watch the failure signals, and the stack says where everything is.
func TestTemplateObservabilityAndOutputs(t *testing.T) {
	doc := loadTemplate(t)
	watched := map[string]bool{}
	for _, a := range resources(t, doc, "AWS::CloudWatch::Alarm") {
		watched[dig(t, a, "Properties", "MetricName").(string)] = true
	}
	for _, m := range []string{"Errors", "Throttles", "ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage", "Quarantined"} {
		if !watched[m] {
			t.Errorf("no alarm on %s", m)
		}
	}
	dashboards := resources(t, doc, "AWS::CloudWatch::Dashboard")
	if len(dashboards) != 1 {
		t.Error("no dashboard")
	}
	for id, d := range dashboards {
		body := regexp.MustCompile(`\$\{[^}]+\}`).ReplaceAllString(fmt.Sprint(dig(t, d, "Properties", "DashboardBody")), "x")
		var parsed struct{ Widgets []any }
		if err := json.Unmarshal([]byte(body), &parsed); err != nil || len(parsed.Widgets) == 0 {
			t.Errorf("%s: the body is not a dashboard's JSON: %v", id, err)
		}
	}
	for id, fn := range resources(t, doc, "AWS::Serverless::Function") {
		group := dig(t, fn, "Properties", "LoggingConfig", "LogGroup").(string)
		if dig(t, doc, "Resources", group, "Properties", "RetentionInDays") != "LogRetentionDays" {
			t.Errorf("%s: log group %s has no retention", id, group)
		}
	}
	outputs := dig(t, doc, "Outputs").(map[string]any)
	for _, o := range []string{"StagingBucket", "OutputBucket", "QuarantineBucket", "StateTable", "UploadQueue", "DeadLetterQueue", "Dashboard"} {
		if _, ok := outputs[o]; !ok {
			t.Errorf("no output %s", o)
		}
	}
}

// samconfig.toml makes `sam deploy` work without questions: a stack name, the IAM capability the
// template's own roles need, and overrides only for parameters the template has.
func TestSamconfigMatchesTheTemplate(t *testing.T) {
	doc := loadTemplate(t)
	params := dig(t, doc, "Parameters").(map[string]any)
	b, err := os.ReadFile(filepath.Join("..", "..", "samconfig.toml"))
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, " = ")
		if ok && !strings.HasPrefix(k, "#") {
			values[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	if values["stack_name"] == "" || !strings.Contains(values["capabilities"], "CAPABILITY_IAM") {
		t.Errorf("samconfig.toml: stack_name %q, capabilities %q", values["stack_name"], values["capabilities"])
	}
	overrides, err := strconv.Unquote(values["parameter_overrides"])
	if err != nil {
		t.Fatalf("parameter_overrides: %v", err)
	}
	for _, kv := range strings.Fields(overrides) {
		name, value, _ := strings.Cut(kv, "=")
		if _, ok := params[name]; !ok {
			t.Errorf("samconfig.toml overrides %s, which template.yaml does not declare", name)
		}
		if def := fmt.Sprint(dig(t, params[name], "Default")); strconv.Quote(def) != value {
			t.Errorf("samconfig.toml sets %s=%s; the template's default is %q (keep them equal, or say why)", name, value, def)
		}
	}
	envVars, err := strconv.Unquote(values["env_vars"])
	if err != nil {
		t.Fatalf("env_vars: %v", err)
	}
	if _, err := os.Stat(filepath.Join("..", "..", envVars)); err != nil {
		t.Errorf("env_vars: %v", err)
	}
}

// A watermark read from S3 is readable by every function that renders (the processor, and the
// reconciler, which repairs by processing), on that object only: without the grant every cold
// start fails. Quarantined files expire by a lifecycle rule the deployer sets.
func TestTemplateGrantsTheWatermarkAndExpiresQuarantine(t *testing.T) {
	doc := loadTemplate(t)
	if _, ok := dig(t, doc, "Parameters").(map[string]any)["WatermarkObject"]; !ok {
		t.Fatal("no WatermarkObject parameter")
	}
	sts := statements(t, doc)
	for _, role := range []string{"ProcessorRole.processor", "ReconcilerRole.reconciler"} {
		granted := false
		for where, st := range sts {
			if strings.HasPrefix(where, role+"[") && st["Sid"] == "ReadTheWatermark" {
				res := list(st["Resource"])
				granted = len(res) == 1 && strings.HasSuffix(res[0], ":s3:::${WatermarkObject}") && slices.Contains(list(st["Action"]), "s3:GetObjectVersion")
			}
		}
		if !granted {
			t.Errorf("%s: no read of the watermark object (s3:GetObject and s3:GetObjectVersion on ${WatermarkObject})", role)
		}
	}
	rules := dig(t, resources(t, doc, "AWS::S3::Bucket")["QuarantineBucket"], "Properties", "LifecycleConfiguration", "Rules").([]any)
	expires := false
	for _, r := range rules {
		if m := r.(map[string]any); m["Id"] == "expire-quarantine" && m["Prefix"] == "quarantine/" {
			expires = true
		}
	}
	if !expires {
		t.Error("the quarantine bucket has no expiry rule for quarantine/")
	}
}

// S3 Batch Operations can backfill through the processor: a role only that service assumes,
// allowed to invoke the processor, list the staging bucket for a generated manifest, read and
// write manifests and write completion reports under their prefixes, and nothing else.
func TestTemplateLetsBatchOperationsInvokeTheProcessor(t *testing.T) {
	doc := loadTemplate(t)
	sts := statements(t, doc)
	trust := sts["BatchOperationsRole.AssumeRolePolicyDocument[0]"]
	if trust == nil || fmt.Sprint(dig(t, trust, "Principal", "Service")) != "batchoperations.s3.amazonaws.com" {
		t.Fatalf("BatchOperationsRole trust: %v", trust)
	}
	var actions []string
	for where, st := range sts {
		if strings.HasPrefix(where, "BatchOperationsRole.batch-backfill") {
			actions = append(actions, list(st["Action"])...)
		}
	}
	slices.Sort(actions)
	want := []string{"kms:Decrypt", "kms:GenerateDataKey", "lambda:InvokeFunction", "s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket", "s3:PutObject", "s3:PutObject"}
	if !slices.Equal(actions, want) {
		t.Errorf("BatchOperationsRole allows %v, want %v", actions, want)
	}
	if _, ok := dig(t, doc, "Outputs").(map[string]any)["BatchOperationsRole"]; !ok {
		t.Error("no BatchOperationsRole output for the operator's create-job")
	}
}

// Outcomes are announced on the deployment's bus only, by the two functions that commit them; an
// alarm watches failed announcements; the optional webhook retries for a day, then keeps what it
// could not deliver in its own dead-letter queue, which only its rule may write, and reads its
// secret from a NoEcho parameter (EventBridge's connection keeps it in Secrets Manager).
func TestTemplateAnnouncesOnItsOwnBus(t *testing.T) {
	doc := loadTemplate(t)
	sts := statements(t, doc)
	var putters []string
	for where, st := range sts {
		if !slices.Contains(list(st["Action"]), "events:PutEvents") {
			continue
		}
		putters = append(putters, strings.Split(where, ".")[0])
		if res := fmt.Sprint(st["Resource"]); !strings.Contains(res, "EventBus.Arn") || !strings.Contains(res, "event-bus/${EventBusName}") {
			t.Errorf("%s: PutEvents on %s, want the deployment's bus only", where, res)
		}
	}
	slices.Sort(putters)
	if !slices.Equal(putters, []string{"ProcessorRole", "ReconcilerRole"}) {
		t.Errorf("PutEvents granted to %v", putters)
	}
	for _, fn := range []string{"ProcessorFunction", "ReconcilerFunction"} {
		v := dig(t, doc, "Resources", fn, "Properties", "Environment", "Variables", "EVENT_BUS_NAME")
		if !strings.Contains(fmt.Sprint(v), "CreateEventBus") {
			t.Errorf("%s EVENT_BUS_NAME = %v, want the bus the template creates or names", fn, v)
		}
	}
	if m := dig(t, doc, "Resources", "AnnounceFailedAlarm", "Properties", "MetricName"); m != "AnnounceFailed" {
		t.Errorf("AnnounceFailedAlarm watches %v", m)
	}
	if dig(t, doc, "Parameters", "WebhookSecret", "NoEcho") != true {
		t.Error("WebhookSecret is not NoEcho")
	}
	target := dig(t, doc, "Resources", "WebhookRule", "Properties", "Targets").([]any)[0]
	if dig(t, target, "DeadLetterConfig", "Arn") == nil || dig(t, target, "RetryPolicy", "MaximumEventAgeInSeconds") != 86400 {
		t.Errorf("webhook target %v: want retries for a day and a dead-letter queue", target)
	}
	dlq := sts["WebhookDeadLetterQueuePolicy[0]"]
	if dlq == nil || dig(t, dlq, "Condition", "ArnEquals", "aws:SourceArn") != "WebhookRule.Arn" {
		t.Errorf("webhook dead-letter queue policy %v: want writes from the webhook rule only", dlq)
	}
	if a := list(dig(t, sts["WebhookRole.webhook[0]"], "Action")); !slices.Equal(a, []string{"events:InvokeApiDestination"}) {
		t.Errorf("webhook role allows %v", a)
	}
}

// With a distribution named, the two functions that commit outcomes may invalidate on it, and
// nothing else.
func TestTemplateInvalidatesOnlyTheNamedDistribution(t *testing.T) {
	doc := loadTemplate(t)
	var granted []string
	for where, st := range statements(t, doc) {
		if !slices.Contains(list(st["Action"]), "cloudfront:CreateInvalidation") {
			continue
		}
		granted = append(granted, strings.Split(where, ".")[0])
		if res := fmt.Sprint(st["Resource"]); !strings.HasSuffix(res, ":distribution/${CloudFrontDistributionId}") {
			t.Errorf("%s: CreateInvalidation on %s, want the named distribution only", where, res)
		}
	}
	slices.Sort(granted)
	if !slices.Equal(granted, []string{"ProcessorRole", "ReconcilerRole"}) {
		t.Errorf("CreateInvalidation granted to %v", granted)
	}
}

// The roles that process files (the processor's, the reconciler's) may stream outputs as
// multipart uploads, read their parts back when a checkpoint is resumed, and abort them, on the
// output and temp prefixes only; and the processor is told RECIPES_JSON.
func TestTemplateLetsRecordsStreamAndResume(t *testing.T) {
	doc := loadTemplate(t)
	for _, role := range []string{"ProcessorRole", "ReconcilerRole"} {
		found := false
		for where, st := range statements(t, doc) {
			if !strings.HasPrefix(where, role+".") || st["Sid"] != "WriteRenditionsAndTemp" {
				continue
			}
			found = true
			actions := list(st["Action"])
			for _, want := range []string{"s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"} {
				if !slices.Contains(actions, want) {
					t.Errorf("%s: %s lacks %s", role, where, want)
				}
			}
		}
		if !found {
			t.Errorf("%s has no WriteRenditionsAndTemp statement", role)
		}
	}
	env := dig(t, resources(t, doc, "AWS::Serverless::Function")["ProcessorFunction"], "Properties", "Environment", "Variables").(map[string]any)
	if _, ok := env["RECIPES_JSON"]; !ok {
		t.Error("the processor is not given RECIPES_JSON")
	}
}
