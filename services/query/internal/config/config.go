// Package config is the only place where the query service reads its
// environment. Load reads every variable once into a typed Config with
// explicit defaults through envconfig, as the command service's config
// does, and reports every problem at once.
package config

import (
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/propalpes/companias/libs/contracts/companiaevent"
	"github.com/propalpes/companias/libs/contracts/deadletter"
	"github.com/propalpes/companias/libs/kafkakit"
	"github.com/propalpes/companias/libs/kafkakit/topics"
	"github.com/propalpes/companias/libs/seedwork/envconfig"
)

// Defaults of every setting. An unset or empty variable takes its default.
const (
	DefaultHTTPAddr               = "127.0.0.1:8081" // loopback: deploy files set :8081 with auth on
	DefaultMetricsAddr            = "127.0.0.1:9091" // loopback, apart from the writer's 9090
	DefaultHTTPReadHeaderTimeout  = 5 * time.Second
	DefaultHTTPReadTimeout        = 10 * time.Second
	DefaultHTTPWriteTimeout       = 30 * time.Second
	DefaultHTTPIdleTimeout        = 120 * time.Second
	DefaultReadWaitDefault        = 2 * time.Second
	DefaultReadWaitMax            = 10 * time.Second
	DefaultReadWaitMaxWaits       = 1000
	DefaultMongoQueryTimeout      = 5 * time.Second
	DefaultKafkaBrokers           = "127.0.0.1:9092"
	DefaultKafkaEventsTopic       = companiaevent.DefaultTopic
	DefaultKafkaGroupID           = "companias-query"
	DefaultKafkaTopicPartitions   = 6
	DefaultKafkaDLQRetention      = 168 * time.Hour
	DefaultMongoURI               = "mongodb://127.0.0.1:27017"
	DefaultMongoDatabase          = "propalpes_query"
	DefaultProjectionBatchSize    = 500
	DefaultProjectionLinger       = 5 * time.Millisecond
	DefaultProjectionWriteTimeout = 30 * time.Second
	DefaultProjectionWriteChunk   = 10
	DefaultShutdownTimeout        = 10 * time.Second
	DefaultLogLevel               = slog.LevelInfo
	DefaultOTELServiceName        = "companias-query"
	DefaultOTELSampleRatio        = 1.0
)

// Config is the whole configuration of the query service. Build it with
// Load; the zero value is not valid.
type Config struct {
	// Service holds what both services read alike: HTTP (HTTP_ADDR 127.0.0.1:8081
	// and the HTTP_*_TIMEOUTs; HTTP_WRITE_TIMEOUT must exceed ReadWaitMax, or
	// a read-your-writes wait would be cut off before it can answer), Admin
	// (METRICS_ADDR 127.0.0.1:9091, PPROF_*), Auth (AUTH_*), Tracing
	// (OTEL_*), ShutdownTimeout and LogLevel.
	envconfig.Service

	// ReadWaitDefault is how long GET /v1/companias/{id}?min_version=N waits
	// when the request gives no wait (READ_WAIT_DEFAULT); ReadWaitMax is the
	// largest wait a request may ask for (READ_WAIT_MAX).
	ReadWaitDefault time.Duration
	ReadWaitMax     time.Duration
	// ReadWaitMaxWaits is the most such waits running at once on a replica;
	// beyond it a wait is refused with 503 and Retry-After
	// (READ_WAIT_MAX_WAITS).
	ReadWaitMaxWaits int
	// MongoQueryTimeout bounds every read of the view store, on the server
	// too (the driver sends the deadline as maxTimeMS) (MONGO_QUERY_TIMEOUT).
	MongoQueryTimeout time.Duration

	// Kafka is how the service reaches its cluster: the bootstrap brokers
	// (KAFKA_BROKERS, comma-separated), TLS (KAFKA_TLS_*) and SASL
	// (KAFKA_SASL_*), read by kafkakit.Load; ClientID is ClientID. Every
	// Kafka client of the service is built from it.
	Kafka kafkakit.Config
	// KafkaEventsTopic is the integration-event topic (KAFKA_EVENTS_TOPIC).
	KafkaEventsTopic string
	// KafkaEventsDLQTopic is the dead-letter topic of the projection
	// (KAFKA_EVENTS_DLQ_TOPIC, default deadletter.Topic(KafkaEventsTopic)).
	KafkaEventsDLQTopic string
	// KafkaGroupID is the consumer group of the projection (KAFKA_GROUP_ID).
	KafkaGroupID string
	// KafkaMembership tunes the projection's group membership
	// (KAFKA_SESSION_TIMEOUT, KAFKA_HEARTBEAT_INTERVAL,
	// KAFKA_REBALANCE_TIMEOUT), read and checked by kafkakit.LoadMembership
	// as the command service reads it.
	KafkaMembership kafkakit.Membership
	// KafkaTopicPartitions is the partition count used when the service
	// creates a missing topic (KAFKA_TOPIC_PARTITIONS); existing topics are
	// left as they are.
	KafkaTopicPartitions int
	// KafkaReplicationFactor is the replication factor used when the service
	// creates a missing topic (KAFKA_REPLICATION_FACTOR, 0..32); 0 (the
	// default) means min(3, brokers in the cluster). Read by
	// topics.LoadSettings, as the command service reads it.
	KafkaReplicationFactor int
	// KafkaCreateTopics makes the service create its missing topics (the
	// event topic and its dead-letter topic) at start (KAFKA_CREATE_TOPICS,
	// default true). When false it neither creates nor checks any topic
	// at start: deployments whose principals may not create topics
	// provision them beforehand.
	KafkaCreateTopics bool
	// KafkaDLQRetention is the retention of the dead-letter topic when the
	// service creates it (KAFKA_DLQ_RETENTION): dead letters hold personal
	// data. The event topic it creates keeps records forever.
	KafkaDLQRetention time.Duration

	// MongoURI is the MongoDB connection string: MONGO_URI, or the content
	// of the file MONGO_URI_FILE (one trailing newline removed); setting
	// both is an error.
	MongoURI string
	// MongoDatabase holds the view collections (MONGO_DATABASE).
	MongoDatabase string

	// ProjectionBatchSize is the most events the consumer applies in one
	// store write (PROJECTION_BATCH_SIZE).
	ProjectionBatchSize int
	// ProjectionLinger is how long the consumer waits to fill a batch once it
	// holds at least one event (PROJECTION_LINGER).
	ProjectionLinger time.Duration
	// ProjectionWriteTimeout bounds each view-store write of a batch
	// (PROJECTION_WRITE_TIMEOUT): a write still running then is cancelled
	// and retried, its offsets uncommitted. It must exceed the time a batch
	// of ProjectionBatchSize events takes.
	ProjectionWriteTimeout time.Duration
	// ProjectionWriteChunk is the most statements per MongoDB bulk write
	// (PROJECTION_WRITE_CHUNK, 1..1000). The default suits FerretDB v1,
	// whose connections the statements of every writer share (keep
	// chunk × writers below its pool and the chunk below 50); against MongoDB
	// a few hundred saves round trips.
	ProjectionWriteChunk int
}

