package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/propalpes/companias/services/query/internal/adapters/kafkatopic"
	"github.com/propalpes/companias/services/query/internal/adapters/mongoview"
	"github.com/propalpes/companias/services/query/internal/config"
)

// startupTimeout bounds each start-up step that talks to Kafka or MongoDB,
// so that an unreachable dependency fails the start instead of hanging it.
const startupTimeout = 30 * time.Second

// infra holds the clients shared by every command.
type infra struct {
	mongo *mongo.Client
	store *mongoview.Store
	log   *slog.Logger
}

// openInfra creates the events and dead-letter topics if they are missing
// (before any Kafka reader or writer exists, see package kafkatopic),
// connects to MongoDB and opens the view store.
func openInfra(ctx context.Context, cfg config.Config, log *slog.Logger) (*infra, error) {
	tctx, cancel := context.WithTimeout(ctx, startupTimeout)
	defer cancel()
	topics := []kafkatopic.Topic{
		{Name: cfg.KafkaEventsTopic, Partitions: cfg.KafkaTopicPartitions, ReplicationFactor: cfg.KafkaReplicationFactor},
		{Name: cfg.KafkaEventsDLQTopic, Partitions: cfg.KafkaTopicPartitions, ReplicationFactor: cfg.KafkaReplicationFactor},
	}
	if err := kafkatopic.Ensure(tctx, cfg.KafkaBrokers, topics...); err != nil {
		return nil, err
	}

	// Defaults first: options given in MONGO_URI override them.
	client, err := mongo.Connect(options.Client().
		SetAppName("companias-query").
		SetServerSelectionTimeout(10 * time.Second).
		ApplyURI(cfg.MongoURI))
	if err != nil {
		return nil, fmt.Errorf("connect to mongodb: %w", err)
	}
	store, err := mongoview.Open(tctx, client, mongoview.Options{Database: cfg.MongoDatabase})
	if err != nil {
		dctx, dcancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		defer dcancel()
		_ = client.Disconnect(dctx)
		return nil, fmt.Errorf("open view store: %w", err)
	}
	log.Info("infrastructure ready", "topics", []string{cfg.KafkaEventsTopic, cfg.KafkaEventsDLQTopic}, "mongo_database", cfg.MongoDatabase)
	return &infra{mongo: client, store: store, log: log}, nil
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
