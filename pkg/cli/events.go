package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/pkg/announce"
	"github.com/sluice-dev/sluice/pkg/ops"
	"github.com/sluice-dev/sluice/pkg/state"
)

func eventsCmd(tg *target, stdio IO) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Completion events on EventBridge (EVENT_BUS_NAME)",
	}
	var since, prefix string
	replay := &cobra.Command{
		Use:   "replay",
		Short: "Announce again every outcome recorded since --since, under the ids it was announced with",
		Long: `replay scans the state table and puts on the bus (EVENT_BUS_NAME) one event per outcome
(Object Processed, Object Quarantined, Object Deleted) recorded at or after --since under --prefix,
whether it was announced before or not. Each carries the event_id of its first announcement, so a
consumer that dedupes by it sees only what it missed. With --local and no EVENT_BUS_NAME the events
are printed, one JSON line each, as a rule's target would receive them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			from, err := parseDate("--since", since)
			if err != nil {
				return err
			}
			d, err := open(cmd.Context(), *tg, stdio)
			if err != nil {
				return err
			}
			var to interface {
				Announce(ctx context.Context, recs []state.Record) error
			}
			switch {
			case d.events != nil:
				to = d.events
			case tg.local:
				to = announce.NewPrinter(stdio.Out)
			default:
				return errors.New("no event bus: set EVENT_BUS_NAME")
			}
			n, err := d.ops.Replay(cmd.Context(), to, ops.ReplayOptions{Bucket: d.tg.staging, Prefix: prefix, Since: from})
			fmt.Fprintf(stdio.Err, "%d outcomes announced\n", n)
			return err
		},
	}
	f := replay.Flags()
	f.StringVar(&since, "since", "", "only outcomes recorded at or after it (2006-01-02 or RFC 3339; default: all)")
	f.StringVar(&prefix, "prefix", "", "only sources under this key prefix")
	cmd.AddCommand(replay)
	return cmd
}
