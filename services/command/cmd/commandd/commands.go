package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/propalpes/companias/libs/seedwork/cli"
	"github.com/propalpes/companias/libs/telemetry/buildinfo"
	"github.com/propalpes/companias/libs/telemetry/logs"
	"github.com/propalpes/companias/services/command/internal/adapters/postgres"
	"github.com/propalpes/companias/services/command/internal/config"
)

// binary is the name of the program in messages and in its usage.
const binary = "companias-command"

// usage is printed by help, -h and --help (on stdout) and after a usage
// error (on stderr).
const usage = `Usage:
  companias-command [serve]
      Run the command service (HTTP API, Kafka intake, outbox relay), configured
      by environment variables. It first applies the schema migrations unless
      MIGRATE_ON_START=false; then it waits up to a minute for them to be
      applied by "migrate".
  companias-command migrate
      Apply the schema migrations embedded in this binary, then exit: 0 when the
      schema is up to date. Safe to run while writers run and migrate.
  companias-command version [-json]
      Print the build information (module version, VCS revision, Go version).
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
      Print this help ("COMMAND --help" too). Help never reads the configuration.

migrate and the outbox commands read the service's configuration (DATABASE_URL
or DATABASE_URL_FILE, LOG_LEVEL, and the rest, validated as serve does) and
touch only PostgreSQL. Exit codes: 0 success, 1 failure, 2 usage error.
`

// program is the companias-command binary: its subcommands over the
// environment read through getenv.
func program(getenv func(string) string) cli.Program {
	// serve and migrate run on the configuration and the service's logger.
	load := func() (config.Config, error) { return config.Load(getenv, os.ReadFile) }
	logger := func(stderr io.Writer, cfg config.Config) *slog.Logger { return newLogger(stderr, cfg.LogLevel) }
	return cli.Program{
		Name: binary, Usage: usage, Default: "serve",
		Commands: map[string]cli.Func{
			"serve":   cli.WithConfig("serve", load, logger, serve),
			"migrate": cli.WithConfig("migrate", load, logger, runMigrate),
			"version": cli.Version(func(w io.Writer, asJSON bool) error {
				return buildinfo.Read().Write(w, binary, asJSON)
			}),
			"outbox": func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
				return runOutbox(ctx, args, getenv, stdout, stderr)
			},
		},
	}
}

// newLogger is the logger of the service and its subcommands: JSON lines
// on w, with trace_id and span_id inside traced operations.
func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return logs.New(w, level, binary)
}

// openTimeout bounds opening the database at start-up.
const openTimeout = time.Minute

// runMigrate applies the embedded migrations to the configured database.
// Migrate serialises on an advisory lock, so it is safe while writers
// start and migrate too; a migration may take long (a backfill), so only
// ctx (a signal) bounds it.
func runMigrate(ctx context.Context, cfg config.Config, log *slog.Logger, _ io.Writer) error {
	log = log.With("command", "migrate")
	openCtx, cancel := context.WithTimeout(ctx, openTimeout)
	defer cancel()
	pool, err := postgres.Open(openCtx, cfg.DatabaseURL, postgres.WithApplicationName("companias-command-migrate"), postgres.WithMaxConns(2))
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer pool.Close()
	start := time.Now()
	if err := postgres.Migrate(ctx, pool); err != nil {
		return fmt.Errorf("migrate database: %w", err)
	}
	log.Info("database schema is up to date", "duration", time.Since(start))
	return nil
}
