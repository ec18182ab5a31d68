package localrun

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.yaml.in/yaml/v3"
)

// Function is what Lambda runs: a built bootstrap with the template's timeout, memory size and
// environment.
type Function struct {
	Bootstrap string
	Timeout   time.Duration
	MemoryMB  int
	Env       map[string]string
}

// BuildBootstrap builds the command in pkg (a folder under root, functions/processor say) as
// Lambda's bootstrap, for this machine (static, the tags the Makefile's Lambda build uses), into
// dir/<its name>/bootstrap, and returns its path.
func BuildBootstrap(ctx context.Context, root, pkg, dir string) (string, error) {
	name := filepath.Base(pkg)
	out := filepath.Join(dir, name, "bootstrap")
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", "lambda.norpc,nodynamic", "-trimpath", "-o", out, "./"+filepath.ToSlash(pkg))
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+runtime.GOOS, "GOARCH="+runtime.GOARCH)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s: %w\n%s", pkg, err, b)
	}
	return out, nil
}

// ProcessorFunction is the processor as SAM would run it: its timeout and memory size from
// template.yaml, its variables from testdata/env.json, the local stack's endpoints and keys
// (stackEnv) instead of the file's (which a Docker container needs), then overrides.
func ProcessorFunction(root, bootstrap string, stackEnv [][2]string, overrides map[string]string) (Function, error) {
	timeout, memory, err := templateFunction(filepath.Join(root, "template.yaml"), "ProcessorFunction")
	if err != nil {
		return Function{}, err
	}
	vars, err := functionVars(filepath.Join(root, "testdata", "env.json"), "ProcessorFunction")
	if err != nil {
		return Function{}, err
	}
	for _, kv := range stackEnv {
		vars[kv[0]] = kv[1]
	}
	for k, v := range overrides {
		vars[k] = v
	}
	return Function{Bootstrap: bootstrap, Timeout: timeout, MemoryMB: memory, Env: vars}, nil
}

// templateFunction reads a function's timeout (its own, else the Globals') and memory size (a
// number, or a !Ref to a parameter's default) from a SAM template.
func templateFunction(path, logicalID string) (time.Duration, int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, err
	}
	var t struct {
		Parameters map[string]struct {
			Default any `yaml:"Default"`
		} `yaml:"Parameters"`
		Globals struct {
			Function struct {
				Timeout    int `yaml:"Timeout"`
				MemorySize any `yaml:"MemorySize"`
			} `yaml:"Function"`
		} `yaml:"Globals"`
		Resources map[string]struct {
			Properties struct {
				Timeout    int `yaml:"Timeout"`
				MemorySize any `yaml:"MemorySize"`
			} `yaml:"Properties"`
		} `yaml:"Resources"`
	}
	if err := yaml.Unmarshal(b, &t); err != nil {
		return 0, 0, fmt.Errorf("%s: %w", path, err)
	}
	fn, ok := t.Resources[logicalID]
	if !ok {
		return 0, 0, fmt.Errorf("%s has no %s", path, logicalID)
	}
	timeout := cmpOr(fn.Properties.Timeout, t.Globals.Function.Timeout, 3) // Lambda's default: 3 s
	mem := fn.Properties.MemorySize
	if mem == nil {
		mem = t.Globals.Function.MemorySize
	}
	if ref, ok := mem.(string); ok { // !Ref Parameter
		mem = t.Parameters[ref].Default
	}
	memory, _ := mem.(int)
	return time.Duration(timeout) * time.Second, cmpOr(memory, 128), nil // Lambda's default: 128 MB
}

func cmpOr(vs ...int) int {
	for _, v := range vs {
		if v != 0 {
			return v
		}
	}
	return 0
}

// functionVars reads one function's variables from a `sam local invoke --env-vars` file.
func functionVars(path, logicalID string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var file map[string]map[string]string
	if err := json.Unmarshal(b, &file); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	vars, ok := file[logicalID]
	if !ok {
		return nil, fmt.Errorf("%s has no %q section", path, logicalID)
	}
	return vars, nil
}

// RIE is a function's bootstrap running under AWS's Lambda Runtime Interface Emulator: the real
// Runtime API, the function's timeout and memory size, invoked over HTTP as `sam local invoke`
// does inside its container.
type RIE struct {
	mu      sync.Mutex // one invocation at a time, as one execution environment takes them
	cmd     *exec.Cmd
	url     string
	reports chan string
	done    chan struct{}
	closing atomic.Bool  // Close began: what the dying processes say is not the function's
	initNS  atomic.Int64 // the function's init, from the emulator's INIT REPORT line
}

