// Package kafkaintake is the Kafka port of the command service: it consumes
// CrearCompania commands (the contract of libs/contracts/companiacmd) as a
// member of a consumer group (libs/kafkakit/groupconsumer: generation-aware,
// no stale prefetch, no commit from an old generation) and runs them through
// the CrearCompania use case, one message at a time.
//
// Delivery is at least once, and a command creates at most one company:
//
//   - An offset is committed only after the command's transaction committed,
//     or after the message was copied to the dead-letter topic. A crash in
//     between redelivers the message, and the use case's idempotency record
//     (scope "kafka:<topic>", key = command id, hash of the data) turns the
//     second run into a replay, which counts as success.
//   - A message that can never succeed (a value over MaxCommandBytes,
//     malformed JSON, invalid data, a duplicate company, a command id reused
//     with another body) is written to the dead-letter topic with its
//     original key, value and headers plus the headers of
//     libs/contracts/deadletter, and the consumer moves on. So is a message
//     whose processing panicked (reason panic).
//   - A traceparent header is kept only under the HTTP port's rule
//     (tracing.ParseTraceparent); an invalid or oversized one is dropped with
//     a Warn log of its length, and the command runs without it.
//   - Any other failure (database down, timeout) is retried with capped
//     exponential backoff; the message is neither committed nor skipped, so
//     its partition waits until it succeeds or the consumer stops.
//
// Topics are not created here: the command topic and its dead-letter topic
// must exist before Run (kafka-go caches topic metadata).
package kafkaintake

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/propalpes/companias/libs/contracts/companiacmd"
	"github.com/propalpes/companias/libs/contracts/deadletter"
	"github.com/propalpes/companias/libs/kafkakit/groupconsumer"
	"github.com/propalpes/companias/libs/seedwork/apperr"
	"github.com/propalpes/companias/libs/seedwork/retry"
	"github.com/propalpes/companias/libs/telemetry/tracing"
	"github.com/propalpes/companias/services/command/internal/app/command"
	"github.com/propalpes/companias/services/command/internal/domain/compania"
	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/trace"
)

// Creator runs a CrearCompania command; *command.CrearCompaniaHandler is one.
// Handle must be idempotent for a given Idempotency (a replay returns success)
// and must classify its errors with apperr kinds. Permanent (dead-lettered):
// command.ErrIdempotencyMismatch (reason conflict), Invalid (reason invalid),
// Conflict, NotFound and PreconditionFailed (reason conflict). Retried:
// command.ErrIdempotencyKeyTaken, compania.ErrConcurrentUpdate and every other
// error (database down, timeouts).
type Creator interface {
	Handle(ctx context.Context, cmd command.CrearCompania) (command.Result, error)
}

// Defaults applied by New to zero Config fields.
const (
	DefaultMinBackoff    = 100 * time.Millisecond
	DefaultMaxBackoff    = 30 * time.Second
	DefaultHandleTimeout = 30 * time.Second
	DefaultMaxWait       = time.Second
	DefaultCloseTimeout  = 10 * time.Second
	// DefaultMaxFetchBytes bounds one fetch response of a partition (1 MiB,
	// Kafka's default max.message.bytes). A broker still returns a first
	// record batch larger than this, whole, so that consumers make progress:
	// the topic's max.message.bytes is what bounds a message.
	DefaultMaxFetchBytes = 1 << 20
	// DefaultMaxCommandBytes bounds the value of a command (64 KiB, far above
	// the largest valid CrearCompania); a larger one is dead-lettered
	// (reason malformed) without being parsed.
	DefaultMaxCommandBytes = 64 << 10
)