// Tracing is the OpenTelemetry tracing configuration (OTEL_*, see envconfig.Parser.Tracing).
type Tracing = envconfig.Tracing

// ClientID is the Kafka client id of the service's connections.
const ClientID = "companias-query"

// defaults maps every variable the service reads to the text of its
// default ("" when it has none or is derived): the service's own,
// kafkakit's and package topics' (topics.WithKafkaVariables).
var defaults = topics.WithKafkaVariables(map[string]string{
	"HTTP_ADDR":                  DefaultHTTPAddr,
	"HTTP_READ_HEADER_TIMEOUT":   DefaultHTTPReadHeaderTimeout.String(),
	"HTTP_READ_TIMEOUT":          DefaultHTTPReadTimeout.String(),
	"HTTP_WRITE_TIMEOUT":         DefaultHTTPWriteTimeout.String(),
	"HTTP_IDLE_TIMEOUT":          DefaultHTTPIdleTimeout.String(),
	"READ_WAIT_DEFAULT":          DefaultReadWaitDefault.String(),
	"READ_WAIT_MAX":              DefaultReadWaitMax.String(),
	"READ_WAIT_MAX_WAITS":        strconv.Itoa(DefaultReadWaitMaxWaits),
	"MONGO_QUERY_TIMEOUT":        DefaultMongoQueryTimeout.String(),
	"KAFKA_BROKERS":              DefaultKafkaBrokers,
	"KAFKA_EVENTS_TOPIC":         DefaultKafkaEventsTopic,
	"KAFKA_EVENTS_DLQ_TOPIC":     "", // derived from KAFKA_EVENTS_TOPIC
	"KAFKA_GROUP_ID":             DefaultKafkaGroupID,
	"KAFKA_TOPIC_PARTITIONS":     strconv.Itoa(DefaultKafkaTopicPartitions),
	"KAFKA_DLQ_RETENTION":        DefaultKafkaDLQRetention.String(),
	"MONGO_URI":                  DefaultMongoURI,
	"MONGO_URI_FILE":             "",
	"MONGO_DATABASE":             DefaultMongoDatabase,
	"PROJECTION_BATCH_SIZE":      strconv.Itoa(DefaultProjectionBatchSize),
	"PROJECTION_LINGER":          DefaultProjectionLinger.String(),
	"PROJECTION_WRITE_TIMEOUT":   DefaultProjectionWriteTimeout.String(),
	"PROJECTION_WRITE_CHUNK":     strconv.Itoa(DefaultProjectionWriteChunk),
	"METRICS_ADDR":               DefaultMetricsAddr,
	"PPROF_ADDR":                 "",
	"PPROF_ALLOW_REMOTE":         "false",
	"SHUTDOWN_TIMEOUT":           DefaultShutdownTimeout.String(),
	"LOG_LEVEL":                  DefaultLogLevel.String(),
	"AUTH_MODE":                  "", // none on a loopback HTTP_ADDR; otherwise required
	"AUTH_ALLOW_NONE_ON_NETWORK": "false",
	"AUTH_HS256_SECRET":          "",
	"AUTH_HS256_SECRET_FILE":     "",
	"AUTH_JWKS_URL":              "",
	"AUTH_ISSUER":                "",
	"AUTH_AUDIENCE":              "",

	"OTEL_EXPORTER_OTLP_ENDPOINT":        "",
	"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "",
	"OTEL_SERVICE_NAME":                  DefaultOTELServiceName,
	"OTEL_TRACES_SAMPLER_ARG":            strconv.FormatFloat(DefaultOTELSampleRatio, 'g', -1, 64),
})

