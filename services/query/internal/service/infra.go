package service

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/propalpes/companias/libs/kafkakit/topics"
	"github.com/propalpes/companias/libs/seedwork/retry"
	"github.com/propalpes/companias/services/query/internal/adapters/mongoview"
	"github.com/propalpes/companias/services/query/internal/config"
)

// startupTimeout bounds each start-up step that talks to Kafka or MongoDB,
// so that an unreachable dependency fails the attempt instead of hanging it.
const startupTimeout = 30 * time.Second

// startupRetry is the backoff between the attempts of serve to reach a
// dependency at start; the jitter spreads the replicas started together.
var startupRetry = retry.Backoff{Min: 500 * time.Millisecond, Max: 10 * time.Second, Jitter: 0.2}

// Dependencies serve waits for, as named in logs and in the readiness probe.
const (
	depKafka = "kafka"
	depMongo = "mongodb"
)

// infra holds the clients shared by every command.
type infra struct {
	mongo *mongo.Client
	store *mongoview.Store
	log   *slog.Logger
}

// openInfra creates the events and dead-letter topics if they are missing
// and cfg.KafkaCreateTopics is set (before any Kafka reader or writer
// exists, see package topics),
// connects to MongoDB and opens the view store. It fails at the first
// error: the rebuild command reports an unreachable dependency at once.
func openInfra(ctx context.Context, cfg config.Config, log *slog.Logger) (*infra, error) {
	if err := ensureTopics(ctx, cfg); err != nil {
		return nil, err
	}
	client, err := connectMongo(cfg)
	if err != nil {
		return nil, err
	}
	store, err := openStore(ctx, cfg, client)
	if err != nil {
		disconnect(client, cfg.ShutdownTimeout)
		return nil, err
	}
	log.Info("infrastructure ready", "topics", []string{cfg.KafkaEventsTopic, cfg.KafkaEventsDLQTopic}, "mongo_database", cfg.MongoDatabase)
	return &infra{mongo: client, store: store, log: log}, nil
}

// waitInfra is openInfra for a long-running service: while Kafka (when it
// creates topics) or MongoDB cannot be reached it retries, with capped exponential backoff, logging
// each failed attempt and reporting through w what it waits for, instead of
// failing. A malformed MongoDB URI still fails at once, since retrying
// cannot fix it. It returns ctx's error if ctx ends first (SIGTERM).
func waitInfra(ctx context.Context, cfg config.Config, log *slog.Logger, w *startupState) (*infra, error) {
	if cfg.KafkaCreateTopics {
		w.waitFor(depKafka)
		if err := retryStartup(ctx, log, depKafka, func() error { return ensureTopics(ctx, cfg) }); err != nil {
			return nil, err
		}
		w.ready(depKafka)
	} else {
		w.skip(depKafka) // the consumer reaches Kafka; its join makes the service ready
	}

	client, err := connectMongo(cfg)
	if err != nil {
		return nil, err
	}
	w.waitFor(depMongo)
	var store *mongoview.Store
	err = retryStartup(ctx, log, depMongo, func() error {
		var err error
		store, err = openStore(ctx, cfg, client) // the client reconnects by itself
		return err
	})
	if err != nil {
		disconnect(client, cfg.ShutdownTimeout)
		return nil, err
	}
	w.ready(depMongo)
	log.Info("infrastructure ready", "topics", []string{cfg.KafkaEventsTopic, cfg.KafkaEventsDLQTopic}, "mongo_database", cfg.MongoDatabase)
	return &infra{mongo: client, store: store, log: log}, nil
}

// retryStartup calls attempt until it succeeds or ctx ends, waiting
// startupRetry's delays between attempts.
func retryStartup(ctx context.Context, log *slog.Logger, dep string, attempt func() error) error {
	for n := 1; ; n++ {
		err := attempt()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err == nil {
			if n > 1 {
				log.Info("reached "+dep, "attempts", n)
			}
			return nil
		}
		d := startupRetry.Delay(n - 1)
		log.Warn("waiting for "+dep, "attempt", n, "retry_in", d, "err", err)
		if !retry.Sleep(ctx, d) {
			return ctx.Err()
		}
	}
}

// ensureTopics creates the events topic (kept forever) and its dead-letter
// topic (kept cfg.KafkaDLQRetention) if missing. Without
// cfg.KafkaCreateTopics it does nothing, not even read metadata: the topics
// are provisioned beforehand and the principal may lack Create permission.
func ensureTopics(ctx context.Context, cfg config.Config) error {
	if !cfg.KafkaCreateTopics {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, startupTimeout)
	defer cancel()
	return topics.Ensure(ctx, cfg.Kafka,
		topics.Topic{Name: cfg.KafkaEventsTopic, Partitions: cfg.KafkaTopicPartitions, ReplicationFactor: cfg.KafkaReplicationFactor},
		topics.Topic{Name: cfg.KafkaEventsDLQTopic, Partitions: cfg.KafkaTopicPartitions, ReplicationFactor: cfg.KafkaReplicationFactor,
			Retention: cfg.KafkaDLQRetention},
	)
}

// connectMongo builds the MongoDB client. It does no I/O: an error means a
// malformed URI or option.
func connectMongo(cfg config.Config) (*mongo.Client, error) {
	// Defaults first: options given in MONGO_URI override them.
	client, err := mongo.Connect(options.Client().
		SetAppName("companias-query").
		SetServerSelectionTimeout(10 * time.Second).
		ApplyURI(cfg.MongoURI))
	if err != nil {
		return nil, fmt.Errorf("connect to mongodb: %w", err)
	}
	return client, nil
}

// openStore opens the view store on client (see mongoview.Open).
func openStore(ctx context.Context, cfg config.Config, client *mongo.Client) (*mongoview.Store, error) {
	ctx, cancel := context.WithTimeout(ctx, startupTimeout)
	defer cancel()
	store, err := mongoview.Open(ctx, client, mongoview.Options{Database: cfg.MongoDatabase, ChunkSize: cfg.ProjectionWriteChunk,
		QueryTimeout: cfg.MongoQueryTimeout})
	if err != nil {
		return nil, fmt.Errorf("open view store: %w", err)
	}
	return store, nil
}

// disconnect closes client within timeout, ignoring the error: it runs on
// a start-up failure path that already reports one.
func disconnect(client *mongo.Client, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_ = client.Disconnect(ctx)
}

// close disconnects from MongoDB within timeout. It runs last, after every
// user of the store has stopped.
func (i *infra) close(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := i.mongo.Disconnect(ctx); err != nil {
		return fmt.Errorf("disconnect from mongodb: %w", err)
	}
	return nil
}
