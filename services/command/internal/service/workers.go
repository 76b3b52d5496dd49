package service

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/propalpes/companias/libs/kafkakit/grouplag"
	"github.com/propalpes/companias/libs/kafkakit/topics"
	"github.com/propalpes/companias/services/command/internal/app"
	"github.com/propalpes/companias/services/command/internal/config"
	"github.com/propalpes/companias/services/command/internal/domain/compania"
	"github.com/propalpes/companias/services/command/internal/metrics"
	"github.com/propalpes/companias/services/command/internal/ports/kafkaintake"
)

// ensureTopics creates the service's missing topics (serviceTopics) when
// cfg.CreateTopics is set. Kafka may be down: commands still succeed and
// the relay drains the outbox once it is back, so a failure is only logged.
func ensureTopics(ctx context.Context, cfg config.Config, log *slog.Logger) {
	if !cfg.CreateTopics {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if err := topics.Ensure(ctx, cfg.Kafka, serviceTopics(cfg)...); err != nil {
		log.Warn("could not ensure Kafka topics; the relay retries publishing until Kafka is back", "err", err)
	}
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

// newIntake builds the Kafka command intake, which creates companies
// through application, and registers on reg the lag of the command
// partitions it owns (as the query service reports its projection's:
// summed over the replicas, the group's lag). The returned func closes the
// lag collector's connections; call it after the intake stopped.
func newIntake(cfg config.Config, application app.Application, reg prometheus.Registerer, m *metrics.Metrics, tracer trace.Tracer, log *slog.Logger) (*kafkaintake.Consumer, func(), error) {
	dialer, err := cfg.Kafka.Dialer()
	if err != nil {
		return nil, nil, fmt.Errorf("build kafka intake dialer: %w", err)
	}
	dlqTransport, err := cfg.Kafka.Transport()
	if err != nil {
		return nil, nil, fmt.Errorf("build kafka intake transport: %w", err)
	}
	intake, err := kafkaintake.New(kafkaintake.Config{
		Brokers: cfg.Kafka.Brokers, Dialer: dialer, Transport: dlqTransport, GroupID: cfg.CommandsGroupID, Topic: cfg.CommandsTopic, DeadLetterTopic: cfg.CommandsDLQTopic,
		SessionTimeout: cfg.KafkaMembership.SessionTimeout, HeartbeatInterval: cfg.KafkaMembership.HeartbeatInterval,
		RebalanceTimeout: cfg.KafkaMembership.RebalanceTimeout,
		OnDeadLetter:     m.DeadLettered, LogTraceContext: tracer != nil,
	}, application.Commands.CrearCompania, log)
	if err != nil {
		return nil, nil, fmt.Errorf("build kafka intake: %w", err)
	}
	lag, err := grouplag.New(intake, cfg.Kafka, grouplag.Options{Logger: log.With("component", "lag")})
	if err != nil {
		return nil, nil, fmt.Errorf("build kafka intake lag collector: %w", err)
	}
	if err := reg.Register(lag); err != nil {
		lag.Close()
		return nil, nil, fmt.Errorf("register metrics: %w", err)
	}
	return intake, lag.Close, nil
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
				log.Warn("prune idempotency records", "err", err)
			} else if n > 0 {
				log.Debug("pruned idempotency records", "rows", n)
			}
		}
	}
}

// logCommitted is the application's after-commit hook: a debug line per
// domain event committed.
func logCommitted(log *slog.Logger) func(context.Context, []compania.Event) {
	return func(ctx context.Context, events []compania.Event) {
		for _, e := range events {
			s := e.State()
			log.DebugContext(ctx, "domain event committed", "event", e.EventName(), "compania_id", s.ID, "version", s.Version)
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
		log.Warn("close "+what, "err", err)
	}
}
