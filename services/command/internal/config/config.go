// Package config reads the command service's configuration from the
// environment, once, at start-up. It is the only package that reads
// environment variables; Load reports every problem at once.
package config

import (
	"maps"
	"time"

	"github.com/propalpes/companias/libs/contracts/companiacmd"
	"github.com/propalpes/companias/libs/contracts/companiaevent"
	"github.com/propalpes/companias/libs/contracts/deadletter"
	"github.com/propalpes/companias/libs/kafkakit"
	"github.com/propalpes/companias/libs/kafkakit/topics"
	"github.com/propalpes/companias/libs/seedwork/envconfig"
)

// Config is the complete configuration of the command service.
type Config struct {
	// Service holds what both services read alike: HTTP (HTTP_ADDR 127.0.0.1:8080
	// and the HTTP_*_TIMEOUTs), Admin (METRICS_ADDR 127.0.0.1:9090,
	// PPROF_*), Auth (AUTH_*), Tracing (OTEL_*), ShutdownTimeout and LogLevel.
	envconfig.Service
	// DatabaseURL is the PostgreSQL connection string: DATABASE_URL, or the
	// content of the file DATABASE_URL_FILE (one trailing newline removed);
	// setting both is an error.
	DatabaseURL string
	// MigrateOnStart makes serve apply the embedded schema migrations before
	// it starts (MIGRATE_ON_START, default true). With false the migrations
	// are an operator's step (`companias-command migrate`, the Kubernetes
	// Job): serve waits up to a minute for the schema to be migrated and
	// fails if it is not.
	MigrateOnStart bool
	// Kafka is how the service reaches its cluster: the bootstrap brokers
	// (KAFKA_BROKERS, comma-separated), TLS (KAFKA_TLS_*) and SASL
	// (KAFKA_SASL_*), read by kafkakit.Load; ClientID is "companias-command".
	// Every Kafka client of the service is built from it.
	Kafka kafkakit.Config
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
	// KafkaMembership tunes the command intake's group membership
	// (KAFKA_SESSION_TIMEOUT, KAFKA_HEARTBEAT_INTERVAL,
	// KAFKA_REBALANCE_TIMEOUT), read and checked by kafkakit.LoadMembership
	// as the query service reads it.
	KafkaMembership kafkakit.Membership
	// TopicPartitions is the partition count used when the service creates
	// missing topics at start-up (KAFKA_TOPIC_PARTITIONS).
	TopicPartitions int
	// TopicReplicationFactor is the replication factor used when the
	// service creates missing topics (KAFKA_REPLICATION_FACTOR, 0..32); 0
	// (the default) means min(3, brokers in the cluster). Read by
	// topics.LoadSettings, as the query service reads it.
	TopicReplicationFactor int
	// DLQRetention is the retention of the dead-letter topic when the
	// service creates it (KAFKA_DLQ_RETENTION): dead letters hold personal
	// data. The event and command topics it creates keep records forever.
	DLQRetention time.Duration
	// CreateTopics makes the service create missing topics at start-up
	// (KAFKA_CREATE_TOPICS, default true; read by topics.LoadSettings).
	CreateTopics bool
	// KafkaMaxRecordBytes is the most bytes the Kafka record of one event
	// (key, value, header keys and values) may have; a command whose event
	// would exceed it is refused before anything is stored
	// (KAFKA_MAX_RECORD_BYTES). Keep it below the event topic's
	// max.message.bytes.
	KafkaMaxRecordBytes int
	// WriterGroupCommit makes concurrent creates share transactions and
	// multi-row statements, each still answered on its own
	// (WRITER_GROUP_COMMIT; see postgres.WithGroupCommit).
	WriterGroupCommit bool
	// WriterGroupCommitMax is the most creates of one group transaction
	// (WRITER_GROUP_COMMIT_MAX, 2..1000).
	WriterGroupCommitMax int
	// OutboxBatchSize is the most outbox rows published per Kafka write (OUTBOX_BATCH_SIZE).
	OutboxBatchSize int
	// OutboxPollInterval is the relay's polling fallback when no NOTIFY arrives (OUTBOX_POLL_INTERVAL).
	OutboxPollInterval time.Duration
	// OutboxBatchTimeout is the kafka-go Writer BatchTimeout (OUTBOX_BATCH_TIMEOUT).
	OutboxBatchTimeout time.Duration
	// OutboxLinger is how long the relay waits after a commit woke it before
	// it claims, so that the commits of that time share one batch (OUTBOX_LINGER; 0: none).
	OutboxLinger time.Duration
	// OutboxLeaseTTL is the time to live of the relay's leadership lease:
	// a leader killed, frozen or cut off from PostgreSQL is replaced within
	// about that (OUTBOX_LEASE_TTL).
	OutboxLeaseTTL time.Duration
	// IdempotencyRetention is how long idempotency records are kept (IDEMPOTENCY_RETENTION).
	IdempotencyRetention time.Duration
}