// StartRIE starts rieBinary with fn on a free loopback port. The function's and the emulator's
// output goes to log, line by line; REPORT lines are also kept for Invoke.
func StartRIE(ctx context.Context, rieBinary string, fn Function, log io.Writer) (*RIE, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	api, err := freeAddr() // the Runtime API's (9001 by default): emulators may run side by side
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(rieBinary, "--runtime-interface-emulator-address", addr, "--runtime-api-address", api, fn.Bootstrap)
	// Only what Lambda would give the function: not this shell's variables (AWS_CA_BUNDLE, say).
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"AWS_LAMBDA_FUNCTION_TIMEOUT=" + strconv.Itoa(int(fn.Timeout.Seconds())),
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=" + strconv.Itoa(fn.MemoryMB),
		"AWS_LAMBDA_FUNCTION_NAME=" + filepath.Base(filepath.Dir(fn.Bootstrap))}
	for k, v := range fn.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // Close stops the bootstrap with it
	r := &RIE{cmd: cmd, url: "http://" + addr + "/2015-03-31/functions/function/invocations", reports: make(chan string, 16), done: make(chan struct{})}
	go r.scan(pr, log)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", rieBinary, err)
	}
	go func() {
		_ = cmd.Wait()
		pw.Close()
		close(r.done)
	}()
	if err := waitListening(ctx, addr, r.done); err != nil {
		r.Close()
		return nil, fmt.Errorf("the emulator did not start: %w", err)
	}
	return r, nil
}

var logMu sync.Mutex

// scan copies the emulator's output to log and keeps its REPORT lines.
func (r *RIE) scan(out io.Reader, log io.Writer) {
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if r.closing.Load() {
			continue
		}
		if ms, ok := initReport(line); ok {
			r.initNS.Store(int64(ms * float64(time.Millisecond)))
		}
		if strings.HasPrefix(line, "REPORT ") {
			select {
			case r.reports <- line:
			default:
			}
		}
		logMu.Lock()
		fmt.Fprintln(log, line)
		logMu.Unlock()
	}
}

// initReport reads the emulator's "INIT REPORT(durationMs: 7.152000)": the function's init
// (process start to its first poll of the Runtime API), what Lambda reports as Init Duration. The
// REPORT line's own Init Duration covers only the emulator's part of it.
func initReport(line string) (float64, bool) {
	_, rest, ok := strings.Cut(line, "INIT REPORT(durationMs: ")
	if !ok {
		return 0, false
	}
	num, _, _ := strings.Cut(rest, ")")
	ms, err := strconv.ParseFloat(num, 64)
	return ms, err == nil
}

// InitDuration is the function's cold start as the emulator measured it (after the first
// invocation; 0 before).
func (r *RIE) InitDuration() time.Duration { return time.Duration(r.initNS.Load()) }

// FunctionError is an invocation that ended in the function's error, as Lambda reports it.
type FunctionError struct {
	Type, Message string
}

func (e *FunctionError) Error() string { return e.Type + ": " + e.Message }

// Invoke runs the function once on payload: its response (or FunctionError), and the
// emulator's REPORT line for the invocation.
func (r *RIE) Invoke(ctx context.Context, payload []byte) (resp json.RawMessage, report string, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url, bytes.NewReader(payload))
	if err != nil {
		return nil, "", err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("invoke: %w", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, "", fmt.Errorf("invoke: %w", err)
	}
	select { // it follows the answer at once; an invocation that failed has none
	case report = <-r.reports:
	case <-time.After(time.Second):
	}
	var fe struct {
		Type    string `json:"errorType"`
		Message string `json:"errorMessage"`
	}
	if json.Unmarshal(body, &fe) == nil && fe.Type != "" {
		return body, report, &FunctionError{Type: fe.Type, Message: fe.Message}
	}
	if res.StatusCode != http.StatusOK || !json.Valid(body) {
		return body, report, fmt.Errorf("invoke: %s: %q", res.Status, body)
	}
	return body, report, nil
}

// Handle invokes the function as a Handler: one invocation at a time, as one Lambda execution
// environment takes them. Its REPORT line goes to the log with the rest of the output.
func (r *RIE) Handle(ctx context.Context, raw json.RawMessage) (any, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	resp, _, err := r.Invoke(ctx, raw)
	return resp, err
}

// Close stops the emulator and its function, together (their process group).
func (r *RIE) Close() {
	r.closing.Store(true)
	if r.cmd.Process != nil {
		_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
	}
	<-r.done
}

// freeAddr is a loopback address no one listens on now.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// waitListening waits until addr accepts connections, the process ends, or 10 s pass.
func waitListening(ctx context.Context, addr string, exited <-chan struct{}) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			return c.Close()
		}
		select {
		case <-exited:
			return errors.New("it exited")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listens on %s after 10 s", addr)
		}
	}
}
