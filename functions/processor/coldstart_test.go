package main

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// BenchmarkColdStart measures the time from starting the function's process to its first poll
// of the Lambda runtime API (ready to take an invocation), against the smallest aws-lambda-go
// function in the same run. `make bench` runs it.
func BenchmarkColdStart(b *testing.B) {
	dir := b.TempDir()
	bins := map[string]string{"processor": ".", "baseline": "./testdata/baseline"}
	for name, pkg := range bins {
		out := filepath.Join(dir, name)
		cmd := exec.Command("go", "build", "-tags", "lambda.norpc,nodynamic", "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if msg, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("build %s: %v\n%s", name, err, msg)
		}
		bins[name] = out
	}
	// A runtime API that only notes the first poll.
	ready := make(chan struct{}, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case ready <- struct{}{}:
		default:
		}
		<-r.Context().Done() // hold the poll until the process is killed
	}), ReadHeaderTimeout: time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	// Lambda's environment: none of this machine's AWS_* settings (AWS_CA_BUNDLE, say, would make
	// the SDK parse a whole CA bundle at start), the function's own variables, a role's keys.
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	env = append(env, "AWS_LAMBDA_RUNTIME_API="+ln.Addr().String(), "AWS_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=x", "AWS_SECRET_ACCESS_KEY=x", "AWS_SESSION_TOKEN=x", "STATE_TABLE=t", "OUTPUT_BUCKET=o", "QUARANTINE_BUCKET=q")
	for _, name := range []string{"baseline", "processor"} {
		b.Run(name, func(b *testing.B) {
			var total time.Duration
			for range b.N {
				cmd := exec.Command(bins[name])
				cmd.Env = env
				start := time.Now()
				if err := cmd.Start(); err != nil {
					b.Fatal(err)
				}
				select {
				case <-ready:
					total += time.Since(start)
				case <-time.After(10 * time.Second):
					b.Fatal("no poll of the runtime API within 10 s")
				}
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
			}
			b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/start")
		})
	}
}
