package localstack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// service is one server of the local stack.
type service struct {
	Name  string // as people say it: "MinIO"
	id    string // pid and log file stem
	port  int
	start func() *exec.Cmd
	probe func(ctx context.Context) error
}

// LogFile is where the service's stdout and stderr go.
func (s service) LogFile(c Config) string { return c.path("logs", s.id+".log") }
func (s service) pidFile(c Config) string { return c.path("run", s.id+".pid") }

// services lists the stack in start order: the hub first, because MinIO sends its notifications to it.
func services(c Config, hub []string) []service {
	return []service{
		{
			Name: "notification hub", id: "hub", port: c.HubPort,
			start: func() *exec.Cmd {
				args := append(slices.Clone(hub[1:]), "--dir", c.Dir, "--addr", fmt.Sprintf("%s:%d", c.Host, c.HubPort))
				return exec.Command(hub[0], args...)
			},
			probe: httpProbe(c.HubEndpoint()+"/healthz", http.StatusOK),
		},
		{
			Name: "MinIO", id: "minio", port: c.S3Port,
			start: func() *exec.Cmd {
				cmd := exec.Command(c.minioBinary(), "server", c.path("data", "minio"),
					"--address", fmt.Sprintf("%s:%d", c.S3Bind, c.S3Port),
					"--console-address", fmt.Sprintf("%s:%d", c.Host, c.ConsolePort))
				cmd.Env = append(os.Environ(),
					"MINIO_ROOT_USER="+c.AccessKey,
					"MINIO_ROOT_PASSWORD="+c.SecretKey,
					"MINIO_REGION="+c.Region,
					"MINIO_UPDATE=off",
					"MINIO_NOTIFY_WEBHOOK_ENABLE_"+HubTargetID+"=on",
					"MINIO_NOTIFY_WEBHOOK_ENDPOINT_"+HubTargetID+"="+c.HubEndpoint()+"/minio",
				)
				return cmd
			},
			probe: httpProbe(c.S3Endpoint()+"/minio/health/live", http.StatusOK),
		},
		{
			Name: "DynamoDB Local", id: "dynamodb", port: c.DynamoPort,
			start: func() *exec.Cmd {
				cmd := exec.Command("java",
					"-Djava.library.path="+filepath.Join(c.dynamoDir(), "DynamoDBLocal_lib"),
					"-jar", filepath.Join(c.dynamoDir(), "DynamoDBLocal.jar"),
					"-inMemory", "-sharedDb", "-disableTelemetry", "-port", strconv.Itoa(c.DynamoPort))
				cmd.Dir = c.dynamoDir()
				return cmd
			},
			// DynamoDB Local has no bind-address option: it listens on every interface, and
			// everything here reaches it through loopback. Any HTTP answer means it serves.
			probe: httpProbe(c.DynamoEndpoint()+"/", 0),
		},
	}
}

// HubTargetID names the MinIO webhook target that points at the hub.
const HubTargetID = "SLUICE"

// HubARN is the notification target ARN to put in a bucket's QueueConfigurations on MinIO.
func (c Config) HubARN() string { return "arn:minio:sqs:" + c.Region + ":" + HubTargetID + ":webhook" }

func httpProbe(url string, want int) func(ctx context.Context) error {
	client := &http.Client{Timeout: 2 * time.Second}
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if want != 0 && resp.StatusCode != want {
			return fmt.Errorf("GET %s: status %d, want %d", url, resp.StatusCode, want)
		}
		return nil
	}
}

// Stack starts, checks and stops the local servers.
type Stack struct {
	cfg  Config
	svcs []service
	log  io.Writer
}

// New prepares a stack. hub is the command that serves the notification hub, without its
// --dir and --addr flags (for the CLI: the sluice executable, "local", "hub").
func New(cfg Config, hub []string, log io.Writer) *Stack {
	return &Stack{cfg: cfg, svcs: services(cfg, hub), log: log}
}

// Up installs what is missing, starts every server that is not already running, waits until each
// answers, and writes the env file. It returns the names of the servers it started.
func (s *Stack) Up(ctx context.Context) (started []string, err error) {
	for _, d := range []string{"bin", "run", "logs"} {
		if err := os.MkdirAll(s.cfg.path(d), 0o755); err != nil {
			return nil, err
		}
	}
	if err := Install(ctx, s.cfg, s.log); err != nil {
		return nil, err
	}
	for _, svc := range s.svcs {
		ok, err := s.start(ctx, svc)
		if err != nil {
			return started, err
		}
		if ok {
			started = append(started, svc.id)
		}
	}
	return started, s.writeEnv()
}