// Config configures a Consumer. Brokers and GroupID are required; every
// other zero field takes a default.
type Config struct {
	// Brokers are the bootstrap addresses ("host:port").
	Brokers []string
	// GroupID is the consumer group, e.g. "companias-command". A new group
	// starts at the first offset of each partition.
	GroupID string
	// Topic is the command topic; default companiacmd.DefaultTopic.
	Topic string
	// DeadLetterTopic receives the messages that cannot be processed;
	// default deadletter.Topic(Topic). It must exist and differ from Topic.
	DeadLetterTopic string
	// MinBackoff and MaxBackoff bound the exponential backoff between retries
	// of a transient failure (defaults DefaultMinBackoff, DefaultMaxBackoff).
	MinBackoff, MaxBackoff time.Duration
	// HandleTimeout bounds one attempt of the use case; a timeout is a
	// transient failure (default DefaultHandleTimeout).
	HandleTimeout time.Duration
	// MaxWait is how long a fetch waits on the broker for new data; it also
	// bounds how long a rebalance waits for the partition readers to stop
	// (default DefaultMaxWait).
	MaxWait time.Duration
	// CloseTimeout bounds how long Run waits to leave the group when it
	// stops, also while a JoinGroup is in flight (default DefaultCloseTimeout).
	CloseTimeout time.Duration
	// MaxFetchBytes is the partition readers' MaxBytes: the most bytes one
	// fetch asks for (default DefaultMaxFetchBytes).
	MaxFetchBytes int
	// MaxCommandBytes is the largest command value parsed; a larger one is
	// dead-lettered with reason malformed (default DefaultMaxCommandBytes).
	MaxCommandBytes int
	// SessionTimeout, HeartbeatInterval, RebalanceTimeout and
	// JoinGroupBackoff tune the consumer group; zero keeps kafka-go's defaults.
	SessionTimeout, HeartbeatInterval, RebalanceTimeout, JoinGroupBackoff time.Duration
	// Dialer, if not nil, dials the brokers for the group membership and
	// the partition readers (TLS, SASL, client id); nil: a plain dialer.
	Dialer *kafka.Dialer
	// Transport, if not nil, carries the dead-letter writes; nil: a plain
	// transport of the consumer's own.
	Transport *kafka.Transport
	// LogTraceContext makes the lines logged about a command carry the
	// trace of its traceparent header (the producer's span) through the
	// logging call's context; main sets it when tracing is on.
	LogTraceContext bool
	// OnDeadLetter, if set, is called once for each message written to the
	// dead-letter topic, with its reason (a deadletter.Reason* value), for a
	// metric. It runs on the consumer goroutine: keep it fast.
	OnDeadLetter func(reason string)
}

// Consumer reads CrearCompania commands from one topic as a member of a
// consumer group (libs/kafkakit/groupconsumer: generation-aware, one message
// per batch, committed after it was processed). Build it with New; Run may
// be called again after it returned (each Run joins the group anew), but not
// concurrently.
type Consumer struct {
	cfg     Config
	creator Creator
	log     *slog.Logger
	scope   string
	backoff retry.Backoff
	group   *groupconsumer.Consumer

	// run runs the group membership with a handler; New sets it to
	// group.Run, tests to a fake group.
	run func(ctx context.Context, h groupconsumer.Handler) error
}

