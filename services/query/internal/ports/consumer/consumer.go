package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/segmentio/kafka-go"

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

// Consumer is the projection worker. Build it with New and run it with Run;
// Status, Joined, Changed, ChangedID, Positions and Counters are safe for
// concurrent use and never block on I/O.
type Consumer struct {
	cfg     Config
	writer  Writer
	dec     *decoder
	log     *slog.Logger
	backoff retry.Backoff
	group   *groupconsumer.Consumer

	transport    *kafka.Transport
	ownTransport bool // built by New: its idle connections are closed when Run returns

	// The state is split by job, each part with its own lock, never two
	// held at once: what the group membership reports (membership.go), what
	// this member processed (positions.go), what the brokers last said about
	// the topic (status.go) and the running totals (counters.go).
	running   atomic.Bool
	member    member
	positions positions
	logs      topicLogs
	counters  counters
	signals   idSignals // per company id, fired after each applied batch
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
		backoff: retry.Backoff{Min: cfg.RetryMin, Max: cfg.RetryMax},
	}
	c.member.init()
	c.positions.init()
	c.logs.init()
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
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("consumer: Run called twice")
	}
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
