package cli_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/creack/pty"

	"github.com/sluice-dev/sluice/pkg/state"
	"github.com/sluice-dev/sluice/pkg/testenv"
)

// buildCLI builds infra/sluice once per test binary.
func buildCLI(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sluice")
	cmd := exec.Command("go", "build", "-o", bin, "../../infra/sluice")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func jpegBytes(t *testing.T, w, h int) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, image.NewGray(image.Rect(0, 0, w, h)), nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// ansi matches terminal escape sequences.
var ansi = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]`)

// The backfill's live progress bar, checked in a real terminal (a pty): it shows the counters,
// the rate and the ETA, redraws in place, and the run ends with the counts table.
func TestBackfillProgressBarInATerminal(t *testing.T) {
	env := testenv.Open(t)
	staging, output, quar := env.Bucket(t), env.Bucket(t), env.Bucket(t)
	table := env.Table(t, state.TableDefinition)
	const n = 6
	for i := range n {
		key := fmt.Sprintf("uploads/tty/%d.jpg", i)
		if _, err := env.S3.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(staging), Key: aws.String(key), Body: bytes.NewReader(jpegBytes(t, 400+i, 300))}); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(buildCLI(t), "backfill", "--staging-bucket", staging, "--table", table,
		"--output-bucket", output, "--quarantine-bucket", quar, "--concurrency", "1")
	cmd.Env = os.Environ()
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 160})
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(&out, tty)
		done <- err
	}()
	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()
	select {
	case err := <-waitErr:
		if err != nil {
			t.Fatalf("sluice backfill: %v\n%s", err, out.String())
		}
	case <-time.After(2 * time.Minute):
		_ = cmd.Process.Kill()
		t.Fatalf("sluice backfill did not finish\n%s", out.String())
	}
	if err := <-done; err != nil && !errors.Is(err, syscall.EIO) { // EIO: the terminal closed
		t.Fatal(err)
	}
	raw := out.String()
	plain := ansi.ReplaceAllString(raw, "")
	for _, want := range []string{"backfill", fmt.Sprintf("%d/%d", n, n), fmt.Sprintf("done %d", n), "skipped 0", "/s", "ETA"} {
		if !strings.Contains(plain, want) {
			t.Errorf("the terminal output lacks %q:\n%s", want, plain)
		}
	}
	if !ansi.MatchString(raw) {
		t.Error("no escape sequences: the bar did not redraw in place")
	}
	if !regexp.MustCompile(`done\s+│\s+` + fmt.Sprint(n) + `\s+│`).MatchString(plain) {
		t.Errorf("no final table with done = %d:\n%s", n, plain)
	}
}

// redrive --dlq moves every dead letter back to the processing queue, through the real SDK
// configured from the environment (SQS has no local server here: a protocol fake stands in).
func TestRedriveDLQMovesDeadLettersBack(t *testing.T) {
	fake := testenv.NewSQS(t)
	main, dlq := fake.Queue("processing"), fake.Queue("dead-letters")
	for i := range 7 {
		fake.Put(dlq, fmt.Sprintf(`{"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"uploads/%d.jpg"}}}]}`, i))
	}
	cmd := exec.Command(buildCLI(t), "redrive", "--dlq", "--queue-url", main, "--dlq-url", dlq, "--rate", "0")
	cmd.Env = append(os.Environ(), "AWS_ENDPOINT_URL_SQS="+strings.Split(main, "/123456789012/")[0],
		"AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_REGION=us-east-1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sluice redrive --dlq: %v\n%s", err, out)
	}
	if got := len(fake.Bodies(main)); got != 7 || len(fake.Bodies(dlq)) != 0 {
		t.Fatalf("main holds %d, dlq %d; output:\n%s", got, len(fake.Bodies(dlq)), out)
	}
	if !regexp.MustCompile(`done\s+│\s+7\s+│`).Match(out) {
		t.Errorf("no counts table with done = 7:\n%s", out)
	}
}

