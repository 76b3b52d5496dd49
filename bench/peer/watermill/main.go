// Command watermill-peer is the peer baseline of the benchmarks: the create
// path of PropAlpes Companies as a Go user would write it with off-the-shelf
// parts — gin for HTTP, a database/sql transaction (pgx's stdlib driver) that inserts the company and its
// event-log row and publishes the event through Watermill's SQL publisher
// (the transactional outbox of watermill-sql), and Watermill's Forwarder
// that moves the outbox to Kafka with watermill-kafka (Sarama).
//
// It follows the Watermill documentation ("Transactional publishing of
// messages", the Forwarder component): a per-transaction watermill-sql
// Publisher wrapped in forwarder.NewPublisher, and a forwarder.NewForwarder
// subscribed with a watermill-sql Subscriber (DefaultPostgreSQLSchema and
// DefaultPostgreSQLOffsetsAdapter, Watermill's defaults) and publishing with
// a watermill-kafka Publisher. See README.md for its settings.
//
// Environment: DATABASE_URL (required; a database of its own: the peer
// creates its tables), KAFKA_BROKERS (comma-separated, required),
// KAFKA_EVENTS_TOPIC (default topic-eventos-compania), HTTP_ADDR (default
// 127.0.0.1:8090), PEER_POLL_INTERVAL (the SQL subscriber's poll interval,
// default Watermill's 1s), PEER_BATCH_SIZE (rows per SQL subscriber query,
// default Watermill's 100), PEER_DB_MAX_CONNS (default max(8, 4×GOMAXPROCS)+2,
// the writer's command pool plus its relay's), LOG_LEVEL (debug, info, warn, error; default warn).
//
// It is a benchmark peer, not a service of the project: it lives in a module
// of its own (bench/peer/watermill) that the workspace does not list, so
// that its dependencies never enter the services' build list.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/components/forwarder"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// forwarderTopic is the watermill-sql topic of the outbox: its rows live in
// the table watermill_<forwarderTopic>.
const forwarderTopic = "companias_outbox"

