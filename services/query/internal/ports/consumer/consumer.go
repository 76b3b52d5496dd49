// Package consumer is the projection worker of the query service: a Kafka
// consumer-group member that reads the companias integration events, folds
// them into views (package projection) and writes them to the view store,
// committing offsets only after the store accepted the write.
//
// # Loop
//
// For each group generation the consumer reads every assigned partition and,
// repeatedly: takes what is available, up to Config.BatchSize messages or
// Config.Linger after the first one; decodes each message and validates it
// against the contract's JSON Schema; copies poison (malformed, unsupported
// major version, schema failure) to the dead-letter topic with the
// deadletter headers; skips and counts unknown event types of the known
// major version; collapses the events per company (projection.Collapse);
// writes them with one Writer call; and only then commits, per partition,
// the offset after the last message of the batch. Store and dead-letter
// failures are retried with capped exponential backoff until they succeed
// or the generation ends: a message is never skipped and an offset is never
// committed past a message that was not processed. A store write that has
// not returned within Config.WriteTimeout is cancelled and counts as a
// failure (ErrWriteTimeout), so that a store that hangs cannot freeze the
// partitions silently: the batch is retried, its offsets stay uncommitted.
//
// # Group membership
//
// The membership is libs/kafkakit/groupconsumer's, shared with the command
// intake: kafka-go's ConsumerGroup with one partition reader per assigned
// partition, commits carrying the generation that fetched the messages, the
// fetch buffers dropped when a generation ends, a stale-offset guard, and
// leaving the group within Config.CloseTimeout (see that package for why
// kafka-go's group Reader is not used). A panic while processing a batch
// re-runs the batch one message at a time; the message that panics is
// dead-lettered with reason panic and the others are processed.
//
// Delivery is at least once: after a rebalance or a crash, messages after
// the last commit are processed again, which the version-guarded store
// makes harmless.
package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/trace"

	"github.com/propalpes/companias/libs/contracts/companiaevent"
	"github.com/propalpes/companias/libs/kafkakit"
	"github.com/propalpes/companias/libs/kafkakit/groupconsumer"
	"github.com/propalpes/companias/libs/seedwork/retry"
	"github.com/propalpes/companias/services/query/internal/view"
)

// Writer persists collapsed runs (at most one per company, from
// projection.CollapseRuns). WriteViews must be idempotent and must merge
// with the rules of projection.Merge; an error means "retry later". It
// returns the runs whose first version was more than one above the stored
// view's (view.VersionGap, InBatch false), also on error: the consumer
// reports the gaps of every attempt of a batch once the batch is written. It
// must return soon after ctx is done (the consumer bounds each call with
// Config.WriteTimeout); views it wrote before are written again by the
// retry.
type Writer interface {
	WriteViews(ctx context.Context, runs []view.Run) ([]view.VersionGap, error)
}

// WriterFunc adapts a function to Writer.
type WriterFunc func(ctx context.Context, runs []view.Run) ([]view.VersionGap, error)

// WriteViews calls f.
func (f WriterFunc) WriteViews(ctx context.Context, runs []view.Run) ([]view.VersionGap, error) {
	return f(ctx, runs)
}

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

// Counters are running totals since the consumer was built.
type Counters struct {
	// Applied counts events written to the store (duplicates included).
	Applied int64
	// SkippedUnknown counts events of an unknown type of the known major
	// version (a newer minor version of the contract), skipped.
	SkippedUnknown int64
	// DeadLettered counts poison messages copied to the dead-letter topic
	// (or, with DisableDLQ, skipped).
	DeadLettered int64
	// DroppedStale counts fetched messages dropped because this member had
	// already processed their offset.
	DroppedStale int64
	// Batches counts store writes that succeeded.
	Batches int64
	// Retries counts failed store or dead-letter writes that were retried.
	Retries int64
	// WriteTimeouts counts store writes cancelled after WriteTimeout (each
	// is also counted in Retries).
	WriteTimeouts int64
	// VersionGaps counts the version gaps reported (Config.OnVersionGap).
	VersionGaps int64
}

