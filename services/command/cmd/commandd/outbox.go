package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/propalpes/companias/libs/seedwork/cli"
	"github.com/propalpes/companias/services/command/internal/adapters/outbox"
	"github.com/propalpes/companias/services/command/internal/adapters/postgres"
	"github.com/propalpes/companias/services/command/internal/config"
)

// runOutbox runs an outbox subcommand on the database of the configuration.
func runOutbox(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return cli.Usagef("outbox needs a command: list, retry or discard")
	}
	switch args[0] {
	case "help":
		_, err := io.WriteString(stdout, usage)
		return err
	case "list", "retry", "discard":
	default:
		return cli.Usagef("unknown outbox command %q", args[0])
	}
	fs := cli.NewFlagSet("outbox " + args[0])
	all := fs.Bool("all", false, "retry every parked row")
	reason := fs.String("reason", "", "why the rows are discarded (logged)")
	if err := cli.ParseFlags(fs, args[1:]); err != nil {
		return err
	}
	ids, err := parseIDs(fs.Args())
	if err != nil {
		return cli.Usagef("%v", err)
	}
	var bad string
	switch args[0] {
	case "list":
		if len(ids) > 0 || *all || *reason != "" {
			bad = "outbox list takes no argument"
		}
	case "retry":
		if *all == (len(ids) > 0) || *reason != "" {
			bad = "outbox retry needs either --all or IDs"
		}
	case "discard":
		if *reason == "" || len(ids) == 0 || *all {
			bad = "outbox discard needs --reason TEXT and IDs"
		}
	}
	if bad != "" {
		return cli.Usagef("%s", bad)
	}

	cfg, err := config.Load(getenv, os.ReadFile)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.LogLevel).With("command", "outbox "+args[0])
	octx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	pool, err := postgres.Open(octx, cfg.DatabaseURL, postgres.WithApplicationName("companias-command-outbox"), postgres.WithMaxConns(2))
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer pool.Close()
	parked := outbox.NewParkedOutbox(pool)

	switch args[0] {
	case "list":
		rows, err := parked.List(octx)
		if err != nil {
			return err
		}
		if len(rows) == 0 {
			fmt.Fprintln(stdout, "no parked outbox rows")
			return nil
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tEVENT_ID\tCOMPANY\tREASON\tPARKED_AT\tSIZE")
		for _, r := range rows {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\n", r.ID, r.EventID, r.Key, r.Reason, r.ParkedAt.UTC().Format(time.RFC3339), r.Size)
		}
		return tw.Flush()
	case "retry":
		var done []int64
		if *all {
			done, err = parked.RetryAll(octx)
		} else {
			done, err = parked.Retry(octx, ids)
		}
		for _, id := range done {
			log.Info("outbox row unparked; the relay retries it", "id", id)
		}
		fmt.Fprintf(stdout, "retried %d parked outbox rows %v\n", len(done), done)
		return err
	default: // discard
		done, err := parked.Discard(octx, ids)
		for _, id := range done {
			log.Warn("outbox row discarded: its event is never published", "id", id, "reason", *reason)
		}
		fmt.Fprintf(stdout, "discarded %d parked outbox rows %v\n", len(done), done)
		return err
	}
}

func parseIDs(args []string) ([]int64, error) {
	ids := make([]int64, 0, len(args))
	for _, a := range args {
		id, err := strconv.ParseInt(a, 10, 64)
		if err != nil || id <= 0 {
			return nil, fmt.Errorf("%q is not an outbox row id", a)
		}
		ids = append(ids, id)
	}
	return ids, nil
}