// Tracing is the OpenTelemetry tracing configuration (OTEL_*, see envconfig.Parser.Tracing).
type Tracing = envconfig.Tracing

// ClientID is the Kafka client id of the service's connections.
const ClientID = "companias-command"

// DefaultMetricsAddr is the default METRICS_ADDR: loopback, and a port
// apart from the query service's, so both run side by side (make run).
const DefaultMetricsAddr = "127.0.0.1:9090"

// Defaults of the HTTP server settings (Config.HTTP).
const (
	DefaultHTTPAddr              = "127.0.0.1:8080" // loopback: deploy files set :8080 with auth on
	DefaultHTTPReadHeaderTimeout = 5 * time.Second
	DefaultHTTPReadTimeout       = 15 * time.Second
	DefaultHTTPWriteTimeout      = 30 * time.Second
	DefaultHTTPIdleTimeout       = 2 * time.Minute
)

// defaults are the values used for unset variables: the service's own
// (HTTP_* are read by envconfig.Parser.HTTPServer), kafkakit's and package
// topics' (topics.WithKafkaVariables).
var defaults = topics.WithKafkaVariables(map[string]string{
	"HTTP_ADDR":                  DefaultHTTPAddr,
	"HTTP_READ_HEADER_TIMEOUT":   DefaultHTTPReadHeaderTimeout.String(),
	"HTTP_READ_TIMEOUT":          DefaultHTTPReadTimeout.String(),
	"HTTP_WRITE_TIMEOUT":         DefaultHTTPWriteTimeout.String(),
	"HTTP_IDLE_TIMEOUT":          DefaultHTTPIdleTimeout.String(),
	"DATABASE_URL":               "postgres://postgres@127.0.0.1:5432/propalpes?sslmode=disable",
	"DATABASE_URL_FILE":          "",
	"MIGRATE_ON_START":           "true",
	"KAFKA_BROKERS":              "127.0.0.1:9092",
	"KAFKA_EVENTS_TOPIC":         companiaevent.DefaultTopic,
	"KAFKA_COMMANDS_TOPIC":       companiacmd.DefaultTopic,
	"KAFKA_COMMANDS_DLQ_TOPIC":   "", // derived from KAFKA_COMMANDS_TOPIC
	"KAFKA_COMMANDS_GROUP_ID":    "companias-command",
	"KAFKA_COMMANDS_ENABLED":     "true",
	"KAFKA_TOPIC_PARTITIONS":     "6",
	"KAFKA_DLQ_RETENTION":        "168h",
	"KAFKA_MAX_RECORD_BYTES":     "1000000",
	"WRITER_GROUP_COMMIT":        "true",
	"WRITER_GROUP_COMMIT_MAX":    "64",
	"OUTBOX_BATCH_SIZE":          "500",
	"OUTBOX_POLL_INTERVAL":       "1s",
	"OUTBOX_BATCH_TIMEOUT":       "1ms",
	"OUTBOX_LINGER":              "5ms",
	"OUTBOX_LEASE_TTL":           "5s",
	"IDEMPOTENCY_RETENTION":      "24h",
	"SHUTDOWN_TIMEOUT":           "10s",
	"LOG_LEVEL":                  "info",
	"METRICS_ADDR":               DefaultMetricsAddr,
	"PPROF_ADDR":                 "",
	"PPROF_ALLOW_REMOTE":         "false",
	"AUTH_MODE":                  "", // none on a loopback HTTP_ADDR; otherwise required
	"AUTH_ALLOW_NONE_ON_NETWORK": "false",
	"AUTH_HS256_SECRET":          "",
	"AUTH_HS256_SECRET_FILE":     "",
	"AUTH_JWKS_URL":              "",
	"AUTH_ISSUER":                "",
	"AUTH_AUDIENCE":              "",

	"OTEL_EXPORTER_OTLP_ENDPOINT":        "",
	"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "",
	"OTEL_SERVICE_NAME":                  "companias-command",
	"OTEL_TRACES_SAMPLER_ARG":            "1.0",
})

