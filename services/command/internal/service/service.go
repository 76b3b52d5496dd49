// Package service wires the command service (the writer) from its
// configuration and runs it: the PostgreSQL pool and schema, the outbox
// relay and its Kafka writer, the repository and the application, the HTTP
// API, the Kafka command intake and the background workers. It is the one
// place that knows every adapter and port, as wild-workouts'
// service.NewApplication is; cmd/commandd keeps only the command line.
package service

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"

	"github.com/propalpes/companias/libs/seedwork/envconfig"
	"github.com/propalpes/companias/libs/telemetry/admin"
	"github.com/propalpes/companias/libs/telemetry/buildinfo"
	"github.com/propalpes/companias/libs/telemetry/tracing"
	"github.com/propalpes/companias/services/command/internal/adapters/outbox"
	"github.com/propalpes/companias/services/command/internal/adapters/postgres"
	"github.com/propalpes/companias/services/command/internal/app"
	"github.com/propalpes/companias/services/command/internal/config"
	"github.com/propalpes/companias/services/command/internal/metrics"
	"github.com/propalpes/companias/services/command/internal/ports/httpapi"
)

// Run builds the service from cfg and runs its workers under one errgroup
// until ctx is cancelled (nil) or one of them fails (its error). auth
// verifies the API's bearer tokens; nil leaves the API open.
//
// Start: tracing, then the database (migrated, or waited for when
// cfg.MigrateOnStart is false), the topics (a failure is only logged: the
// relay publishes once Kafka is back), the metrics, the relay, the
// repository, the HTTP listener and the workers. Stop: the HTTP server
// drains (within cfg.ShutdownTimeout) while the relay still publishes what
// the last requests committed; then the workers stop; then the Kafka
// writer, the repository and the pool close; tracing flushes last.
func Run(ctx context.Context, cfg config.Config, log *slog.Logger, auth httpapi.Authenticator) error {
	for _, w := range cfg.Kafka.Warnings() {
		log.Warn("weak Kafka security setting", "warning", w)
	}
	tracer, stopTracing, err := tracing.StartLogged(tracing.Config{
		Endpoint: cfg.Tracing.Endpoint, ServiceName: cfg.Tracing.ServiceName, SampleRatio: cfg.Tracing.SampleRatio,
	}, cfg.ShutdownTimeout, log)
	if err != nil {
		return err
	}
	defer stopTracing() // last: after every worker that makes spans stopped

	pool, err := openDatabase(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer pool.Close()
	ensureTopics(ctx, cfg, log)

	// The service's own registry, served at GET /metrics on the admin
	// listener (METRICS_ADDR), never on the API port: no global state.
	reg := prometheus.NewRegistry()
	m, backlog, err := newMetrics(reg, buildinfo.Read(), pool, log)
	if err != nil {
		return fmt.Errorf("register metrics: %w", err)
	}
	relay, writer, err := newRelay(cfg, pool, m, tracer, log)
	if err != nil {
		return err
	}
	defer closeLogged(log, "kafka writer", writer)
	if err := reg.Register(metrics.NewRelayLease(relay)); err != nil {
		return fmt.Errorf("register relay lease metrics: %w", err)
	}
	repo := newRepository(cfg, pool, relay, log)
	defer repo.Close() // sends a commit notification still owed; before pool.Close
	application := app.New(repo, newID, now, logCommitted(log))

	router, err := httpapi.New(httpapi.Deps{
		App: application, Ready: postgres.NewChecker(pool).Ready, Parked: outbox.NewParkedOutbox(pool).Count, Logger: log,
		ObserveRequest: m.ObserveRequest, Auth: auth,
		Tracer: tracer,
	}, httpapi.Options{})
	if err != nil {
		return fmt.Errorf("build http router: %w", err)
	}
	srv := cfg.HTTP.Server(router, log)
	ln, err := net.Listen("tcp", cfg.HTTP.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTP.Addr, err)
	}
	defer ln.Close() // when start-up fails below; Serve closes it otherwise
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
	g.Go(func() error { return backlog.Run(workCtx) })
	adm.Go(workCtx, g, log)
	g.Go(func() error { return pruneIdempotency(workCtx, repo, cfg.IdempotencyRetention, log) })
	if cfg.CommandsIntake {
		intake, closeIntake, err := newIntake(cfg, application, reg, m, tracer, log)
		if err != nil {
			return err
		}
		defer closeIntake()
		g.Go(func() error { return intake.Run(workCtx) })
	}
	g.Go(func() error {
		defer stopWork()
		log.Info("http api listening", "addr", ln.Addr().String())
		return envconfig.Serve(gctx, srv, ln, cfg.ShutdownTimeout)
	})
	err = g.Wait()
	log.Info("stopped", "err", err)
	return err
}

