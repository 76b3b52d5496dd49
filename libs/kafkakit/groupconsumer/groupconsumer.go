// Package groupconsumer is the one consumer-group membership of the
// workspace's Kafka consumers: it joins a group, reads the partitions each
// generation assigns with one partition reader apiece, hands what they
// fetched to a Handler in batches, commits the offsets after the handler
// returned, and dead-letters what the handler gives up on.
//
// # Why kafka-go's ConsumerGroup rather than its group Reader
//
// It uses kafka.ConsumerGroup (the layer kafka-go's Reader is built on), a
// plain partition Reader per assigned partition, and
// Generation.CommitOffsets. The group-mode Reader hides the assignment and
// the generation: it delivers messages prefetched for partitions it lost in
// a rebalance (kafka-go #1398) and commits them under the new generation,
// moving another member's offset backwards (#1308), and it cannot tell
// whether it holds any partition or which. Here every message belongs to
// the generation that fetched it: the fetch buffers are dropped when a
// generation ends, commits carry that generation's id (a stale one is
// refused by the broker and ignored here: the new owner redoes the work),
// and a message below the offset this member already processed in a
// partition is dropped (the stale-offset guard).
//
// # Contract
//
//   - A Handler sees the messages of the current generation only, in offset
//     order within a partition; a batch holds at most Config.BatchSize
//     messages, what was available within Config.Linger of the first.
//   - Offsets are committed only after the handler returned nil for the
//     batch, and only while the generation and Run's context are live: a
//     batch handled while Run is stopping is not committed, and is handled
//     again by the partition's next owner. Delivery is at least once.
//   - A handler error (with ctx live) retries the same batch with backoff.
//   - A panic while handling a batch is recovered. A batch of one message
//     is then dead-lettered with reason deadletter.ReasonPanic; a larger
//     batch is handled again one message at a time, so that exactly the
//     message that panics is dead-lettered and the others are processed.
//   - Dead letters (DeadLetterer) carry the original key, value and a
//     bounded copy of the headers plus the deadletter headers; their write
//     is retried until it succeeds or ctx ends.
//   - Run leaves the group within Config.CloseTimeout, also while a
//     JoinGroup is in flight (kafka-go's ConsumerGroup.Close waits for it).
package groupconsumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/propalpes/companias/libs/contracts/deadletter"
	"github.com/propalpes/companias/libs/seedwork/retry"
)

// Handler processes batches of messages.
type Handler interface {
	// HandleBatch processes msgs, dead-lettering through dl the ones that
	// can never succeed. It returns nil when every message of msgs may be
	// committed; an error means "not done": the same batch is handled
	// again after a backoff, or, if ctx is done, left uncommitted. It must
	// return soon after ctx is done and be idempotent (a batch may be
	// handled again after a rebalance, a crash or a panic).
	HandleBatch(ctx context.Context, msgs []kafka.Message, dl DeadLetterer) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, msgs []kafka.Message, dl DeadLetterer) error

// HandleBatch calls f.
func (f HandlerFunc) HandleBatch(ctx context.Context, msgs []kafka.Message, dl DeadLetterer) error {
	return f(ctx, msgs, dl)
}

// PerMessage returns a Handler that calls f for each message of a batch in
// order, stopping at the first error. With Config.BatchSize 1, each message
// is committed after f returned nil for it.
func PerMessage(f func(ctx context.Context, m kafka.Message, dl DeadLetterer) error) Handler {
	return HandlerFunc(func(ctx context.Context, msgs []kafka.Message, dl DeadLetterer) error {
		for _, m := range msgs {
			if err := f(ctx, m, dl); err != nil {
				return err
			}
		}
		return nil
	})
}

// Letter is a message a handler gives up on, and why.
type Letter struct {
	Message kafka.Message
	Reason  string // a deadletter.Reason* value
	Err     error  // the cause; its text becomes the dlq_error header
}

// DeadLetterer copies messages to the dead-letter topic.
type DeadLetterer interface {
	// DeadLetter writes the copies of letters, retrying until the write
	// succeeds; it returns an error only when ctx is done first. With
	// Config.DisableDLQ it writes nothing and only counts them.
	DeadLetter(ctx context.Context, letters ...Letter) error
}