// Variables lists every environment variable the writer reads, with its
// default ("" when it has none or is derived from another).
func Variables() map[string]string { return maps.Clone(defaults) }

// Load reads the writer's configuration through getenv (os.Getenv in main)
// and the files its *_FILE variables name (DATABASE_URL_FILE,
// AUTH_HS256_SECRET_FILE) through readFile (os.ReadFile in main), and
// validates it. The error, "invalid configuration: …", lists every invalid
// variable; an unreadable file is one of them.
func Load(getenv func(string) string, readFile func(string) ([]byte, error)) (Config, error) {
	p := envconfig.New(getenv, readFile, defaults)
	c := Config{
		Service:              p.Service(),
		DatabaseURL:          p.SecretURL("DATABASE_URL", "postgres://", "postgresql://"),
		MigrateOnStart:       p.Bool("MIGRATE_ON_START"),
		Kafka:                kafkakit.Load(p),
		EventsTopic:          p.Topic("KAFKA_EVENTS_TOPIC"),
		CommandsTopic:        p.Topic("KAFKA_COMMANDS_TOPIC"),
		CommandsGroupID:      p.Str("KAFKA_COMMANDS_GROUP_ID"),
		CommandsIntake:       p.Bool("KAFKA_COMMANDS_ENABLED"),
		KafkaMembership:      kafkakit.LoadMembership(p),
		TopicPartitions:      p.IntRange("KAFKA_TOPIC_PARTITIONS", 1, 10000),
		DLQRetention:         p.DurationRange("KAFKA_DLQ_RETENTION", time.Hour, 10*365*24*time.Hour),
		KafkaMaxRecordBytes:  p.IntRange("KAFKA_MAX_RECORD_BYTES", 1024, 16<<20),
		WriterGroupCommit:    p.Bool("WRITER_GROUP_COMMIT"),
		WriterGroupCommitMax: p.IntRange("WRITER_GROUP_COMMIT_MAX", 2, 1000),
		OutboxBatchSize:      p.IntRange("OUTBOX_BATCH_SIZE", 1, 10000),
		OutboxPollInterval:   p.DurationRange("OUTBOX_POLL_INTERVAL", 10*time.Millisecond, time.Hour),
		OutboxBatchTimeout:   p.DurationRange("OUTBOX_BATCH_TIMEOUT", time.Millisecond, 10*time.Second),
		OutboxLinger:         p.DurationRange("OUTBOX_LINGER", 0, time.Second),
		OutboxLeaseTTL:       p.DurationRange("OUTBOX_LEASE_TTL", time.Second, 5*time.Minute),
		IdempotencyRetention: p.DurationRange("IDEMPOTENCY_RETENTION", time.Minute, 365*24*time.Hour),
	}
	c.Kafka.ClientID = ClientID
	ts := topics.LoadSettings(p)
	c.CreateTopics, c.TopicReplicationFactor = ts.Create, ts.ReplicationFactor
	c.CommandsDLQTopic = deadletter.Topic(c.CommandsTopic)
	if p.IsSet("KAFKA_COMMANDS_DLQ_TOPIC") {
		c.CommandsDLQTopic = p.Topic("KAFKA_COMMANDS_DLQ_TOPIC")
	}
	if c.CommandsTopic != "" && (c.CommandsTopic == c.EventsTopic || c.CommandsDLQTopic == c.CommandsTopic) {
		p.Fail("KAFKA_COMMANDS_TOPIC", "must differ from KAFKA_EVENTS_TOPIC and KAFKA_COMMANDS_DLQ_TOPIC")
	}
	if err := p.Err(); err != nil {
		return Config{}, err
	}
	return c, nil
}
