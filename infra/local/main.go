// Command local runs sluice's Docker-free local AWS stack (MinIO, DynamoDB Local, notification hub).
//
//	local up                 install what is missing, start, wait until every server answers
//	local down               stop exactly the processes `up` started (by recorded PID)
//	local status             say whether each server answers
//	local exec -- CMD ARGS   start what is not running, run CMD with the stack's env, stop what it started
//	local invoke EVENT       run the processor's handler once on an event file (Docker-free sam local invoke)
//	local demo               the main job: upload testdata/images through real notifications, print outcomes
//	local hub --dir D --addr A   (internal) the notification hub process
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/sluice-dev/sluice/pkg/awsclient"
	"github.com/sluice-dev/sluice/pkg/localrun"
	"github.com/sluice-dev/sluice/pkg/localstack"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		var exit exitCode
		if errors.As(err, &exit) {
			os.Exit(int(exit))
		}
		fmt.Fprintln(os.Stderr, "local:", err)
		os.Exit(1)
	}
}

// exitCode carries a child's exit status through run without printing it again.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func run(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: local up|down|status|invoke EVENT|demo|exec -- CMD [ARGS]")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if args[0] == "hub" {
		fs := flag.NewFlagSet("hub", flag.ContinueOnError)
		fs.String("dir", "", "cache folder (marks the process as this stack's)")
		addr := fs.String("addr", "127.0.0.1:9903", "listen address")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		log := slog.New(slog.NewJSONHandler(os.Stdout, nil))
		return localstack.ServeHub(ctx, *addr, log)
	}

	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	root, err := localstack.FindRoot(wd)
	if err != nil {
		return err
	}
	cfg, err := localstack.LoadConfig(root)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	stack := localstack.New(cfg, self, os.Stderr)

	switch args[0] {
	case "up":
		if _, err := stack.Up(ctx); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "local stack is up; env file: %s\n  S3 (MinIO):     %s\n  DynamoDB Local: %s\n",
			cfg.EnvFile(), cfg.S3Endpoint(), cfg.DynamoEndpoint())
		return nil
	case "down":
		return stack.Down()
	case "status":
		if err := stack.Check(ctx); err != nil {
			return err
		}
		fmt.Fprintln(os.Stderr, "local stack is up and answering")
		return nil
	case "exec":
		cmdArgs := args[1:]
		if len(cmdArgs) > 0 && cmdArgs[0] == "--" {
			cmdArgs = cmdArgs[1:]
		}
		if len(cmdArgs) == 0 {
			return errors.New("exec: want a command after --")
		}
		return execWithStack(ctx, stack, cfg, cmdArgs)
	case "invoke", "demo":
		if _, err := stack.Up(ctx); err != nil {
			return err
		}
		for _, kv := range cfg.Env() {
			if err := os.Setenv(kv[0], kv[1]); err != nil {
				return err
			}
		}
		awsCfg, err := awsclient.Load(ctx)
		if err != nil {
			return err
		}
		s3c, ddb := awsclient.S3(awsCfg), awsclient.DynamoDB(awsCfg)
		log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
		if args[0] == "demo" {
			return localrun.Demo(ctx, s3c, ddb, localrun.DemoOptions{
				Root: root, HubURL: cfg.HubEndpoint(), NotifyARN: cfg.HubARN(), Out: os.Stdout, Log: log,
			})
		}
		if len(args) != 2 {
			return errors.New("usage: local invoke EVENT_FILE")
		}
		return localrun.InvokeFile(ctx, s3c, ddb, root, args[1], os.Stdout, log)
	default:
		return fmt.Errorf("unknown command %q: want up, down, status, exec, invoke or demo", args[0])
	}
}

// execWithStack starts what is not running, runs the command with the stack's env, then checks
// that every server survived the run and stops only what it started.
func execWithStack(ctx context.Context, stack *localstack.Stack, cfg localstack.Config, args []string) (err error) {
	started, err := stack.Up(ctx)
	defer func() {
		if stopErr := stack.StopStarted(started); stopErr != nil {
			err = errors.Join(err, stopErr)
		}
	}()
	if err != nil {
		return err
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = os.Environ()
	for _, kv := range cfg.Env() {
		cmd.Env = append(cmd.Env, kv[0]+"="+kv[1])
	}
	// The child shares our terminal: a Ctrl-C reaches it directly, and we wait for it to finish
	// before stopping the servers.
	signal.Ignore(os.Interrupt)
	runErr := cmd.Run()
	if checkErr := stack.Check(context.Background()); checkErr != nil {
		fmt.Fprintf(os.Stderr, "local stack: a server stopped during the run:\n%v\n", checkErr)
		if runErr == nil {
			runErr = checkErr
		}
	}
	var exitErr *exec.ExitError
	if errors.As(runErr, &exitErr) {
		return exitCode(exitErr.ExitCode())
	}
	return runErr
}