// Defaults of Config.
const (
	DefaultBatchSize     = 1
	DefaultLinger        = 5 * time.Millisecond
	DefaultMaxWait       = 250 * time.Millisecond
	DefaultCloseTimeout  = 5 * time.Second
	DefaultMaxFetchBytes = 1 << 20
	DefaultRetryMin      = 100 * time.Millisecond
	DefaultRetryMax      = 5 * time.Second
	// DefaultDialTimeout bounds opening a broker connection when neither
	// Config.Dialer nor Config.Transport is set.
	DefaultDialTimeout = 10 * time.Second
)

// Config configures a Consumer. Brokers, GroupID and Topic are required;
// other zero fields take the defaults noted.
type Config struct {
	Brokers []string
	GroupID string
	Topic   string
	// DLQTopic receives dead letters (default deadletter.Topic(Topic)); it
	// must exist and differ from Topic.
	DLQTopic string
	// DisableDLQ makes DeadLetter count and log the letters without writing
	// them (a rebuild replays messages the live group dead-lettered).
	DisableDLQ bool
	// Dialer dials the brokers for the group membership and the partition
	// readers (TLS, SASL, client id); nil: a plain dialer.
	Dialer *kafka.Dialer
	// Transport carries the dead-letter writes; nil: a plain transport of
	// this consumer's own (the default one shares a metadata cache that may
	// predate the dead-letter topic).
	Transport *kafka.Transport
	// BatchSize is the most messages given to one HandleBatch call
	// (default DefaultBatchSize); Linger is how long a batch waits for more
	// after its first message (default DefaultLinger).
	BatchSize int
	Linger    time.Duration
	// MaxWait bounds one fetch of a partition reader, and so how long a
	// rebalance waits for the readers to stop (default DefaultMaxWait).
	MaxWait time.Duration
	// MaxFetchBytes is the partition readers' MaxBytes (default
	// DefaultMaxFetchBytes). A broker still returns a first record batch
	// larger than this, whole: the topic's max.message.bytes bounds a message.
	MaxFetchBytes int
	// HeartbeatInterval, SessionTimeout, RebalanceTimeout and
	// JoinGroupBackoff tune the membership (kafka-go defaults 3s, 30s, 30s,
	// 5s when zero). A rebalance is noticed within HeartbeatInterval.
	HeartbeatInterval, SessionTimeout, RebalanceTimeout, JoinGroupBackoff time.Duration
	// CloseTimeout bounds leaving the group when Run stops (default
	// DefaultCloseTimeout). Past it Run returns without waiting; the group
	// drops this member when its session times out.
	CloseTimeout time.Duration
	// Backoff spaces the retries of fetches, commits, dead-letter writes
	// and failed batches (default Min DefaultRetryMin, Max DefaultRetryMax,
	// Jitter 0.2).
	Backoff retry.Backoff
	// Logger receives operational logs (default: discard).
	Logger *slog.Logger
	// Hooks are called on the consumer's goroutines; keep them fast.
	Hooks Hooks
}

// Hooks report the membership and the work to the owner of a Consumer.
// Every field is optional.
type Hooks struct {
	// OnAssigned is called when a generation starts, with its partitions
	// (possibly none); OnRevoked when it ended and its processing stopped.
	OnAssigned func(generation int32, partitions map[int]int64)
	OnRevoked  func(generation int32)
	// OnJoinError is called when joining the group failed (it is retried).
	OnJoinError func(err error)
	// OnLeave is called when Run returns.
	OnLeave func()
	// OnCommitted is called with the offsets (next offset per partition)
	// of each successful commit.
	OnCommitted func(offsets map[int]int64)
	// OnDeadLetter is called once per letter after it was written (with
	// DisableDLQ: counted), with its reason.
	OnDeadLetter func(reason string)
	// OnDroppedStale is called with the number of fetched messages dropped
	// by the stale-offset guard.
	OnDroppedStale func(n int)
	// OnRetry is called for each failed attempt of a dead-letter write
	// (what "dead-letter") or of a batch (what "batch") that will be
	// retried, and with err nil once it succeeded after failures.
	OnRetry func(what string, attempt int, err error)
}

