package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/propalpes/companias/libs/devinfra/kafkabroker"
	"github.com/propalpes/companias/libs/devinfra/mongowire"
)

// Topics of the system.
const (
	eventsTopic   = "topic-eventos-compania"
	commandsTopic = "topic-comando-crear-compania"
	commandsDLQ   = commandsTopic + ".dlq"
	partitions    = 6
)

// runChild runs an infrastructure server in this process until SIGTERM or
// SIGINT (or until killed): "kafka" (the kfake broker on addr with its data
// under data) or "mongo" (the FerretDB server on addr over the PostgreSQL
// database pgURL). It prints "READY <address or URI>" once it serves.
func runChild(kind, addr, data, pgURL string) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	switch kind {
	case "kafka":
		b, err := kafkabroker.Start(kafkabroker.Options{Addr: addr, DataDir: data})
		if err != nil {
			return fmt.Errorf("start broker: %w", err)
		}
		defer b.Close()
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err = b.CreateTopics(cctx, partitions, eventsTopic, eventsTopic+".dlq", commandsTopic, commandsDLQ)
		cancel()
		if err != nil {
			return fmt.Errorf("create topics: %w", err)
		}
		fmt.Println("READY " + b.Addr())
	case "mongo":
		m, err := mongowire.Start(ctx, mongowire.Options{Addr: addr, Handler: mongowire.HandlerPostgreSQL, PostgreSQLURL: pgURL})
		if err != nil {
			return fmt.Errorf("start mongowire: %w", err)
		}
		defer m.Close()
		fmt.Println("READY " + m.URI())
		// FerretDB scans whole collections for _id lookups unless the
		// index workaround exists; keep ensuring it as devstack does.
		go func() {
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				_ = m.EnsureIDIndexes(ctx)
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		}()
	default:
		return fmt.Errorf("unknown child %q", kind)
	}
	<-ctx.Done()
	return nil
}