// New validates cfg, applies the defaults and returns a Consumer that runs
// commands through creator and logs to log (nil: slog.Default()).
func New(cfg Config, creator Creator, log *slog.Logger) (*Consumer, error) {
	if creator == nil {
		return nil, errors.New("kafkaintake: a creator is required")
	}
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("kafkaintake: at least one broker is required")
	}
	if cfg.GroupID == "" {
		return nil, errors.New("kafkaintake: a consumer group id is required")
	}
	if cfg.Topic == "" {
		cfg.Topic = companiacmd.DefaultTopic
	}
	if cfg.DeadLetterTopic == "" {
		cfg.DeadLetterTopic = deadletter.Topic(cfg.Topic)
	}
	if cfg.DeadLetterTopic == cfg.Topic {
		return nil, fmt.Errorf("kafkaintake: dead-letter topic %q is the command topic", cfg.Topic)
	}
	setDefault(&cfg.MinBackoff, DefaultMinBackoff)
	setDefault(&cfg.MaxBackoff, DefaultMaxBackoff)
	setDefault(&cfg.HandleTimeout, DefaultHandleTimeout)
	setDefault(&cfg.MaxWait, DefaultMaxWait)
	setDefault(&cfg.CloseTimeout, DefaultCloseTimeout)
	if cfg.MinBackoff < 0 || cfg.MaxBackoff < cfg.MinBackoff || cfg.HandleTimeout < 0 ||
		cfg.MaxWait < 0 || cfg.CloseTimeout < 0 {
		return nil, errors.New("kafkaintake: durations must be positive and MaxBackoff >= MinBackoff")
	}
	if cfg.MaxFetchBytes == 0 {
		cfg.MaxFetchBytes = DefaultMaxFetchBytes
	}
	if cfg.MaxCommandBytes == 0 {
		cfg.MaxCommandBytes = DefaultMaxCommandBytes
	}
	if cfg.MaxFetchBytes < 0 || cfg.MaxCommandBytes < 0 {
		return nil, errors.New("kafkaintake: MaxFetchBytes and MaxCommandBytes must be positive")
	}
	if log == nil {
		log = slog.Default()
	}
	c := &Consumer{
		cfg:     cfg,
		creator: creator,
		log:     log.With("topic", cfg.Topic, "group", cfg.GroupID),
		scope:   "kafka:" + cfg.Topic,
		backoff: retry.Backoff{Min: cfg.MinBackoff, Max: cfg.MaxBackoff, Jitter: 0.2},
	}
	group, err := groupconsumer.New(groupconsumer.Config{
		Brokers:           cfg.Brokers,
		GroupID:           cfg.GroupID,
		Topic:             cfg.Topic,
		DLQTopic:          cfg.DeadLetterTopic,
		Dialer:            cfg.Dialer,
		Transport:         cfg.Transport,
		BatchSize:         1, // each command committed after its transaction
		MaxWait:           cfg.MaxWait,
		MaxFetchBytes:     cfg.MaxFetchBytes,
		HeartbeatInterval: cfg.HeartbeatInterval,
		SessionTimeout:    cfg.SessionTimeout,
		RebalanceTimeout:  cfg.RebalanceTimeout,
		JoinGroupBackoff:  cfg.JoinGroupBackoff,
		CloseTimeout:      cfg.CloseTimeout,
		Backoff:           c.backoff,
		Logger:            c.log,
		Hooks:             groupconsumer.Hooks{OnDeadLetter: c.deadLettered},
	})
	if err != nil {
		return nil, fmt.Errorf("kafkaintake: %w", err)
	}
	c.group = group
	c.run = group.Run
	return c, nil
}

func setDefault(d *time.Duration, def time.Duration) {
	if *d == 0 {
		*d = def
	}
}

// Assignment returns the partitions this member owns in its current
// generation with the group's next offset in each (groupconsumer's
// Assignment), for the lag metric (libs/kafkakit/grouplag).
func (c *Consumer) Assignment() groupconsumer.Assignment { return c.group.Assignment() }

// deadLettered calls the OnDeadLetter hook.
func (c *Consumer) deadLettered(reason string) {
	if c.cfg.OnDeadLetter != nil {
		c.cfg.OnDeadLetter(reason)
	}
}

// Run consumes until ctx is cancelled, then leaves the group (waiting at
// most CloseTimeout) and returns nil. A message being processed when ctx is
// cancelled is not committed: it is redelivered (to this group) and replayed
// idempotently. A panic while processing a message dead-letters it with
// reason panic. Run returns an error only if it cannot start.
func (c *Consumer) Run(ctx context.Context) error {
	return c.run(ctx, groupconsumer.PerMessage(c.process))
}

// process runs m through the use case until it succeeds or fails
// permanently, in which case m is dead-lettered. It returns nil when m may be
// committed, and a non-nil error only when ctx was cancelled.
func (c *Consumer) process(ctx context.Context, m kafka.Message, dl groupconsumer.DeadLetterer) error {
	if len(m.Value) > c.cfg.MaxCommandBytes {
		err := fmt.Errorf("%w: value of %d bytes exceeds the limit of %d bytes", companiacmd.ErrMalformed, len(m.Value), c.cfg.MaxCommandBytes)
		return c.deadLetter(ctx, dl, m, "", deadletter.ReasonMalformed, err)
	}
	cmd, err := companiacmd.DecodeCrearCompania(m.Value)
	if err != nil {
		return c.deadLetter(ctx, dl, m, "", deadletter.ReasonMalformed, err)
	}
	req := command.CrearCompania{
		Datos: compania.Datos{
			Nombre:         cmd.Data.Nombre,
			Email:          cmd.Data.Email,
			Identificacion: cmd.Data.Identificacion,
		},
		Idempotency: &command.Idempotency{Scope: c.scope, Key: cmd.ID, RequestHash: requestHash(cmd.Data)},
		Traceparent: c.traceparent(m),
	}
	logCtx := ctx // ctx, with the command's trace for the log lines
	if sc, ok := tracing.SpanContext(req.Traceparent); ok && c.cfg.LogTraceContext {
		logCtx = trace.ContextWithRemoteSpanContext(ctx, sc)
	}
	for attempt := 0; ; attempt++ {
		res, err := c.handle(ctx, req)
		if err == nil {
			c.log.DebugContext(logCtx, "command processed", "command_id", cmd.ID, "compania_id", res.Compania.ID,
				"replayed", res.Replayed, "partition", m.Partition, "offset", m.Offset)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if reason, permanent := classify(err); permanent {
			return c.deadLetter(logCtx, dl, m, cmd.ID, reason, err)
		}
		c.log.WarnContext(logCtx, "command failed; retrying", "command_id", cmd.ID, "partition", m.Partition,
			"offset", m.Offset, "err", err, "attempt", attempt+1)
		if !c.sleep(ctx, attempt) {
			return ctx.Err()
		}
	}
}

func (c *Consumer) handle(ctx context.Context, req command.CrearCompania) (command.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.HandleTimeout)
	defer cancel()
	return c.creator.Handle(ctx, req)
}

