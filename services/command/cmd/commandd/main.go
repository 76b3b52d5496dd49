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
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/propalpes/companias/libs/httpkit"
	"github.com/propalpes/companias/libs/kafkakit/grouplag"
	"github.com/propalpes/companias/libs/kafkakit/topics"
	"github.com/propalpes/companias/libs/seedwork/cli"
	"github.com/propalpes/companias/libs/telemetry/admin"
	"github.com/propalpes/companias/libs/telemetry/buildinfo"
	"github.com/propalpes/companias/libs/telemetry/tracing"
	"github.com/propalpes/companias/services/command/internal/adapters/outbox"
	"github.com/propalpes/companias/services/command/internal/adapters/postgres"
	"github.com/propalpes/companias/services/command/internal/app"
	"github.com/propalpes/companias/services/command/internal/config"
	"github.com/propalpes/companias/services/command/internal/domain/compania"
	"github.com/propalpes/companias/services/command/internal/metrics"
	"github.com/propalpes/companias/services/command/internal/ports/httpapi"
	"github.com/propalpes/companias/services/command/internal/ports/kafkaintake"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, program(os.Getenv), os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run starts every worker of the service under one errgroup and returns when
// ctx is cancelled (nil) or a worker fails (its error).
func run(ctx context.Context, getenv func(string) string, logOut io.Writer) error {
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	log := newLogger(logOut, cfg.LogLevel)
	for _, w := range cfg.Kafka.Warnings() {
		log.Warn("weak Kafka security setting", "warning", w)
	}
	auth, err := httpkit.NewAuthenticator(cfg.Auth, log, httpapi.AuthOffWarning, httpapi.AuthScopeWrite, httpapi.AuthScopeApprove)
	if err != nil {
		return err
	}
	tracer, stopTracing, err := tracing.StartLogged(tracing.Config{
		Endpoint: cfg.Tracing.Endpoint, ServiceName: cfg.Tracing.ServiceName, SampleRatio: cfg.Tracing.SampleRatio,
	}, cfg.ShutdownTimeout, log)
	if err != nil {
		return err
	}
	defer stopTracing() // last: after every worker that makes spans stopped

	startCtx, cancelStart := context.WithTimeout(ctx, time.Minute)
	defer cancelStart()
	pool, err := postgres.Open(startCtx, cfg.DatabaseURL, postgres.WithApplicationName("companias-command"))
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer pool.Close()
	if cfg.MigrateOnStart {
		if err := postgres.Migrate(startCtx, pool); err != nil {
			return fmt.Errorf("migrate database: %w", err)
		}
	} else if err := awaitMigrations(startCtx, postgres.NewChecker(pool).Ready, time.Second, log); err != nil {
		return err
	}
	if cfg.CreateTopics {
		if err := topics.Ensure(startCtx, cfg.Kafka, serviceTopics(cfg)...); err != nil {
			// Kafka may be down: commands still succeed and the relay drains
			// the outbox once it is back, so this is not fatal.
			log.Warn("could not ensure Kafka topics; the relay retries publishing until Kafka is back", "error", err)
		}
	}

	// The service's own registry, served at GET /metrics on the admin
	// listener (METRICS_ADDR), never on the API port: no global state.
	reg := prometheus.NewRegistry()
	m, backlog, err := newMetrics(reg, buildinfo.Read(), pool, log)
	if err != nil {
		return fmt.Errorf("register metrics: %w", err)
	}

	// The relay is built before the repository, which wakes it directly
	// after each commit while it leads (no pg_notify round trip).
	// The writer's connections are fenced by the relay's lease.
	fence := outbox.NewFence()
	// The relay parks a record over KAFKA_MAX_RECORD_BYTES, the limit the
	// repository enforces at command time; a record within it must fit one
	// kafka-go batch (header and framing overhead included).
	batchBytes := max(outbox.DefaultBatchBytes, int64(cfg.KafkaMaxRecordBytes)+64<<10)
	writer, err := outbox.NewWriter(outbox.WriterConfig{Kafka: cfg.Kafka, BatchTimeout: cfg.OutboxBatchTimeout,
		BatchSize: cfg.OutboxBatchSize, BatchBytes: batchBytes, Fence: fence})
	if err != nil {
		return fmt.Errorf("build kafka writer: %w", err)
	}
	defer closeLogged(log, "kafka writer", writer)
	relay, err := outbox.New(pool, writer, outbox.Options{
		BatchSize: cfg.OutboxBatchSize, PollInterval: cfg.OutboxPollInterval, Linger: cfg.OutboxLinger, Logger: log,
		LeaseTTL: cfg.OutboxLeaseTTL, Fence: fence, MaxRecordBytes: cfg.KafkaMaxRecordBytes, BatchBytes: batchBytes,
		OnRowPublished: m.RowPublished, OnParked: m.RowParked, Tracer: tracer,
	})
	if err != nil {
		return fmt.Errorf("build outbox relay: %w", err)
	}
	if err := reg.Register(metrics.NewRelayLease(relay)); err != nil {
		return fmt.Errorf("register relay lease metrics: %w", err)
	}

	repoOpts := []postgres.RepositoryOption{postgres.WithTopic(cfg.EventsTopic), postgres.WithLogger(log),
		postgres.WithWaker(relay), postgres.WithMaxRecordBytes(cfg.KafkaMaxRecordBytes)}
	if cfg.WriterGroupCommit {
		repoOpts = append(repoOpts, postgres.WithGroupCommit(cfg.WriterGroupCommitMax))
	}
	repo := postgres.NewRepository(pool, repoOpts...)
	defer repo.Close() // sends a commit notification still owed; before pool.Close
	afterCommit := func(ctx context.Context, events []compania.Event) {
		for _, e := range events {
			s := e.State()
			log.DebugContext(ctx, "domain event committed", "event", e.EventName(), "compania_id", s.ID, "version", s.Version)
		}
	}
	application := app.New(repo, newID, now, afterCommit)

	router, err := httpapi.New(httpapi.Deps{
		App: application, Ready: postgres.NewChecker(pool).Ready, Parked: postgres.NewParkedOutbox(pool).Count, Logger: log,
		ObserveRequest: m.ObserveRequest, Auth: auth,
		Tracer: tracer,
	}, httpapi.Options{})
	if err != nil {
		return fmt.Errorf("build http router: %w", err)
	}
	srv := &http.Server{
		Addr:              cfg.HTTPAddr,
		Handler:           router,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
	}

	pruner, err := outbox.NewPruner(pool, outbox.PrunerOptions{Retention: cfg.OutboxRetention, Logger: log})
	if err != nil {
		return fmt.Errorf("build outbox pruner: %w", err)
	}
	adm, err := admin.Open(cfg.Admin.MetricsAddr, metrics.Handler(reg, log), cfg.Admin.PprofAddr, cfg.Admin.PprofRemote, cfg.ShutdownTimeout, log)
	if err != nil {
		return err
	}

	// Workers run on workCtx, which is cancelled only after the HTTP server
	// has stopped accepting requests and drained in-flight ones, so the relay
	// still publishes what the last requests committed.
	g, gctx := errgroup.WithContext(ctx)
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()
	g.Go(func() error { return relay.Run(workCtx) })
	g.Go(func() error { return pruner.Run(workCtx) })
	g.Go(func() error { return backlog.Run(workCtx) })
	adm.Go(workCtx, g, log)
	g.Go(func() error { return pruneIdempotency(workCtx, repo, cfg.IdempotencyRetention, log) })
	if cfg.CommandsIntake {
		dialer, err := cfg.Kafka.Dialer()
		if err != nil {
			return fmt.Errorf("build kafka intake dialer: %w", err)
		}
		dlqTransport, err := cfg.Kafka.Transport()
		if err != nil {
			return fmt.Errorf("build kafka intake transport: %w", err)
		}
		intake, err := kafkaintake.New(kafkaintake.Config{
			Brokers: cfg.Kafka.Brokers, Dialer: dialer, Transport: dlqTransport, GroupID: cfg.CommandsGroupID, Topic: cfg.CommandsTopic, DeadLetterTopic: cfg.CommandsDLQTopic,
			SessionTimeout: cfg.KafkaMembership.SessionTimeout, HeartbeatInterval: cfg.KafkaMembership.HeartbeatInterval,
			RebalanceTimeout: cfg.KafkaMembership.RebalanceTimeout,
			OnDeadLetter:     m.DeadLettered, LogTraceContext: tracer != nil,
		}, application.Commands.CrearCompania, log)
		if err != nil {
			return fmt.Errorf("build kafka intake: %w", err)
		}
		// The lag of the command partitions this replica owns, as the query
		// service reports its projection's: summed over the replicas, the
		// group's lag.
		lag, err := grouplag.New(intake, cfg.Kafka, grouplag.Options{Logger: log.With("component", "lag")})
		if err != nil {
			return fmt.Errorf("build kafka intake lag collector: %w", err)
		}
		defer lag.Close()
		if err := reg.Register(lag); err != nil {
			return fmt.Errorf("register metrics: %w", err)
		}
		g.Go(func() error { return intake.Run(workCtx) })
	}
	g.Go(func() error {
		log.Info("http api listening", "addr", ln.Addr().String())
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve http: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done() // a signal, or a worker failed
		defer stopWork()
		shutCtx, cancel := context.WithTimeout(context.WithoutCancel(gctx), cfg.ShutdownTimeout)
		defer cancel()
		if err := srv.Shutdown(shutCtx); err != nil {
			return fmt.Errorf("shutdown http: %w", err)
		}
		return nil
	})
	err = g.Wait()
	log.Info("stopped", "error", err)
	return err
}

