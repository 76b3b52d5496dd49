package outbox

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/propalpes/companias/libs/kafkakit"
)

// DefaultBatchBytes is the default WriterConfig.BatchBytes and
// Options.BatchBytes: 1 MiB, kafka-go's default and about Kafka's default
// max.message.bytes.
const DefaultBatchBytes int64 = 1 << 20

// WriterConfig configures the Kafka producer of the relay. Zero fields take
// the documented defaults.
type WriterConfig struct {
	// Kafka is how the Writer reaches the cluster: its bootstrap brokers (at
	// least one), TLS and SASL; the Writer's Transport is built from it
	// (kafkakit.Config.Transport), its connections dialled through Fence
	// below TLS. Kafka.ClientID is ignored: see ClientID.
	Kafka kafkakit.Config
	// BatchTimeout is how long kafka-go waits for a per-partition batch to
	// fill before sending it. The relay is the only caller and hands over a
	// whole outbox batch in one WriteMessages call, so every message of one
	// partition is already in one batch when the timer fires (kafka-go adds
	// them under the partition lock): the timeout only adds latency. It must
	// stay small: kafka-go's default (and 0) is 1 s. Default 5ms.
	BatchTimeout time.Duration
	// BatchSize is the maximum number of messages per partition batch; a full
	// batch is sent at once. Keep it ≥ Options.BatchSize so that one relay
	// batch is one produce request per partition. Default 500.
	BatchSize int
	// BatchBytes is the maximum size of a partition batch. kafka-go refuses
	// a whole WriteMessages call holding a message larger than this (the
	// relay then parks that message). Give the relay the same value
	// (Options.BatchBytes), so that it cuts its calls to fit one batch per
	// partition. Default DefaultBatchBytes.
	BatchBytes int64
	// WriteTimeout bounds one produce request. Default 10s.
	WriteTimeout time.Duration
	// MaxAttempts is the number of produce attempts kafka-go makes for one
	// partition batch before WriteMessages reports the error. The relay
	// retries failed batches itself with capped exponential backoff, so a
	// small number keeps a broker outage from hiding inside kafka-go for
	// long. Default 3.
	MaxAttempts int
	// ClientID identifies the producer to the brokers. Default
	// "companias-outbox-relay".
	ClientID string
	// Fence is the fence every broker connection of the Writer is dialled
	// through (Fence.Dial): nothing is written while it is closed. The relay
	// opens it while it holds its lease (Options.Fence, which defaults to
	// the Writer's). Default: a new, closed Fence.
	Fence *Fence
}

// Writer is the relay's Kafka producer: a kafka.Writer set up for ordered,
// acknowledged delivery keyed by company, on a Transport of its own.
//
// Settings and why:
//   - Balancer Murmur2 (the Java client's default partitioner), so that a JVM
//     or librdkafka producer with the same key picks the same partition; the
//     key is the company id, so one company's events share a partition.
//   - RequiredAcks RequireAll: a batch counts as sent once every in-sync
//     replica has it (kafka-go's default is fire-and-forget).
//   - Its own Transport, built by kafkakit from WriterConfig.Kafka (TLS,
//     SASL): kafka-go's DefaultTransport caches metadata (6 s) and is shared
//     by the whole process; a private one is closed with the Writer.
//
// Ordering: kafka-go keeps one goroutine and one FIFO batch queue per
// topic-partition and at most one produce request in flight per connection
// (kafka-go #686 fixed by #716 in v0.4.18; #625), and it retries a failed
// batch in place before the next batch of that partition is sent. Its
// internal retries can duplicate but not reorder a partition: a produce
// request that timed out on the client may still have been appended, and
// the retry appends it again; kafka-go has no idempotent producer (#233).
//
// Within one leader, the relay cuts its WriteMessages calls to at most
// BatchBytes, so each partition's messages of one call form one kafka-go
// batch, one produce request, appended or refused as a whole: a company's
// later event never lands while its earlier one of the same call failed,
// and the relay retries a failed call before anything later.
//
// Across leaders, the Fence: every connection is dialled through it (the raw
// TCP connection, below TLS and SASL, so the fence's write deadline bounds
// every byte whatever the security settings), so a
// relay that lost its lease (frozen, or cut off from PostgreSQL) cannot put
// a byte on the wire after its fence ended, which is before the next leader
// can take the lease; not even a batch kafka-go still had queued from a
// WriteMessages that returned early. The next leader starts with the rows
// the old one did not delete.
//
// So the log of one partition is the outbox order with possible repeats
// (duplicates, same ce_id), never a later event of a company before an
// earlier one; consumers deduplicate on ce_id or on the company version.
type Writer struct {
	w     *kafka.Writer
	t     *kafka.Transport
	fence *Fence
}

// NewWriter returns a Writer for cfg. It does not connect: the first
// WriteMessages does. Create the topics before (topics.Ensure). It fails
// when cfg.Kafka has no broker or its TLS or SASL settings cannot be built
// (an unreadable CA file, say).
func NewWriter(cfg WriterConfig) (*Writer, error) {
	if len(cfg.Kafka.Brokers) == 0 {
		return nil, errors.New("outbox writer: no kafka brokers")
	}
	if cfg.BatchTimeout <= 0 {
		cfg.BatchTimeout = 5 * time.Millisecond
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.BatchBytes <= 0 {
		cfg.BatchBytes = DefaultBatchBytes
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 3
	}
	if cfg.ClientID == "" {
		cfg.ClientID = "companias-outbox-relay"
	}
	if cfg.Fence == nil {
		cfg.Fence = NewFence()
	}
	k := cfg.Kafka
	k.ClientID = cfg.ClientID
	fence := cfg.Fence
	t, err := k.Transport(
		kafkakit.WithDialTimeout(5*time.Second),
		kafkakit.WithDialWrapper(func(next kafkakit.DialFunc) kafkakit.DialFunc { return fence.Dial(next) }),
	)
	if err != nil {
		return nil, fmt.Errorf("outbox writer: %w", err)
	}
	w := &kafka.Writer{
		Addr:            kafka.TCP(k.Brokers...),
		Balancer:        &kafka.Murmur2Balancer{},
		RequiredAcks:    kafka.RequireAll,
		BatchTimeout:    cfg.BatchTimeout,
		BatchSize:       cfg.BatchSize,
		BatchBytes:      cfg.BatchBytes,
		WriteTimeout:    cfg.WriteTimeout,
		ReadTimeout:     cfg.WriteTimeout,
		MaxAttempts:     cfg.MaxAttempts,
		WriteBackoffMin: 100 * time.Millisecond,
		WriteBackoffMax: time.Second,
		Transport:       t,
	}
	return &Writer{w: w, t: t, fence: cfg.Fence}, nil
}

// Fence returns the fence the Writer's connections are dialled through.
func (w *Writer) Fence() *Fence { return w.fence }

// WriteMessages writes msgs (each with its own Topic) and returns once every
// partition batch was acknowledged by all in-sync replicas, or with the error
// of the batches that were not (possibly a kafka.WriteErrors). An error does
// not mean "not written": see Writer. While the Fence is closed every call
// fails. Safe for concurrent use.
func (w *Writer) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	return w.w.WriteMessages(ctx, msgs...)
}

// Stats returns the kafka-go writer statistics accumulated since the last
// call (for metrics).
func (w *Writer) Stats() kafka.WriterStats { return w.w.Stats() }

// Close flushes pending batches, waits for them, and closes the connections.
// Stop the Relay first: closing while WriteMessages runs can hang (kafka-go
// #1307).
func (w *Writer) Close() error {
	err := w.w.Close()
	w.t.CloseIdleConnections()
	return err
}