// Variables maps each environment variable of the reader to its default
// ("" for none, or a value derived from another variable).
func Variables() map[string]string { return maps.Clone(defaults) }

// Load validates the reader's environment, read through getenv (a map in
// tests), with MONGO_URI_FILE and AUTH_HS256_SECRET_FILE read through
// readFile (main passes os.ReadFile). Its error starts "invalid
// configuration: " and names every bad variable, a line each, unreadable
// files included.
func Load(getenv func(string) string, readFile func(string) ([]byte, error)) (Config, error) {
	p := envconfig.New(getenv, readFile, defaults)
	c := Config{
		Service:                p.Service(),
		ReadWaitDefault:        p.DurationRange("READ_WAIT_DEFAULT", time.Millisecond, time.Hour),
		ReadWaitMax:            p.DurationRange("READ_WAIT_MAX", time.Millisecond, time.Hour),
		ReadWaitMaxWaits:       p.IntRange("READ_WAIT_MAX_WAITS", 1, 1_000_000),
		MongoQueryTimeout:      p.DurationRange("MONGO_QUERY_TIMEOUT", 10*time.Millisecond, 5*time.Minute),
		Kafka:                  kafkakit.Load(p),
		KafkaEventsTopic:       p.Topic("KAFKA_EVENTS_TOPIC"),
		KafkaGroupID:           p.Str("KAFKA_GROUP_ID"),
		KafkaMembership:        kafkakit.LoadMembership(p),
		KafkaTopicPartitions:   p.IntRange("KAFKA_TOPIC_PARTITIONS", 1, 1000),
		KafkaDLQRetention:      p.DurationRange("KAFKA_DLQ_RETENTION", time.Hour, 10*365*24*time.Hour),
		MongoURI:               p.SecretURL("MONGO_URI", "mongodb://", "mongodb+srv://"),
		MongoDatabase:          p.Str("MONGO_DATABASE"),
		ProjectionBatchSize:    p.IntRange("PROJECTION_BATCH_SIZE", 1, 10000),
		ProjectionLinger:       p.DurationRange("PROJECTION_LINGER", time.Microsecond, time.Minute),
		ProjectionWriteTimeout: p.DurationRange("PROJECTION_WRITE_TIMEOUT", time.Millisecond, time.Hour),
		ProjectionWriteChunk:   p.IntRange("PROJECTION_WRITE_CHUNK", 1, 1000),
	}
	c.Kafka.ClientID = ClientID
	ts := topics.LoadSettings(p)
	c.KafkaCreateTopics, c.KafkaReplicationFactor = ts.Create, ts.ReplicationFactor
	c.KafkaEventsDLQTopic = deadletter.Topic(c.KafkaEventsTopic)
	if p.IsSet("KAFKA_EVENTS_DLQ_TOPIC") {
		c.KafkaEventsDLQTopic = p.Topic("KAFKA_EVENTS_DLQ_TOPIC")
	}
	if c.KafkaEventsTopic != "" && c.KafkaEventsTopic == c.KafkaEventsDLQTopic {
		p.Fail("KAFKA_EVENTS_DLQ_TOPIC", "must differ from KAFKA_EVENTS_TOPIC")
	}
	if c.MongoDatabase != "" && !validDatabase(c.MongoDatabase) {
		p.Fail("MONGO_DATABASE", fmt.Sprintf("must be a MongoDB database name (at most 63 characters, none of /\\. \"$*<>:|? or NUL), got %q", c.MongoDatabase))
	}
	if c.ReadWaitDefault > c.ReadWaitMax {
		p.Fail("READ_WAIT_DEFAULT", fmt.Sprintf("(%s) must not exceed READ_WAIT_MAX (%s)", c.ReadWaitDefault, c.ReadWaitMax))
	}
	if c.HTTP.WriteTimeout <= c.ReadWaitMax {
		p.Fail("HTTP_WRITE_TIMEOUT", fmt.Sprintf("(%s) must exceed READ_WAIT_MAX (%s)", c.HTTP.WriteTimeout, c.ReadWaitMax))
	}
	if err := p.Err(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// validDatabase applies MongoDB's database-name rules.
func validDatabase(db string) bool {
	return len(db) <= 63 && !strings.ContainsAny(db, "/\\. \"$*<>:|?\x00")
}
