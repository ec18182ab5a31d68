// Command sluice operates sluice: backfill, status, reconcile, redrive and report against a
// deployment or the local stack, and the local stack itself. See `sluice --help` and pkg/cli.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"

	"github.com/sluice-dev/sluice/pkg/cli"
	"github.com/sluice-dev/sluice/pkg/termtext"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cli.NewRoot(cli.IO{Out: os.Stdout, Err: os.Stderr, Terminal: term.IsTerminal(int(os.Stderr.Fd()))}).ExecuteContext(ctx)
	stop()
	var exit cli.ExitError
	switch {
	case errors.As(err, &exit):
		os.Exit(int(exit))
	case err != nil:
		fmt.Fprintln(os.Stderr, "sluice:", termtext.Visible(err.Error()))
		os.Exit(1)
	}
}
