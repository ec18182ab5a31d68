package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/pkg/awsclient"
	"github.com/sluice-dev/sluice/pkg/localrun"
	"github.com/sluice-dev/sluice/pkg/localstack"
)

// stack is the local stack of the repository around the working folder, whose hub is served by
// this executable (`sluice local hub`).
func stack(stdio IO) (*localstack.Stack, localstack.Config, string, error) {
	var cfg localstack.Config
	root, err := checkoutRoot()
	if err != nil {
		return nil, cfg, "", err
	}
	if cfg, err = localstack.LoadConfig(root); err != nil {
		return nil, cfg, "", err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, cfg, "", err
	}
	return localstack.New(cfg, []string{self, "local", "hub"}, stdio.Err), cfg, root, nil
}

func localCmd(stdio IO) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "local",
		Short: "The Docker-free local stack: MinIO, DynamoDB Local and the notification hub",
	}
	up := &cobra.Command{
		Use:   "up",
		Short: "Install what is missing, start, and wait until every server answers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, cfg, _, err := stack(stdio)
			if err != nil {
				return err
			}
			if _, err := st.Up(cmd.Context()); err != nil {
				return err
			}
			fmt.Fprintf(stdio.Err, "local stack is up; env file: %s\n  S3 (MinIO):     %s\n  DynamoDB Local: %s\n",
				cfg.EnvFile(), cfg.S3Endpoint(), cfg.DynamoEndpoint())
			return nil
		},
	}
	down := &cobra.Command{
		Use:   "down",
		Short: "Stop exactly the processes `up` started (by their recorded PIDs)",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			st, _, _, err := stack(stdio)
			if err != nil {
				return err
			}
			return st.Down()
		},
	}
	status := &cobra.Command{
		Use:   "status",
		Short: "Say whether every server answers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, _, _, err := stack(stdio)
			if err != nil {
				return err
			}
			if err := st.Check(cmd.Context()); err != nil {
				return err
			}
			fmt.Fprintln(stdio.Err, "local stack is up and answering")
			return nil
		},
	}
	execute := &cobra.Command{
		Use:   "exec -- CMD [ARGS]",
		Short: "Start what is not running, run CMD with the stack's env, check the servers survived, stop what was started",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, cfg, _, err := stack(stdio)
			if err != nil {
				return err
			}
			return execWithStack(cmd.Context(), st, cfg, args, stdio)
		},
	}
	var dir, addr string
	hub := &cobra.Command{
		Use:    "hub",
		Short:  "(internal) serve the notification hub",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return localstack.ServeHub(cmd.Context(), addr, slog.New(slog.NewJSONHandler(stdio.Out, nil)))
		},
	}
	hub.Flags().StringVar(&dir, "dir", "", "cache folder (marks the process as this stack's)")
	hub.Flags().StringVar(&addr, "addr", "127.0.0.1:9903", "listen address")
	var inProcess bool
	serve := &cobra.Command{
		Use:   "serve",
		Short: "Run the local pipeline: uploads to s3://sluice-staging/uploads/ are processed as in AWS, until Ctrl-C",
		Long: `serve subscribes the staging bucket's notifications (creations and removals under uploads/) and
hands each to the processor's built bootstrap under AWS's Runtime Interface Emulator, as Lambda would,
until Ctrl-C. --in-process calls the handler in this process instead (faster to start).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withLocalClients(cmd.Context(), stdio, func(c clients, root string, cfg localstack.Config) error {
				return localrun.Serve(cmd.Context(), c.s3, c.ddb, demoOptions(stdio, root, cfg, inProcess))
			})
		},
	}
	serve.Flags().BoolVar(&inProcess, "in-process", false, "call the handler in this process instead of the built bootstrap under the emulator")
	cmd.AddCommand(up, down, status, execute, serve, hub)
	return cmd
}

// execWithStack starts what is not running, runs the command with the stack's env, then checks
// that every server survived the run and stops only what it started.
func execWithStack(ctx context.Context, st *localstack.Stack, cfg localstack.Config, args []string, stdio IO) (err error) {
	started, err := st.Up(ctx)
	defer func() {
		if stopErr := st.StopStarted(started); stopErr != nil {
			err = errors.Join(err, stopErr)
		}
	}()
	if err != nil {
		return err
	}
	c := exec.Command(args[0], args[1:]...)
	c.Stdin, c.Stdout, c.Stderr = os.Stdin, stdio.Out, stdio.Err
	c.Env = os.Environ()
	for _, kv := range cfg.Env() {
		c.Env = append(c.Env, kv[0]+"="+kv[1])
	}
	// The child shares our terminal: a Ctrl-C reaches it directly, and we wait for it to finish
	// before stopping the servers.
	signal.Ignore(os.Interrupt)
	runErr := c.Run()
	if checkErr := st.Check(context.Background()); checkErr != nil {
		fmt.Fprintf(stdio.Err, "local stack: a server stopped during the run:\n%v\n", checkErr)
		if runErr == nil {
			runErr = checkErr
		}
	}
	var exitErr *exec.ExitError
	if errors.As(runErr, &exitErr) {
		return ExitError(exitErr.ExitCode())
	}
	return runErr
}

// clients are SDK clients on the local stack.
type clients struct {
	s3  *s3.Client
	ddb *dynamodb.Client
}

// withLocalClients starts the stack (what is missing) and runs f with clients on it.
func withLocalClients(ctx context.Context, stdio IO, f func(clients, string, localstack.Config) error) error {
	st, cfg, root, err := stack(stdio)
	if err != nil {
		return err
	}
	if _, err := st.Up(ctx); err != nil {
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
	return f(clients{s3: awsclient.S3(awsCfg), ddb: awsclient.DynamoDB(awsCfg)}, root, cfg)
}

func invokeCmd(stdio IO) *cobra.Command {
	var inProcess bool
	cmd := &cobra.Command{
		Use:   "invoke EVENT_FILE",
		Short: "Run the processor on an event file against the local stack: its built bootstrap under AWS's Runtime Interface Emulator (Docker-free sam local invoke)",
		Long: `invoke builds the processor's bootstrap for this machine and runs it under AWS's Lambda Runtime
Interface Emulator (installed into the local stack's cache), with the template's timeout and memory
size and testdata/env.json's variables, on each payload of EVENT_FILE (one, or several one per line,
as MinIO logs them). It prints each response, and the function's logs and the emulator's REPORT line
on stderr. --in-process calls the handler in this process instead.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withLocalClients(cmd.Context(), stdio, func(c clients, root string, cfg localstack.Config) error {
				return localrun.InvokeFile(cmd.Context(), c.s3, c.ddb, localrun.InvokeOptions{
					Lambda: lambda(cfg, inProcess), Root: root, EventFile: args[0], Out: stdio.Out, Log: stdio.Err})
			})
		},
	}
	cmd.Flags().BoolVar(&inProcess, "in-process", false, "call the handler in this process instead of the built bootstrap under the emulator")
	return cmd
}

