package consumer

import (
	"log/slog"
	"time"

	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/trace"

	"github.com/propalpes/companias/libs/contracts/companiaevent"
	"github.com/propalpes/companias/libs/kafkakit/groupconsumer"
	"github.com/propalpes/companias/services/query/internal/view"
)

// Defaults of Config. Linger, MaxWait, MaxFetchBytes and CloseTimeout are
// only forwarded to package groupconsumer, which applies their defaults
// (restated here for reference); the others are the consumer's own.
const (
	// DefaultBatchSize is larger than groupconsumer's: a store write per
	// batch is what the projection amortises.
	DefaultBatchSize      = 500
	DefaultLinger         = groupconsumer.DefaultLinger
	DefaultMaxWait        = groupconsumer.DefaultMaxWait
	DefaultRetryMin       = 100 * time.Millisecond
	DefaultRetryMax       = 5 * time.Second
	DefaultWriteTimeout   = 30 * time.Second
	DefaultCloseTimeout   = groupconsumer.DefaultCloseTimeout
	DefaultStatusInterval = time.Second
	// DefaultMaxFetchBytes bounds one fetch response of a partition reader
	// (1 MiB, Kafka's default max.message.bytes; about 2,000 events). A
	// broker still returns a first record batch larger than this, whole, so
	// that the reader makes progress: the topic's max.message.bytes is what
	// bounds a message.
	DefaultMaxFetchBytes = groupconsumer.DefaultMaxFetchBytes
)

// Config configures a Consumer. Zero fields take the defaults noted.
type Config struct {
	// Brokers are the bootstrap brokers; required.
	Brokers []string
	// Topic is the events topic (default companiaevent.DefaultTopic).
	Topic string
	// GroupID is the consumer group; required.
	GroupID string
	// DLQTopic receives poison messages (default deadletter.Topic(Topic)).
	// It must exist.
	DLQTopic string
	// DisableDLQ makes poison messages be counted and skipped instead of
	// dead-lettered (a rebuild replays messages that the live group already
	// dead-lettered).
	DisableDLQ bool
	// BatchSize is the most messages processed with one store write
	// (default DefaultBatchSize).
	BatchSize int
	// Linger is how long a batch waits for more messages after its first
	// (default DefaultLinger).
	Linger time.Duration
	// MaxWait bounds one fetch request of a partition reader, and so how
	// long a rebalance waits for the readers to stop (default DefaultMaxWait).
	MaxWait time.Duration
	// MaxFetchBytes is the partition readers' MaxBytes: the most bytes one
	// fetch asks for (default DefaultMaxFetchBytes).
	MaxFetchBytes int
	// HeartbeatInterval, SessionTimeout, RebalanceTimeout and
	// JoinGroupBackoff tune the group membership (kafka-go defaults 3s, 30s,
	// 30s, 5s when zero). A rebalance is noticed within HeartbeatInterval.
	HeartbeatInterval time.Duration
	SessionTimeout    time.Duration
	RebalanceTimeout  time.Duration
	JoinGroupBackoff  time.Duration
	// CloseTimeout bounds leaving the group when Run stops (default
	// DefaultCloseTimeout). kafka-go's ConsumerGroup.Close waits for a
	// JoinGroup in flight, which the coordinator answers only when the
	// rebalance ends — up to RebalanceTimeout if a member does not rejoin.
	// Past CloseTimeout Run returns without waiting; the group then drops
	// this member when its session times out, and the next owners of its
	// partitions redo what it did not commit.
	CloseTimeout time.Duration
	// RetryMin and RetryMax bound the backoff between attempts of a failed
	// store or dead-letter write (defaults DefaultRetryMin, DefaultRetryMax).
	RetryMin, RetryMax time.Duration
	// WriteTimeout bounds each Writer.WriteViews call (default
	// DefaultWriteTimeout). When it expires the call's context is cancelled,
	// the attempt fails with ErrWriteTimeout and is retried like any store
	// failure; it must exceed the time a batch of BatchSize events takes.
	WriteTimeout time.Duration
	// StatusInterval is how often the high watermarks and the group's
	// committed offsets are read for Status (default DefaultStatusInterval).
	StatusInterval time.Duration
	// State is reported by Status for the partitions this member processes
	// while healthy: view.StateRunning (default) or view.StateRebuilding.
	State string
	// Dialer, if not nil, dials the brokers for the group membership and
	// the partition readers (TLS, SASL, client id); nil: a plain dialer.
	Dialer *kafka.Dialer
	// Transport, if not nil, carries the dead-letter writes and the status
	// reads (metadata, committed offsets); nil: a transport of the
	// consumer's own with the Dialer's client id, TLS and SASL.
	Transport *kafka.Transport
	// Logger receives operational logs (default: discard).
	Logger *slog.Logger
	// OnApplied, if set, is called after each batch's views were written,
	// with the event time (ce_time) of every event of the batch, for a
	// freshness metric. It runs on the consumer goroutine: keep it fast.
	OnApplied func(eventTimes []time.Time)
	// OnVersionGap, if set, is called once per version gap of a written
	// batch (a jump inside a company's events of the batch, or between the
	// stored view and the batch's first event of the company), after the
	// gap was logged at Warn. It runs on the consumer goroutine.
	OnVersionGap func(view.VersionGap)
	// OnDeadLetter, if set, is called for each poison message once it was
	// dead-lettered (with DisableDLQ: counted and skipped), with its reason
	// (a deadletter.Reason* value). It runs on the consumer goroutine.
	OnDeadLetter func(reason string)
	// Tracer, if set, records a consumer span per processed batch, linked
	// (not parented: a batch serves many traces) to the traceparent of each
	// applied event, with the event's company id, version, partition and
	// offset on the link. While it is nil no span is made. Optional.
	Tracer trace.Tracer
}

// setDefaults applies the defaults of the consumer's own settings and of
// Topic (which Status and the spans read). What is only forwarded to
// groupconsumer (Brokers, GroupID, DLQTopic, Linger, MaxWait, MaxFetchBytes,
// CloseTimeout) is validated and defaulted by groupconsumer.New.
func (c *Config) setDefaults() {
	if c.Topic == "" {
		c.Topic = companiaevent.DefaultTopic
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.BatchSize <= 0 {
		c.BatchSize = DefaultBatchSize
	}
	def(&c.RetryMin, DefaultRetryMin)
	def(&c.RetryMax, DefaultRetryMax)
	def(&c.WriteTimeout, DefaultWriteTimeout)
	def(&c.StatusInterval, DefaultStatusInterval)
	if c.RetryMax < c.RetryMin {
		c.RetryMax = c.RetryMin
	}
	if c.State == "" {
		c.State = view.StateRunning
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}
