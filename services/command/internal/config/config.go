// Package config reads the command service's configuration from the
// environment, once, at start-up. It is the only package that reads
// environment variables; Load reports every problem at once.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/propalpes/companias/libs/contracts/companiacmd"
	"github.com/propalpes/companias/libs/contracts/companiaevent"
	"github.com/propalpes/companias/libs/contracts/deadletter"
)

// Config is the complete configuration of the command service.
type Config struct {
	// HTTPAddr is the listen address of the HTTP API (HTTP_ADDR).
	HTTPAddr string
	// DatabaseURL is the PostgreSQL connection string (DATABASE_URL).
	DatabaseURL string
	// KafkaBrokers are the bootstrap brokers (KAFKA_BROKERS, comma-separated).
	KafkaBrokers []string
	// EventsTopic receives the integration events (KAFKA_EVENTS_TOPIC).
	EventsTopic string
	// CommandsTopic carries CrearCompania commands (KAFKA_COMMANDS_TOPIC).
	CommandsTopic string
	// CommandsDLQTopic receives rejected commands (KAFKA_COMMANDS_DLQ_TOPIC).
	CommandsDLQTopic string
	// CommandsGroupID is the consumer group of the command intake (KAFKA_COMMANDS_GROUP_ID).
	CommandsGroupID string
	// CommandsIntake enables the Kafka command intake (KAFKA_COMMANDS_ENABLED).
	CommandsIntake bool
	// TopicPartitions is the partition count used when the service creates
	// missing topics at start-up (KAFKA_TOPIC_PARTITIONS).
	TopicPartitions int
	// CreateTopics makes the service create missing topics at start-up (KAFKA_CREATE_TOPICS).
	CreateTopics bool
	// OutboxBatchSize is the most outbox rows published per Kafka write (OUTBOX_BATCH_SIZE).
	OutboxBatchSize int
	// OutboxPollInterval is the relay's polling fallback when no NOTIFY arrives (OUTBOX_POLL_INTERVAL).
	OutboxPollInterval time.Duration
	// OutboxBatchTimeout is the kafka-go Writer BatchTimeout (OUTBOX_BATCH_TIMEOUT).
	OutboxBatchTimeout time.Duration
	// OutboxRetention is how long published rows are kept before pruning (OUTBOX_RETENTION).
	OutboxRetention time.Duration
	// IdempotencyRetention is how long idempotency records are kept (IDEMPOTENCY_RETENTION).
	IdempotencyRetention time.Duration
	// ShutdownTimeout bounds the graceful stop (SHUTDOWN_TIMEOUT).
	ShutdownTimeout time.Duration
	// LogLevel is debug, info, warn or error (LOG_LEVEL).
	LogLevel slog.Level
}

// Defaults are the values used for unset variables.
var defaults = map[string]string{
	"HTTP_ADDR":                ":8080",
	"DATABASE_URL":             "postgres://postgres@127.0.0.1:5432/propalpes?sslmode=disable",
	"KAFKA_BROKERS":            "127.0.0.1:9092",
	"KAFKA_EVENTS_TOPIC":       companiaevent.DefaultTopic,
	"KAFKA_COMMANDS_TOPIC":     companiacmd.DefaultTopic,
	"KAFKA_COMMANDS_DLQ_TOPIC": "", // derived from KAFKA_COMMANDS_TOPIC
	"KAFKA_COMMANDS_GROUP_ID":  "companias-command",
	"KAFKA_COMMANDS_ENABLED":   "true",
	"KAFKA_TOPIC_PARTITIONS":   "6",
	"KAFKA_CREATE_TOPICS":      "true",
	"OUTBOX_BATCH_SIZE":        "500",
	"OUTBOX_POLL_INTERVAL":     "1s",
	"OUTBOX_BATCH_TIMEOUT":     "1ms",
	"OUTBOX_RETENTION":         "24h",
	"IDEMPOTENCY_RETENTION":    "24h",
	"SHUTDOWN_TIMEOUT":         "10s",
	"LOG_LEVEL":                "info",
}

// Variables lists every environment variable the service reads
// with its default ("" when it has none or is derived).
func Variables() map[string]string {
	out := make(map[string]string, len(defaults))
	for k, v := range defaults {
		out[k] = v
	}
	return out
}

