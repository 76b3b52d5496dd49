package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/propalpes/companias/services/command/internal/adapters/postgres"
	"github.com/propalpes/companias/services/command/internal/config"
)

// usage is printed by help, -h and --help, and after a usage error.
const usage = `Usage:
  companias-command [serve]
      Run the command service (HTTP API, Kafka intake, outbox relay), configured
      by environment variables.
  companias-command outbox list
      List the parked outbox rows: rows the relay will not publish because Kafka
      refused them permanently (or they could not be read). The later events of
      their companies wait behind them; other companies are not affected.
  companias-command outbox retry (--all | ID...)
      Unpark rows so that the relay tries them again (once the cause is fixed);
      a row Kafka still refuses is parked again.
  companias-command outbox discard --reason TEXT ID...
      Give up on parked rows: they are marked published without being sent (the
      event stays in compania_eventos) and their companies' later events flow.
  companias-command help | -h | --help
      Print this help.

The outbox commands read DATABASE_URL or DATABASE_URL_FILE (and LOG_LEVEL) like
the service.
`

// errUsage is returned after a usage error was printed.
var errUsage = errors.New("usage error (see companias-command help)")

// dispatch runs the command named by args (os.Args[1:]): the service when
// there is none or "serve", else a subcommand. help never reads the
// configuration nor touches the database.
func dispatch(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return run(ctx, getenv, stderr)
	}
	switch args[0] {
	case "serve":
		if len(args) > 1 {
			fmt.Fprint(stderr, usage)
			return errUsage
		}
		return run(ctx, getenv, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	case "outbox":
		return runOutbox(ctx, args[1:], getenv, stdout, stderr)
	}
	fmt.Fprintf(stderr, "unknown command %q\n%s", args[0], usage)
	return errUsage
}

// runOutbox runs an outbox subcommand on the database of the configuration.
func runOutbox(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	fs := flag.NewFlagSet("outbox "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	all := fs.Bool("all", false, "retry every parked row")
	reason := fs.String("reason", "", "why the rows are discarded (logged)")
	switch args[0] {
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	case "list", "retry", "discard":
	default:
		fmt.Fprintf(stderr, "unknown outbox command %q\n%s", args[0], usage)
		return errUsage
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	ids, err := parseIDs(fs.Args())
	if err != nil {
		fmt.Fprintf(stderr, "%v\n%s", err, usage)
		return errUsage
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
		fmt.Fprintf(stderr, "%s\n%s", bad, usage)
		return errUsage
	}

	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: cfg.LogLevel})).With("service", "companias-command", "command", "outbox "+args[0])
	octx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	pool, err := postgres.Open(octx, cfg.DatabaseURL, postgres.WithApplicationName("companias-command-outbox"), postgres.WithMaxConns(2))
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer pool.Close()
	parked := postgres.NewParkedOutbox(pool)

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