// doneAtLeast reports whether the last "done N" a progress bar printed has N ≥ n.
func doneAtLeast(bar string, n int) bool {
	m := regexp.MustCompile(`done (\d+) `).FindAllStringSubmatch(bar, -1)
	if m == nil {
		return false
	}
	last, _ := strconv.Atoi(m[len(m)-1][1])
	return last >= n
}

// Ctrl-C in a terminal stops a backfill cleanly (started objects finish, the counts are printed,
// exit status 0); the same command then does only the rest, and with --checkpoint does not even
// list again what it had done. A completed backfill removes its checkpoint.
func TestBackfillCtrlCThenResume(t *testing.T) {
	env := testenv.Open(t)
	staging, output, quar := env.Bucket(t), env.Bucket(t), env.Bucket(t)
	table := env.Table(t, state.TableDefinition)
	const n = 20
	for i := range n {
		key := fmt.Sprintf("uploads/int/%02d.jpg", i)
		if _, err := env.S3.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(staging), Key: aws.String(key), Body: bytes.NewReader(jpegBytes(t, 700, 500))}); err != nil {
			t.Fatal(err)
		}
	}
	bin := buildCLI(t)
	cp := filepath.Join(t.TempDir(), "backfill.checkpoint")
	args := []string{"backfill", "--staging-bucket", staging, "--table", table, "--output-bucket", output, "--quarantine-bucket", quar, "--concurrency", "1", "--checkpoint", cp}
	cmd := exec.Command(bin, args...)
	cmd.Env = os.Environ()
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 160})
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	var (
		out  bytes.Buffer
		sent bool
	)
	buf := make([]byte, 4096)
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		k, err := tty.Read(buf)
		out.Write(buf[:k])
		// Once the bar shows two or more done (frames may skip a count).
		if !sent && doneAtLeast(ansi.ReplaceAllString(out.String(), ""), 2) {
			if _, err := tty.Write([]byte{0x03}); err != nil { // Ctrl-C, through the terminal
				t.Fatal(err)
			}
			sent = true
		}
		if err != nil {
			break // the process is gone and the terminal closed
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("after Ctrl-C: %v\n%s", err, out.String())
	}
	plain := ansi.ReplaceAllString(out.String(), "")
	m := regexp.MustCompile(`done\s+│\s+(\d+)\s+│`).FindStringSubmatch(plain)
	if !sent || m == nil || !strings.Contains(plain, "backfill stopped; run the same command again to resume") {
		t.Fatalf("no clean stop (Ctrl-C sent: %v):\n%s", sent, plain)
	}
	first := 0
	fmt.Sscan(m[1], &first)
	if first < 2 || first >= n {
		t.Fatalf("stopped after %d of %d", first, n)
	}
	again, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("resume: %v\n%s", err, again)
	}
	for _, want := range []string{fmt.Sprintf(`listed\s+│\s+%d\s+│`, n-first), fmt.Sprintf(`done\s+│\s+%d\s+│`, n-first), `skipped\s+│\s+0\s+│`} {
		if !regexp.MustCompile(want).Match(again) {
			t.Errorf("resumed run lacks %s:\n%s", want, again)
		}
	}
	if _, err := os.Stat(cp); !os.IsNotExist(err) {
		t.Errorf("the completed backfill left its checkpoint: %v", err)
	}
	third, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil || !regexp.MustCompile(fmt.Sprintf(`skipped\s+│\s+%d\s+│`, n)).Match(third) {
		t.Errorf("a run after completion: %v\n%s", err, third)
	}
}