// start runs one service unless the one recorded in its pid file still answers.
func (s *Stack) start(ctx context.Context, svc service) (bool, error) {
	if pid, alive := s.running(svc); alive {
		if err := svc.probe(ctx); err == nil {
			fmt.Fprintf(s.log, "%s already running (pid %d) on %s:%d\n", svc.Name, pid, s.cfg.Host, svc.port)
			return false, nil
		}
		return false, fmt.Errorf("%s (pid %d) is running but does not answer on port %d; run `make local-down` and retry; its log: %s",
			svc.Name, pid, svc.port, svc.LogFile(s.cfg))
	}
	if ln, err := net.Listen("tcp", fmt.Sprintf("%s:%d", s.cfg.Host, svc.port)); err != nil {
		return false, fmt.Errorf("%s cannot start: port %d on %s is taken by another process (%v); free it or choose another port with SLUICE_LOCAL_*_PORT",
			svc.Name, svc.port, s.cfg.Host, err)
	} else {
		ln.Close()
	}
	if svc.id == "minio" {
		// Like DynamoDB Local's -inMemory, every start begins empty.
		if err := os.RemoveAll(s.cfg.path("data", "minio")); err != nil {
			return false, err
		}
	}
	logf, err := os.OpenFile(svc.LogFile(s.cfg), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return false, err
	}
	defer logf.Close()
	cmd := svc.start()
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group: a Ctrl-C meant for `make` does not reach it, and down stops the group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return false, fmt.Errorf("start %s: %w", svc.Name, err)
	}
	pid := cmd.Process.Pid
	if err := os.WriteFile(svc.pidFile(s.cfg), []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		return false, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	fmt.Fprintf(s.log, "starting %s (pid %d) on %s:%d, log %s\n", svc.Name, pid, s.cfg.Host, svc.port, svc.LogFile(s.cfg))

	deadline := time.Now().Add(90 * time.Second)
	for {
		select {
		case err := <-exited:
			_ = os.Remove(svc.pidFile(s.cfg))
			return false, fmt.Errorf("%s exited while starting (%v); its log %s ends with:\n%s",
				svc.Name, err, svc.LogFile(s.cfg), tailFile(svc.LogFile(s.cfg), 15))
		case <-ctx.Done():
			s.stop(svc)
			return false, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if err := svc.probe(ctx); err == nil {
			return true, nil
		} else if time.Now().After(deadline) {
			s.stop(svc)
			return false, fmt.Errorf("%s did not answer within 90s (%v); its log %s ends with:\n%s",
				svc.Name, err, svc.LogFile(s.cfg), tailFile(svc.LogFile(s.cfg), 15))
		}
	}
}

// running reads a service's pid file and reports whether that process is still the one we
// started: alive, not a zombie, and with our cache folder on its command line.
func (s *Stack) running(svc service) (int, bool) {
	b, err := os.ReadFile(svc.pidFile(s.cfg))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return 0, false
	}
	return pid, isOurs(pid, s.cfg.Dir)
}

func isOurs(pid int, marker string) bool {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !bytes.Contains(cmdline, []byte(marker)) {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name: "pid (comm) S ...".
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
		return false
	}
	return true
}

// Down stops the servers recorded in the pid files, newest first, and removes the env file.
func (s *Stack) Down() error {
	ids := make([]string, 0, len(s.svcs))
	for _, svc := range s.svcs {
		ids = append(ids, svc.id)
	}
	return s.StopStarted(ids)
}

// StopStarted stops only the named servers (the ones an Up call reported starting). The env file
// goes with the first one stopped: it describes a whole stack. Stopping none keeps it, so a run
// on a stack that was already up leaves that stack usable.
func (s *Stack) StopStarted(ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	_ = os.Remove(s.cfg.EnvFile())
	var errs []error
	for i := len(s.svcs) - 1; i >= 0; i-- {
		for _, id := range ids {
			if s.svcs[i].id == id {
				errs = append(errs, s.stop(s.svcs[i]))
			}
		}
	}
	return errors.Join(errs...)
}

// stop signals the process group we created for svc: SIGTERM, then SIGKILL after 15s.
func (s *Stack) stop(svc service) error {
	pid, alive := s.running(svc)
	defer os.Remove(svc.pidFile(s.cfg))
	if !alive {
		return nil
	}
	fmt.Fprintf(s.log, "stopping %s (pid %d)\n", svc.Name, pid)
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if !isOurs(pid, s.cfg.Dir) {
			return nil
		}
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if !isOurs(pid, s.cfg.Dir) {
			return nil
		}
	}
	return fmt.Errorf("%s (pid %d) did not stop after SIGKILL", svc.Name, pid)
}

// Check reports, for each server, whether it answers; the error names the dead ones and their logs.
func (s *Stack) Check(ctx context.Context) error {
	var errs []error
	for _, svc := range s.svcs {
		pid, alive := s.running(svc)
		switch {
		case !alive:
			errs = append(errs, fmt.Errorf("%s is not running (no live process in %s); its log: %s", svc.Name, svc.pidFile(s.cfg), svc.LogFile(s.cfg)))
		default:
			if err := svc.probe(ctx); err != nil {
				errs = append(errs, fmt.Errorf("%s (pid %d) does not answer on port %d: %v; its log: %s", svc.Name, pid, svc.port, err, svc.LogFile(s.cfg)))
			}
		}
	}
	return errors.Join(errs...)
}

func (s *Stack) writeEnv() error {
	var b strings.Builder
	b.WriteString("# Written by the local stack (sluice local up); removed by `make local-down`.\n")
	for _, kv := range s.cfg.Env() {
		fmt.Fprintf(&b, "%s=%s\n", kv[0], kv[1])
	}
	return os.WriteFile(s.cfg.EnvFile(), []byte(b.String()), 0o644)
}

func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	return tail(b, n)
}
