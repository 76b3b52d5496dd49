// Command companias-dlq lists and replays the dead-letter topics of the
// companias services (libs/contracts/deadletter): the command DLQ
// topic-comando-crear-compania.dlq and the event DLQ
// topic-eventos-compania.dlq. Run it with -help for usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return
	case errors.As(err, new(usageError)):
		fmt.Fprintln(os.Stderr, "companias-dlq:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "companias-dlq:", err)
		os.Exit(1)
	}
}