// Keys are chosen by uploaders. Every human-facing output of the CLI (tables, status, errors)
// shows one holding terminal escapes (a clipboard write, a screen clear, a carriage return, a
// bidi override) as visible text; JSON output keeps it exact.
func TestHostileKeysPrintAsVisibleText(t *testing.T) {
	env := testenv.Open(t)
	staging, output, quar := env.Bucket(t), env.Bucket(t), env.Bucket(t)
	table := env.Table(t, state.TableDefinition)
	keys := []string{"uploads/\x1b]52;c;cm0gLXJmIH4K\x07a.jpg", "uploads/\x1b[2J\x1b[Hb.jpg", "uploads/c.jpg\rEVIL", "uploads/\u202egpj.exe"}
	for _, key := range keys {
		if _, err := env.S3.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(staging), Key: aws.String(key), Body: bytes.NewReader(jpegBytes(t, 300, 200))}); err != nil {
			t.Fatal(err)
		}
	}
	bin := buildCLI(t)
	sluice := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, append(args, "--staging-bucket", staging, "--table", table, "--output-bucket", output, "--quarantine-bucket", quar)...)
		cmd.Env = os.Environ()
		out, _ := cmd.CombinedOutput()
		return string(out)
	}
	unsafe := func(s string) int {
		return strings.IndexFunc(s, func(r rune) bool { return r == 0x1b || r == 0x07 || r == '\r' || r == 0x9b || r == '\u202e' })
	}
	for name, out := range map[string]string{
		"reconcile (never processed)": sluice("reconcile"),
		"status of a missing key":     sluice("status", keys[0]+"-missing"),
	} {
		if i := unsafe(out); i >= 0 {
			t.Errorf("%s: raw control character at byte %d:\n%q", name, i, out)
		}
		if !strings.Contains(out, `\x1b`) && !strings.Contains(out, `\r`) {
			t.Errorf("%s: the hostile keys are not shown as escapes:\n%q", name, out)
		}
	}
	sluice("backfill")
	for _, key := range keys {
		if out := sluice("status", key); unsafe(out) >= 0 || !strings.Contains(out, "SUCCEEDED") {
			t.Errorf("status %q:\n%q", key, out)
		}
	}
	if out := sluice("status", keys[0], "--json"); !strings.Contains(out, `\u001b]52`) {
		t.Errorf("JSON status does not keep the key exactly:\n%s", out)
	}
}

// --local acts on this checkout's stack only. With another checkout's stack answering on the
// default ports (this test's own stack stands in for it), a checkout whose stack is not running
// refuses, naming where its stack would answer; one whose env file records other ports is checked
// on those, never on the defaults.
func TestLocalNeverReachesAnotherCheckoutsStack(t *testing.T) {
	testenv.Open(t) // a stack answers on the configured ports
	bin := buildCLI(t)
	checkout := t.TempDir()
	if err := os.WriteFile(filepath.Join(checkout, "go.mod"), []byte("module other\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(checkout, "testdata"), 0o755); err != nil {
		t.Fatal(err)
	}
	envJSON, err := os.ReadFile("../../testdata/env.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(checkout, "testdata", "env.json"), envJSON, 0o644); err != nil {
		t.Fatal(err)
	}
	status := func() string {
		t.Helper()
		cmd := exec.Command(bin, "--local", "status", "uploads/sample.jpg")
		cmd.Dir = checkout
		var env []string
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "SLUICE_LOCAL_") {
				env = append(env, kv)
			}
		}
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Fatalf("--local in a checkout whose stack is not running answered:\n%s", out)
		}
		return string(out)
	}
	if out := status(); !strings.Contains(out, "is not running") || !strings.Contains(out, "http://127.0.0.1:9900") {
		t.Errorf("stopped stack: %s", out)
	}
	cache := filepath.Join(checkout, "infra", "local", ".cache")
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cache, "local.env"), []byte("SLUICE_LOCAL_S3_PORT=19900\nSLUICE_LOCAL_DYNAMODB_PORT=19902\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := status(); !strings.Contains(out, "http://127.0.0.1:19900") || strings.Contains(out, "no state record") {
		t.Errorf("a stack recorded on other ports: %s", out)
	}
}