// Load reads the configuration through getenv (os.Getenv in main) and
// validates it. The error lists every invalid variable.
func Load(getenv func(string) string) (Config, error) {
	p := parser{getenv: getenv}
	c := Config{
		HTTPAddr:             p.addr("HTTP_ADDR"),
		DatabaseURL:          p.str("DATABASE_URL"),
		KafkaBrokers:         p.list("KAFKA_BROKERS"),
		EventsTopic:          p.topic("KAFKA_EVENTS_TOPIC"),
		CommandsTopic:        p.topic("KAFKA_COMMANDS_TOPIC"),
		CommandsGroupID:      p.str("KAFKA_COMMANDS_GROUP_ID"),
		CommandsIntake:       p.boolean("KAFKA_COMMANDS_ENABLED"),
		TopicPartitions:      p.intRange("KAFKA_TOPIC_PARTITIONS", 1, 10000),
		CreateTopics:         p.boolean("KAFKA_CREATE_TOPICS"),
		OutboxBatchSize:      p.intRange("OUTBOX_BATCH_SIZE", 1, 10000),
		OutboxPollInterval:   p.duration("OUTBOX_POLL_INTERVAL", 10*time.Millisecond, time.Hour),
		OutboxBatchTimeout:   p.duration("OUTBOX_BATCH_TIMEOUT", time.Millisecond, 10*time.Second),
		OutboxRetention:      p.duration("OUTBOX_RETENTION", time.Minute, 365*24*time.Hour),
		IdempotencyRetention: p.duration("IDEMPOTENCY_RETENTION", time.Minute, 365*24*time.Hour),
		ShutdownTimeout:      p.duration("SHUTDOWN_TIMEOUT", time.Second, 10*time.Minute),
		LogLevel:             p.level("LOG_LEVEL"),
	}
	c.CommandsDLQTopic = deadletter.Topic(c.CommandsTopic)
	if v := getenv("KAFKA_COMMANDS_DLQ_TOPIC"); v != "" {
		c.CommandsDLQTopic = p.topic("KAFKA_COMMANDS_DLQ_TOPIC")
	}
	if c.DatabaseURL != "" && !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		p.fail("DATABASE_URL", "must be a postgres:// URL")
	}
	if c.CommandsTopic != "" && (c.CommandsTopic == c.EventsTopic || c.CommandsDLQTopic == c.CommandsTopic) {
		p.fail("KAFKA_COMMANDS_TOPIC", "must differ from KAFKA_EVENTS_TOPIC and KAFKA_COMMANDS_DLQ_TOPIC")
	}
	if len(p.errs) > 0 {
		return Config{}, fmt.Errorf("invalid configuration: %w", errors.Join(p.errs...))
	}
	return c, nil
}

type parser struct {
	getenv func(string) string
	errs   []error
}

func (p *parser) fail(name, msg string) { p.errs = append(p.errs, fmt.Errorf("%s %s", name, msg)) }

func (p *parser) raw(name string) string {
	if v := strings.TrimSpace(p.getenv(name)); v != "" {
		return v
	}
	return defaults[name]
}

func (p *parser) str(name string) string {
	v := p.raw(name)
	if v == "" {
		p.fail(name, "is required")
	}
	return v
}

func (p *parser) addr(name string) string {
	v := p.str(name)
	if _, port, err := net.SplitHostPort(v); v != "" && (err != nil || port == "") {
		p.fail(name, fmt.Sprintf("must be host:port, got %q", v))
	}
	return v
}

func (p *parser) list(name string) []string {
	var out []string
	for _, s := range strings.Split(p.str(name), ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(s); err != nil {
			p.fail(name, fmt.Sprintf("entry %q must be host:port", s))
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		p.fail(name, "needs at least one host:port")
	}
	return out
}

func (p *parser) topic(name string) string {
	v := p.str(name)
	if len(v) > 249 || strings.Trim(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != "" || v == "." || v == ".." {
		p.fail(name, fmt.Sprintf("is not a valid Kafka topic name: %q", v))
	}
	return v
}

func (p *parser) boolean(name string) bool {
	b, err := strconv.ParseBool(p.raw(name))
	if err != nil {
		p.fail(name, fmt.Sprintf("must be true or false, got %q", p.raw(name)))
	}
	return b
}

func (p *parser) intRange(name string, lo, hi int) int {
	n, err := strconv.Atoi(p.raw(name))
	if err != nil || n < lo || n > hi {
		p.fail(name, fmt.Sprintf("must be an integer in [%d, %d], got %q", lo, hi, p.raw(name)))
	}
	return n
}

func (p *parser) duration(name string, lo, hi time.Duration) time.Duration {
	d, err := time.ParseDuration(p.raw(name))
	if err != nil || d < lo || d > hi {
		p.fail(name, fmt.Sprintf("must be a duration in [%s, %s], got %q", lo, hi, p.raw(name)))
	}
	return d
}

func (p *parser) level(name string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(p.raw(name))); err != nil {
		p.fail(name, fmt.Sprintf("must be debug, info, warn or error, got %q", p.raw(name)))
	}
	return l
}
