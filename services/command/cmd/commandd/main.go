// Command commandd runs the companias command service (the writer): the HTTP
// command API, the Kafka command intake and the outbox relay, over one
// PostgreSQL database. Configuration comes from environment variables (see
// internal/config); SIGINT or SIGTERM stop it gracefully.
//
// Its subcommands (see usage): serve, the default; migrate applies the
// schema migrations and exits; version prints the build information; the
// outbox subcommands list, retry and discard the outbox rows the relay
// parked; help prints the usage.
package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/propalpes/companias/libs/httpkit"
	"github.com/propalpes/companias/libs/seedwork/cli"
	"github.com/propalpes/companias/services/command/internal/config"
	"github.com/propalpes/companias/services/command/internal/ports/httpapi"
	"github.com/propalpes/companias/services/command/internal/service"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, program(os.Getenv), os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
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
	auth, err := httpkit.NewAuthenticator(cfg.Auth, log, httpapi.AuthOffWarning, httpapi.AuthScopeWrite, httpapi.AuthScopeApprove)
	if err != nil {
		return err
	}
	return service.Run(ctx, cfg, log, auth)
}