// serviceTopics are the topics the service creates when they are missing:
// the event topic and, with the intake, the command topic (both kept
// forever) and the command dead-letter topic (kept cfg.DLQRetention).
func serviceTopics(cfg config.Config) []topics.Topic {
	t := func(name string, retention time.Duration) topics.Topic {
		return topics.Topic{Name: name, Partitions: cfg.TopicPartitions, ReplicationFactor: cfg.TopicReplicationFactor, Retention: retention}
	}
	out := []topics.Topic{t(cfg.EventsTopic, 0)}
	if cfg.CommandsIntake {
		out = append(out, t(cfg.CommandsTopic, 0), t(cfg.CommandsDLQTopic, cfg.DLQRetention))
	}
	return out
}

// newMetrics registers on reg the Go runtime and process collectors, the
// build information (companias_command_build_info), the service's event metrics (returned, for the hooks of the HTTP router, the
// relay and the intake) and the outbox backlog collector (returned, for
// its Run, which reads db every metrics.DefaultBacklogInterval).
func newMetrics(reg prometheus.Registerer, build buildinfo.Info, db metrics.Querier, log *slog.Logger) (*metrics.Metrics, *metrics.Backlog, error) {
	backlog := metrics.NewBacklog(db, metrics.BacklogOptions{Logger: log})
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		build.Gauge("companias_command_build_info"),
		backlog,
	} {
		if err := reg.Register(c); err != nil {
			return nil, nil, err
		}
	}
	m, err := metrics.New(reg)
	if err != nil {
		return nil, nil, err
	}
	m.InitParkReasons(outbox.ParkReasons())
	return m, backlog, nil
}

// idempotencyPruner is the part of the repository pruneIdempotency needs.
type idempotencyPruner interface {
	PruneIdempotency(ctx context.Context, olderThan time.Duration) (int64, error)
}

// pruneIdempotency deletes expired idempotency records every minute until
// ctx is cancelled.
func pruneIdempotency(ctx context.Context, p idempotencyPruner, retention time.Duration, log *slog.Logger) error {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if n, err := p.PruneIdempotency(ctx, retention); err != nil && ctx.Err() == nil {
				log.Warn("prune idempotency records", "error", err)
			} else if n > 0 {
				log.Debug("pruned idempotency records", "rows", n)
			}
		}
	}
}

// now is the service clock, in UTC and truncated to PostgreSQL's microsecond
// precision, so that what a command returns equals what is stored and what an
// idempotent retry replays.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// newID returns a time-ordered (version 7) company id, which keeps the
// primary-key index append-mostly; it falls back to version 4.
func newID() string {
	if u, err := uuid.NewV7(); err == nil {
		return u.String()
	}
	return uuid.NewString()
}

func closeLogged(log *slog.Logger, what string, c io.Closer) {
	if err := c.Close(); err != nil {
		log.Warn("close "+what, "error", err)
	}
}