func (c *Config) setDefaults() error {
	if len(c.Brokers) == 0 {
		return errors.New("groupconsumer: no brokers")
	}
	if c.GroupID == "" {
		return errors.New("groupconsumer: empty group id")
	}
	if c.Topic == "" {
		return errors.New("groupconsumer: empty topic")
	}
	if c.DLQTopic == "" {
		c.DLQTopic = deadletter.Topic(c.Topic)
	}
	if c.DLQTopic == c.Topic {
		return errors.New("groupconsumer: the dead-letter topic must differ from the topic")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.BatchSize <= 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.MaxFetchBytes <= 0 {
		c.MaxFetchBytes = DefaultMaxFetchBytes
	}
	def(&c.Linger, DefaultLinger)
	def(&c.MaxWait, DefaultMaxWait)
	def(&c.CloseTimeout, DefaultCloseTimeout)
	if c.Backoff.Min <= 0 && c.Backoff.Max <= 0 {
		c.Backoff = retry.Backoff{Min: DefaultRetryMin, Max: DefaultRetryMax, Jitter: 0.2}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Consumer is a member of a consumer group. Build it with New; Run may be
// called again after it returned (each Run joins the group anew), never
// concurrently.
type Consumer struct {
	cfg     Config
	log     *slog.Logger
	running atomic.Bool
	dlq     *kafka.Writer // during Run, nil with DisableDLQ

	mu         sync.Mutex
	generation int32         // current generation; 0: none
	owned      map[int]int64 // partition → next offset of the group, in the current generation
}

// Assignment is what a member owns in its current generation, for metrics
// that must count each partition once across the members of a group.
type Assignment struct {
	// Topic and GroupID are the Consumer's Config.Topic and Config.GroupID
	// (configuration, never record content).
	Topic, GroupID string
	// Generation is the id of the current generation, 0 when the member is
	// in none (joining, rebalancing or stopped).
	Generation int32
	// Partitions maps each partition of Topic this member owns in the
	// current generation to the group's next offset in it: the committed
	// offset the generation started from, advanced by this member's commits
	// since (-1: the group has committed none). It is empty outside a
	// generation and never nil.
	Partitions map[int]int64
}

// New validates cfg and applies its defaults; it does not connect.
func New(cfg Config) (*Consumer, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	return &Consumer{cfg: cfg, log: cfg.Logger, owned: map[int]int64{}}, nil
}

// Config returns the configuration with its defaults applied.
func (c *Consumer) Config() Config { return c.cfg }

// Assignment returns a copy of what this member owns now. A generation's
// partitions are reported from the moment the member starts reading them
// until its processing of them stopped (before it rejoins the group), so
// that across the live members of a group each partition is reported once,
// by its owner; only while a rebalance moves it is it reported by none.
// It never blocks on I/O and is safe for concurrent use.
func (c *Consumer) Assignment() Assignment {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Assignment{Topic: c.cfg.Topic, GroupID: c.cfg.GroupID, Generation: c.generation, Partitions: maps.Clone(c.owned)}
}

// own records the assignment of generation gen (nil partitions: none).
// kafka-go gives a partition without a committed offset the group's start
// offset (kafka.FirstOffset, -2); it is recorded as -1.
func (c *Consumer) own(gen int32, partitions map[int]int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.generation, c.owned = gen, make(map[int]int64, len(partitions))
	for p, o := range partitions {
		c.owned[p] = max(o, -1)
	}
}

// advance records committed offsets of the current generation.
func (c *Consumer) advance(offsets map[int]int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for p, o := range offsets {
		if _, ok := c.owned[p]; ok {
			c.owned[p] = o
		}
	}
}

// ReaderConfig is the configuration of the reader of partition p of the topic.
func (c *Consumer) ReaderConfig(p int) kafka.ReaderConfig {
	return kafka.ReaderConfig{
		Brokers:   c.cfg.Brokers,
		Topic:     c.cfg.Topic,
		Partition: p,
		Dialer:    c.cfg.Dialer,
		MinBytes:  1,
		MaxBytes:  c.cfg.MaxFetchBytes,
		MaxWait:   c.cfg.MaxWait,
		// kafka-go retries broker errors itself and logs them here.
		ErrorLogger: c.kafkaLogger(slog.LevelInfo),
	}
}

// Run joins the group and hands the messages of each generation to h until
// ctx is cancelled, then leaves the group (waiting at most CloseTimeout)
// and returns nil. It returns an error only if it cannot start.
func (c *Consumer) Run(ctx context.Context, h Handler) error {
	if h == nil {
		return errors.New("groupconsumer: nil handler")
	}
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("groupconsumer: Run called concurrently")
	}
	defer c.running.Store(false)
	if c.cfg.Hooks.OnLeave != nil {
		defer c.cfg.Hooks.OnLeave()
	}
	defer c.own(0, nil)

	dialer := c.cfg.Dialer
	if dialer == nil {
		dialer = &kafka.Dialer{Timeout: DefaultDialTimeout, DualStack: true}
	}
	c.dlq = nil
	if !c.cfg.DisableDLQ {
		tr := c.cfg.Transport
		if tr == nil {
			tr = &kafka.Transport{DialTimeout: DefaultDialTimeout}
			defer tr.CloseIdleConnections()
		}
		dlq := &kafka.Writer{
			Addr:         kafka.TCP(c.cfg.Brokers...),
			Topic:        c.cfg.DLQTopic,
			Balancer:     &kafka.Murmur2Balancer{},
			RequiredAcks: kafka.RequireAll,
			BatchTimeout: 2 * time.Millisecond,
			MaxAttempts:  3,
			Transport:    tr,
		}
		c.dlq = dlq
		defer func() {
			if err := dlq.Close(); err != nil {
				c.log.Warn("close dead-letter writer", "err", err)
			}
		}()
	}

	group, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                     c.cfg.GroupID,
		Brokers:                c.cfg.Brokers,
		Dialer:                 dialer,
		Topics:                 []string{c.cfg.Topic},
		HeartbeatInterval:      c.cfg.HeartbeatInterval,
		SessionTimeout:         c.cfg.SessionTimeout,
		RebalanceTimeout:       c.cfg.RebalanceTimeout,
		JoinGroupBackoff:       c.cfg.JoinGroupBackoff,
		WatchPartitionChanges:  true,
		PartitionWatchInterval: 5 * time.Second,
		StartOffset:            kafka.FirstOffset,
		Logger:                 c.kafkaLogger(slog.LevelDebug),
		ErrorLogger:            c.kafkaLogger(slog.LevelInfo),
	})
	if err != nil {
		return fmt.Errorf("groupconsumer: %w", err)
	}
	defer c.leave(group)
	for {
		gen, err := group.Next(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			// ConsumerGroup backs off (JoinGroupBackoff) before it retries.
			c.log.Warn("join group", "err", err)
			if c.cfg.Hooks.OnJoinError != nil {
				c.cfg.Hooks.OnJoinError(err)
			}
			continue
		}
		c.runGeneration(ctx, gen, h)
	}
}

// leave closes group, waiting at most CloseTimeout: kafka-go's Close waits
// for a JoinGroup in flight, which the coordinator answers only when the
// rebalance ends — up to RebalanceTimeout if a member does not rejoin.
func (c *Consumer) leave(group *kafka.ConsumerGroup) {
	closed := make(chan error, 1)
	go func() { closed <- group.Close() }()
	t := time.NewTimer(c.cfg.CloseTimeout)
	defer t.Stop()
	select {
	case err := <-closed:
		if err != nil {
			c.log.Warn("leave group", "err", err)
		}
	case <-t.C:
		c.log.Warn("leave group: timed out (a rebalance in progress?); abandoning it", "timeout", c.cfg.CloseTimeout)
	}
}

// kafkaLogger adapts c's logger to kafka-go's printf-style Logger at level.
func (c *Consumer) kafkaLogger(level slog.Level) kafka.Logger {
	return kafka.LoggerFunc(func(format string, args ...any) {
		if c.log.Enabled(context.Background(), level) {
			c.log.Log(context.Background(), level, "kafka-go: "+fmt.Sprintf(format, args...))
		}
	})
}