type config struct {
	dbURL        string
	brokers      []string
	topic        string
	httpAddr     string
	pollInterval time.Duration
	batchSize    int
	maxConns     int
	logLevel     slog.Level
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func loadConfig() (config, error) {
	c := config{
		dbURL:    os.Getenv("DATABASE_URL"),
		topic:    env("KAFKA_EVENTS_TOPIC", "topic-eventos-compania"),
		httpAddr: env("HTTP_ADDR", "127.0.0.1:8090"),
	}
	if c.dbURL == "" {
		return c, errors.New("DATABASE_URL is required")
	}
	for _, b := range strings.Split(os.Getenv("KAFKA_BROKERS"), ",") {
		if b = strings.TrimSpace(b); b != "" {
			c.brokers = append(c.brokers, b)
		}
	}
	if len(c.brokers) == 0 {
		return c, errors.New("KAFKA_BROKERS is required")
	}
	var err error
	if c.pollInterval, err = time.ParseDuration(env("PEER_POLL_INTERVAL", "1s")); err != nil || c.pollInterval <= 0 {
		return c, fmt.Errorf("PEER_POLL_INTERVAL: a positive duration, not %q", os.Getenv("PEER_POLL_INTERVAL"))
	}
	if c.batchSize, err = strconv.Atoi(env("PEER_BATCH_SIZE", "100")); err != nil || c.batchSize < 1 {
		return c, fmt.Errorf("PEER_BATCH_SIZE: a positive integer, not %q", os.Getenv("PEER_BATCH_SIZE"))
	}
	// The writer's pools: max(8, 4×GOMAXPROCS) for commands plus 2 for its
	// relay; here one database/sql pool serves both, the Forwarder's
	// subscriber holding one connection (its transaction) while it forwards
	// a batch.
	n, err := strconv.Atoi(env("PEER_DB_MAX_CONNS", strconv.Itoa(max(8, 4*runtime.GOMAXPROCS(0))+2)))
	if err != nil || n < 2 {
		return c, fmt.Errorf("PEER_DB_MAX_CONNS: an integer ≥ 2, not %q", os.Getenv("PEER_DB_MAX_CONNS"))
	}
	c.maxConns = n
	if err := c.logLevel.UnmarshalText([]byte(env("LOG_LEVEL", "warn"))); err != nil {
		return c, fmt.Errorf("LOG_LEVEL: %w", err)
	}
	return c, nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "watermill-peer:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.logLevel}))
	wlog := watermill.NewSlogLogger(log)

	// watermill-sql v3 takes database/sql handles (*sql.DB, *sql.Tx), so
	// the database is opened through pgx's database/sql driver. The pool
	// keeps its connections (idle = open), as pgxpool did.
	pcfg, err := pgx.ParseConfig(cfg.dbURL)
	if err != nil {
		return fmt.Errorf("DATABASE_URL: %w", err)
	}
	db := stdlib.OpenDB(*pcfg)
	defer db.Close()
	db.SetMaxOpenConns(cfg.maxConns)
	db.SetMaxIdleConns(cfg.maxConns)
	if err := db.PingContext(ctx); err != nil {
		return fmt.Errorf("database: %w", err)
	}
	if _, err := db.ExecContext(ctx, schema); err != nil {
		return fmt.Errorf("create the tables: %w", err)
	}

	// The outbox side: watermill-sql on the same database/sql pool.
	sqlSchema := wsql.DefaultPostgreSQLSchema{SubscribeBatchSize: cfg.batchSize}
	sub, err := wsql.NewSubscriber(db, wsql.SubscriberConfig{
		SchemaAdapter:    sqlSchema,
		OffsetsAdapter:   wsql.DefaultPostgreSQLOffsetsAdapter{},
		PollInterval:     cfg.pollInterval,
		InitializeSchema: true,
	}, wlog)
	if err != nil {
		return fmt.Errorf("sql subscriber: %w", err)
	}
	// The outbox table must exist before the first transaction publishes
	// into it (a publisher inside a transaction cannot create it).
	if err := sub.SubscribeInitialize(forwarderTopic); err != nil {
		return fmt.Errorf("create the outbox table: %w", err)
	}

	// The Kafka side: watermill-kafka's Sarama sync producer. Acks from all
	// in-sync replicas, as the project's relay asks; the record key is the
	// company id, so a company's events stay in order on one partition.
	saramaCfg := kafka.DefaultSaramaSyncPublisherConfig()
	saramaCfg.Producer.RequiredAcks = sarama.WaitForAll
	saramaCfg.ClientID = "watermill-peer"
	kpub, err := kafka.NewPublisher(kafka.PublisherConfig{
		Brokers: cfg.brokers,
		Marshaler: kafka.NewWithPartitioningMarshaler(func(_ string, m *message.Message) (string, error) {
			return m.Metadata.Get(partitionKey), nil
		}),
		OverwriteSaramaConfig: saramaCfg,
	}, wlog)
	if err != nil {
		return fmt.Errorf("kafka publisher: %w", err)
	}
	defer kpub.Close()

	fwd, err := forwarder.NewForwarder(sub, kpub, wlog, forwarder.Config{
		ForwarderTopic: forwarderTopic,
		CloseTimeout:   10 * time.Second,
	})
	if err != nil {
		return fmt.Errorf("forwarder: %w", err)
	}
	fwdDone := make(chan error, 1)
	go func() { fwdDone <- fwd.Run(context.WithoutCancel(ctx)) }()
	select {
	case <-fwd.Running():
	case err := <-fwdDone:
		return fmt.Errorf("forwarder: %w", err)
	case <-ctx.Done():
		_ = fwd.Close()
		return nil
	}

	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(gin.Recovery())
	h := &handlers{db: db, schema: sqlSchema, topic: cfg.topic, log: wlog}
	r.POST("/v1/companias", h.crear)
	r.GET("/healthz", func(c *gin.Context) { c.Status(http.StatusOK) })
	r.GET("/readyz", func(c *gin.Context) {
		select {
		case <-fwd.Running():
			c.Status(http.StatusOK)
		default:
			c.Status(http.StatusServiceUnavailable)
		}
	})
	srv := &http.Server{Addr: cfg.httpAddr, Handler: r, ReadHeaderTimeout: 10 * time.Second}
	srvDone := make(chan error, 1)
	go func() { srvDone <- srv.ListenAndServe() }()
	log.Info("watermill peer listening", "addr", cfg.httpAddr, "topic", cfg.topic, "poll", cfg.pollInterval)

	select {
	case <-ctx.Done():
	case err := <-srvDone:
		_ = fwd.Close()
		return fmt.Errorf("http: %w", err)
	case err := <-fwdDone:
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		return fmt.Errorf("forwarder stopped: %v", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("http shutdown", "err", err)
	}
	if err := fwd.Close(); err != nil {
		log.Warn("forwarder close", "err", err)
	}
	<-fwdDone
	return nil
}