// Consumer is the projection worker. Build it with New and run it with Run;
// Status, Joined, Changed, Positions and Counters are safe for concurrent
// use and never block on I/O.
type Consumer struct {
	cfg     Config
	writer  Writer
	dec     *decoder
	log     *slog.Logger
	backoff retry.Backoff
	group   *groupconsumer.Consumer

	transport    *kafka.Transport
	ownTransport bool // built by New: its idle connections are closed when Run returns

	applied, skipped, dead, dropped, batches, retries, timeouts, gaps atomic.Int64

	mu         sync.Mutex
	running    bool
	joined     bool
	failing    bool
	assigned   map[int]bool
	processed  map[int]int64 // next offset after what this member wrote, per partition
	committed  map[int]int64 // next offset this member committed, per partition
	lastEvent  map[int]time.Time
	partitions []int         // of the topic, from metadata
	groupOff   map[int]int64 // the group's committed offsets, from the broker
	hw         map[int]int64 // high watermarks
	first      map[int]int64 // log start offsets
	changed    chan struct{} // closed and replaced after each applied batch
	signals    idSignals     // per company id, fired after each applied batch
}

// New returns a Consumer that writes through w. It compiles the event
// schemas; it does not connect.
func New(cfg Config, w Writer) (*Consumer, error) {
	if w == nil {
		return nil, errors.New("consumer: nil writer")
	}
	cfg.setDefaults()
	dec, err := newDecoder()
	if err != nil {
		return nil, fmt.Errorf("consumer: %w", err)
	}
	c := &Consumer{
		cfg: cfg, writer: w, dec: dec, log: cfg.Logger.With("group", cfg.GroupID, "topic", cfg.Topic),
		backoff:  retry.Backoff{Min: cfg.RetryMin, Max: cfg.RetryMax},
		assigned: map[int]bool{}, processed: map[int]int64{}, committed: map[int]int64{},
		lastEvent: map[int]time.Time{}, groupOff: map[int]int64{}, hw: map[int]int64{}, first: map[int]int64{},
		changed: make(chan struct{}),
	}
	c.transport = cfg.Transport
	if c.transport == nil {
		c.transport, c.ownTransport = kafkakit.TransportFor(cfg.Dialer, groupconsumer.DefaultDialTimeout), true
	}
	c.group, err = groupconsumer.New(groupconsumer.Config{
		Brokers: cfg.Brokers, GroupID: cfg.GroupID, Topic: cfg.Topic, DLQTopic: cfg.DLQTopic,
		DisableDLQ: cfg.DisableDLQ, Dialer: cfg.Dialer, Transport: c.transport,
		BatchSize: cfg.BatchSize, Linger: cfg.Linger, MaxWait: cfg.MaxWait, MaxFetchBytes: cfg.MaxFetchBytes,
		HeartbeatInterval: cfg.HeartbeatInterval, SessionTimeout: cfg.SessionTimeout,
		RebalanceTimeout: cfg.RebalanceTimeout, JoinGroupBackoff: cfg.JoinGroupBackoff,
		CloseTimeout: cfg.CloseTimeout, Backoff: c.backoff, Logger: c.log, Hooks: c.hooks(),
	})
	if err != nil {
		return nil, fmt.Errorf("consumer: %w", err)
	}
	return c, nil
}

// Run joins the group and processes events until ctx is cancelled, then
// leaves the group (waiting at most Config.CloseTimeout for that) and
// returns nil. It returns an error only if it cannot start. Run must be
// called at most once.
func (c *Consumer) Run(ctx context.Context) error {
	c.mu.Lock()
	if c.running {
		c.mu.Unlock()
		return errors.New("consumer: Run called twice")
	}
	c.running = true
	c.mu.Unlock()
	if c.ownTransport {
		defer c.transport.CloseIdleConnections()
	}

	var wg sync.WaitGroup
	defer wg.Wait()
	statusCtx, stopStatus := context.WithCancel(ctx)
	defer stopStatus()
	wg.Go(func() { c.refreshLoop(statusCtx) })

	if err := c.group.Run(ctx, groupconsumer.HandlerFunc(c.process)); err != nil {
		return fmt.Errorf("consumer: %w", err)
	}
	return nil
}

// Assignment returns the partitions this member owns in its current
// generation with the group's next offset in each (groupconsumer's
// Assignment), for the lag metric (libs/kafkakit/grouplag). Status, unlike
// it, lists every partition of the topic, for the HTTP status.
func (c *Consumer) Assignment() groupconsumer.Assignment { return c.group.Assignment() }

// partitionReader returns a reader of partition p of the events topic, as
// the group membership builds them.
func (c *Consumer) partitionReader(p int) *kafka.Reader {
	return kafka.NewReader(c.group.ReaderConfig(p))
}