func demoCmd(stdio IO) *cobra.Command {
	var inProcess bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "The main job on the local stack: upload testdata/images through real notifications, print the outcomes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withLocalClients(cmd.Context(), stdio, func(c clients, root string, cfg localstack.Config) error {
				return localrun.Demo(cmd.Context(), c.s3, c.ddb, demoOptions(stdio, root, cfg, inProcess))
			})
		},
	}
	cmd.Flags().BoolVar(&inProcess, "in-process", false, "call the handler in this process instead of the built bootstrap under the emulator")
	return cmd
}

// lambda is how a local run runs the processor: its built bootstrap under the stack's Runtime
// Interface Emulator, or (inProcess) its handler in this process.
func lambda(cfg localstack.Config, inProcess bool) localrun.Lambda {
	l := localrun.Lambda{StackEnv: cfg.Env(), BuildDir: filepath.Join(cfg.Dir, "build", "local")}
	if !inProcess {
		l.RIE = cfg.RIEBinary()
	}
	return l
}

// demoOptions wires the local pipeline of demo and serve.
func demoOptions(stdio IO, root string, cfg localstack.Config, inProcess bool) localrun.DemoOptions {
	return localrun.DemoOptions{Lambda: lambda(cfg, inProcess), Root: root, HubURL: cfg.HubEndpoint(), NotifyARN: cfg.HubARN(),
		Out: stdio.Out, Output: stdio.Err, Log: slog.New(slog.NewJSONHandler(stdio.Err, nil))}
}