// classify returns the dead-letter reason of a permanent failure, or false
// for a failure worth retrying.
func classify(err error) (reason string, permanent bool) {
	switch {
	case errors.Is(err, command.ErrIdempotencyMismatch):
		// Same command id, another body: a conflict with the first command.
		return deadletter.ReasonConflict, true
	case errors.Is(err, command.ErrIdempotencyKeyTaken), errors.Is(err, compania.ErrConcurrentUpdate):
		// Another transaction holds the key or the row: retrying resolves it.
		return "", false
	}
	switch apperr.KindOf(err) {
	case apperr.Invalid:
		return deadletter.ReasonInvalid, true
	case apperr.Conflict, apperr.NotFound, apperr.PreconditionFailed:
		// Refused by the current state; retrying would block the partition forever.
		return deadletter.ReasonConflict, true
	default:
		return "", false
	}
}

// deadLetter copies m to the dead-letter topic, retrying until the write
// succeeds; it returns a non-nil error only when ctx was cancelled first.
func (c *Consumer) deadLetter(ctx context.Context, dl groupconsumer.DeadLetterer, m kafka.Message, commandID, reason string, cause error) error {
	if err := dl.DeadLetter(ctx, groupconsumer.Letter{Message: m, Reason: reason, Err: cause}); err != nil {
		return err
	}
	c.log.WarnContext(ctx, "command dead-lettered", "reason", reason, "err", cause.Error(),
		"command_id", commandID, "partition", m.Partition, "offset", m.Offset,
		"dead_letter_topic", c.cfg.DeadLetterTopic)
	return nil
}

// requestHash identifies a command's data: the SHA-256 of its canonical JSON
// (the fields in declaration order, as sent, no whitespace).
func requestHash(d companiacmd.CrearCompaniaData) []byte {
	b, err := json.Marshal(d)
	if err != nil {
		panic(fmt.Sprintf("kafkaintake: marshal command data: %v", err)) // strings always marshal
	}
	sum := sha256.Sum256(b)
	return sum[:]
}

// traceparent returns the W3C traceparent header of m to store with its
// command, under the rule the HTTP port applies (tracing.ParseTraceparent),
// or "". A message with an invalid one, or with several, runs without it: the
// drop is logged at Warn with the size, never the value, which may be huge
// and would otherwise go into the outbox record of the event.
func (c *Consumer) traceparent(m kafka.Message) string {
	var values [][]byte
	for _, h := range m.Headers {
		if h.Key == headerTraceparent {
			values = append(values, h.Value)
		}
	}
	if len(values) == 0 {
		return ""
	}
	if len(values) == 1 {
		if tp, ok := tracing.ParseTraceparent(string(values[0])); ok {
			return tp
		}
	}
	size := 0
	for _, v := range values {
		size += len(v)
	}
	c.log.Warn("invalid traceparent dropped", "length", size, "headers", len(values),
		"partition", m.Partition, "offset", m.Offset)
	return ""
}

// headerTraceparent is the Kafka header of a command's W3C trace context.
const headerTraceparent = "traceparent"

// sleep waits the backoff of the given attempt (0-based); it returns false
// if ctx was cancelled first.
func (c *Consumer) sleep(ctx context.Context, attempt int) bool {
	return c.backoff.Wait(ctx, attempt)
}