// openDatabase opens the pool and makes sure the schema is current: it
// applies the embedded migrations, or with cfg.MigrateOnStart false waits
// for an operator to apply them; either within a minute.
func openDatabase(ctx context.Context, cfg config.Config, log *slog.Logger) (*pgxpool.Pool, error) {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	pool, err := postgres.Open(ctx, cfg.DatabaseURL, postgres.WithApplicationName("companias-command"))
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	if cfg.MigrateOnStart {
		err = postgres.Migrate(ctx, pool)
		if err != nil {
			err = fmt.Errorf("migrate database: %w", err)
		}
	} else {
		err = awaitMigrations(ctx, postgres.NewChecker(pool).Ready, time.Second, log)
	}
	if err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

// startTimeout bounds opening and migrating the database at start.
const startTimeout = time.Minute

// newRelay builds the outbox relay and its Kafka writer, reporting to m
// and tracer (nil: no spans). The writer's connections are fenced by the
// relay's lease. The caller closes the writer after the relay stopped.
func newRelay(cfg config.Config, pool *pgxpool.Pool, m *metrics.Metrics, tracer trace.Tracer, log *slog.Logger) (*outbox.Relay, *outbox.Writer, error) {
	fence := outbox.NewFence()
	// The relay parks a record over KAFKA_MAX_RECORD_BYTES, the limit the
	// repository enforces at command time; a record within it must fit one
	// kafka-go batch (header and framing overhead included).
	batchBytes := max(outbox.DefaultBatchBytes, int64(cfg.KafkaMaxRecordBytes)+64<<10)
	writer, err := outbox.NewWriter(outbox.WriterConfig{Kafka: cfg.Kafka, BatchTimeout: cfg.OutboxBatchTimeout,
		BatchSize: cfg.OutboxBatchSize, BatchBytes: batchBytes, Fence: fence})
	if err != nil {
		return nil, nil, fmt.Errorf("build kafka writer: %w", err)
	}
	relay, err := outbox.New(pool, writer, outbox.Options{
		BatchSize: cfg.OutboxBatchSize, PollInterval: cfg.OutboxPollInterval, Linger: cfg.OutboxLinger, Logger: log,
		LeaseTTL: cfg.OutboxLeaseTTL, Fence: fence, MaxRecordBytes: cfg.KafkaMaxRecordBytes, BatchBytes: batchBytes,
		OnRowPublished: m.RowPublished, OnParked: m.RowParked, Tracer: tracer,
	})
	if err != nil {
		closeLogged(log, "kafka writer", writer)
		return nil, nil, fmt.Errorf("build outbox relay: %w", err)
	}
	return relay, writer, nil
}

// newRepository builds the repository: events of cfg.EventsTopic, records
// within cfg.KafkaMaxRecordBytes, group commit when cfg asks, and the relay
// woken directly after each commit while it leads (no pg_notify round trip).
func newRepository(cfg config.Config, pool *pgxpool.Pool, relay *outbox.Relay, log *slog.Logger) *postgres.Repository {
	opts := []postgres.RepositoryOption{postgres.WithTopic(cfg.EventsTopic), postgres.WithLogger(log),
		postgres.WithWaker(relay), postgres.WithMaxRecordBytes(cfg.KafkaMaxRecordBytes)}
	if cfg.WriterGroupCommit {
		opts = append(opts, postgres.WithGroupCommit(cfg.WriterGroupCommitMax))
	}
	return postgres.NewRepository(pool, opts...)
}
