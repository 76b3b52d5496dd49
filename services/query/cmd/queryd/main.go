// Command queryd is the query service of the companias bounded context
// (binary companias-query): it projects the integration events of Kafka into
// MongoDB views and serves them over HTTP.
//
// Usage:
//
//	companias-query [serve]        run the HTTP API and the projection consumer (default)
//	companias-query rebuild        rebuild the views from the start of the events topic,
//	                               showing progress on stderr; exits 0 once the new
//	                               views are switched in
//	companias-query version [-json] print the build information
//	companias-query help           print the usage
//
// Configuration comes from the environment only (see package config).
package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/propalpes/companias/libs/httpkit"
	"github.com/propalpes/companias/libs/seedwork/cli"
	"github.com/propalpes/companias/libs/telemetry/buildinfo"
	"github.com/propalpes/companias/libs/telemetry/logs"
	"github.com/propalpes/companias/services/query/internal/config"
	"github.com/propalpes/companias/services/query/internal/ports/httpapi"
	"github.com/propalpes/companias/services/query/internal/service"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	gin.SetMode(gin.ReleaseMode)
	code := cli.Main(ctx, program(os.Getenv), os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// binary is the name of the program in messages and in its usage.
const binary = "companias-query"

const usage = `Usage: companias-query [command]

Commands:
  serve            run the HTTP API and the projection consumer (default)
  rebuild          rebuild the views from the events topic, with progress on stderr
  version [-json]  print the build information (module version, VCS revision, Go version)
  help             print this help ("COMMAND --help" too); help reads no configuration

Configuration is read from the environment: HTTP_ADDR, KAFKA_BROKERS,
KAFKA_EVENTS_TOPIC, KAFKA_EVENTS_DLQ_TOPIC, KAFKA_GROUP_ID,
KAFKA_TOPIC_PARTITIONS, MONGO_URI, MONGO_DATABASE, SHUTDOWN_TIMEOUT, LOG_LEVEL,
AUTH_MODE (none, hs256 or jwks), OTEL_EXPORTER_OTLP_ENDPOINT (tracing, off
unless set) and more (see internal/config).
Exit codes: 0 success, 1 failure, 2 usage error.
`

// program is the companias-query binary: its subcommands over the
// environment read through getenv.
func program(getenv func(string) string) cli.Program {
	// serve and rebuild run on the configuration and the service's logger,
	// which first warns of weak Kafka security settings.
	load := func() (config.Config, error) { return config.Load(getenv, os.ReadFile) }
	logger := func(stderr io.Writer, cfg config.Config) *slog.Logger {
		log := logs.New(stderr, cfg.LogLevel, binary)
		for _, w := range cfg.Kafka.Warnings() {
			log.Warn("weak Kafka security setting", "warning", w)
		}
		return log
	}
	return cli.Program{
		Name: binary, Usage: usage, Default: "serve",
		Commands: map[string]cli.Func{
			"serve":   cli.WithConfig("serve", load, logger, serve),
			"rebuild": cli.WithConfig("rebuild", load, logger, runRebuild),
			"version": cli.Version(func(w io.Writer, asJSON bool) error {
				return buildinfo.Read().Write(w, binary, asJSON)
			}),
		},
	}
}

// run is the whole program: it returns when the command is done or ctx is
// cancelled, and reports failure as an error (see cli.ExitCode). A clean
// shutdown after cancellation returns nil.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return program(getenv).Run(ctx, args, stdout, stderr)
}

// serve runs the service (see service.Run) until ctx is cancelled or one
// of its workers fails.
func serve(ctx context.Context, cfg config.Config, log *slog.Logger, _ io.Writer) error {
	auth, err := httpkit.NewAuthenticator(cfg.Auth, log, httpapi.AuthOffWarning, httpapi.AuthScopeRead, httpapi.AuthScopeAdmin)
	if err != nil {
		return err
	}
	return service.Run(ctx, cfg, log, auth)
}

// runRebuild rebuilds the views from the CLI and reports progress on w
// until the new generation is switched in.
func runRebuild(ctx context.Context, cfg config.Config, log *slog.Logger, w io.Writer) error {
	start := time.Now()
	r := newProgressReporter(w, isTerminal(w))
	p, err := service.Rebuild(ctx, cfg, log, r.report)
	r.finish()
	if err != nil {
		return err
	}
	log.Info("rebuild done", "generation", p.Generation, "events", p.Processed, "duration", time.Since(start).Round(time.Millisecond))
	return nil
}
