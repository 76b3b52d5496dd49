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
// # Why kafka-go's ConsumerGroup rather than its group Reader
//
// The consumer uses kafka.ConsumerGroup (the layer kafka-go's Reader is
// built on), one plain partition Reader per assigned partition, and
// Generation.CommitOffsets. The group-mode Reader hides the assignment and
// the generation: it delivers messages prefetched for partitions it lost in
// a rebalance (kafka-go #1398) and commits them under the new generation,
// moving another member's offset backwards (#1308), and it cannot tell
// whether it holds any partition (readiness) or which (per-partition lag).
// Here every message belongs to the generation that fetched it: the fetch
// buffers are dropped when a generation ends, commits carry that
// generation's id (a stale one is refused by the broker and ignored here:
// the work is idempotent, the new owner redoes it), and a message below the
// offset this member already processed in a partition is dropped.
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
	"github.com/propalpes/companias/libs/contracts/deadletter"
	"github.com/propalpes/companias/services/query/internal/projection"
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

// Defaults of Config.
const (
	DefaultBatchSize      = 500
	DefaultLinger         = 5 * time.Millisecond
	DefaultMaxWait        = 250 * time.Millisecond
	DefaultRetryMin       = 100 * time.Millisecond
	DefaultRetryMax       = 5 * time.Second
	DefaultWriteTimeout   = 30 * time.Second
	DefaultCloseTimeout   = 5 * time.Second
	DefaultStatusInterval = time.Second
	// DefaultMaxFetchBytes bounds one fetch response of a partition reader
	// (1 MiB, Kafka's default max.message.bytes; about 2,000 events). A
	// broker still returns a first record batch larger than this, whole, so
	// that the reader makes progress: the topic's max.message.bytes is what
	// bounds a message.
	DefaultMaxFetchBytes = 1 << 20
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
	// Dialer, if not nil, dials the brokers (TLS, SASL, client id).
	Dialer *kafka.Dialer
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

func (c *Config) setDefaults() error {
	if len(c.Brokers) == 0 {
		return errors.New("consumer: no brokers")
	}
	if c.GroupID == "" {
		return errors.New("consumer: empty group id")
	}
	if c.Topic == "" {
		c.Topic = companiaevent.DefaultTopic
	}
	if c.DLQTopic == "" {
		c.DLQTopic = deadletter.Topic(c.Topic)
	}
	if c.DLQTopic == c.Topic {
		return errors.New("consumer: the dead-letter topic must differ from the events topic")
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
	def(&c.RetryMin, DefaultRetryMin)
	def(&c.RetryMax, DefaultRetryMax)
	def(&c.WriteTimeout, DefaultWriteTimeout)
	def(&c.CloseTimeout, DefaultCloseTimeout)
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
	return nil
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
	cfg    Config
	writer Writer
	dec    *decoder
	log    *slog.Logger

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
	dlq        *kafka.Writer // nil with DisableDLQ
	transport  *kafka.Transport
}

// New returns a Consumer that writes through w. It compiles the event
// schemas; it does not connect.
func New(cfg Config, w Writer) (*Consumer, error) {
	if w == nil {
		return nil, errors.New("consumer: nil writer")
	}
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	dec, err := newDecoder()
	if err != nil {
		return nil, fmt.Errorf("consumer: %w", err)
	}
	return &Consumer{
		cfg: cfg, writer: w, dec: dec, log: cfg.Logger.With("group", cfg.GroupID, "topic", cfg.Topic),
		assigned: map[int]bool{}, processed: map[int]int64{}, committed: map[int]int64{},
		lastEvent: map[int]time.Time{}, groupOff: map[int]int64{}, hw: map[int]int64{}, first: map[int]int64{},
		changed: make(chan struct{}),
	}, nil
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

	dialer := c.cfg.Dialer
	if dialer == nil {
		dialer = &kafka.Dialer{Timeout: 10 * time.Second, DualStack: true}
	}
	c.transport = &kafka.Transport{DialTimeout: 10 * time.Second}
	if dialer.ClientID != "" {
		c.transport.ClientID = dialer.ClientID
	}
	if dialer.TLS != nil {
		c.transport.TLS = dialer.TLS
	}
	if dialer.SASLMechanism != nil {
		c.transport.SASL = dialer.SASLMechanism
	}
	defer c.transport.CloseIdleConnections()
	if !c.cfg.DisableDLQ {
		c.dlq = &kafka.Writer{
			Addr:         kafka.TCP(c.cfg.Brokers...),
			Topic:        c.cfg.DLQTopic,
			Balancer:     &kafka.Murmur2Balancer{},
			RequiredAcks: kafka.RequireAll,
			BatchTimeout: 2 * time.Millisecond,
			MaxAttempts:  3,
			Transport:    c.transport,
		}
		defer func() {
			if err := c.dlq.Close(); err != nil {
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
		return fmt.Errorf("consumer: %w", err)
	}

	var wg sync.WaitGroup
	defer wg.Wait()
	statusCtx, stopStatus := context.WithCancel(ctx)
	defer stopStatus()
	wg.Go(func() { c.refreshLoop(statusCtx) })

	defer func() {
		closed := make(chan error, 1)
		go func() { closed <- group.Close() }() // leaves the group
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
		c.mu.Lock()
		c.joined = false
		clear(c.assigned)
		c.mu.Unlock()
	}()
	for {
		gen, err := group.Next(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			// ConsumerGroup backs off (JoinGroupBackoff) before it retries.
			c.log.Warn("join group", "err", err)
			c.mu.Lock()
			c.joined = false
			c.mu.Unlock()
			continue
		}
		c.runGeneration(ctx, gen)
	}
}

// runGeneration processes the assignment of gen until gen ends or ctx is
// cancelled. The processing runs under gen.Start, so the group does not
// rejoin before it stopped.
func (c *Consumer) runGeneration(ctx context.Context, gen *kafka.Generation) {
	assign := map[int]int64{}
	for _, a := range gen.Assignments[c.cfg.Topic] {
		assign[a.ID] = a.Offset
	}
	c.mu.Lock()
	c.joined = true
	clear(c.assigned)
	for p := range assign {
		c.assigned[p] = true
	}
	c.mu.Unlock()
	c.log.Info("joined generation", "generation", gen.ID, "member", gen.MemberID, "partitions", len(assign))

	done := make(chan struct{})
	gen.Start(func(genCtx context.Context) {
		defer close(done)
		runCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		stop := context.AfterFunc(genCtx, cancel)
		defer stop()
		c.consume(runCtx, gen, assign)
	})
	<-done

	c.mu.Lock()
	clear(c.assigned)
	c.failing = false
	c.mu.Unlock()
}

// consume reads the assigned partitions and processes batches until ctx is
// done or a commit says the generation is over.
func (c *Consumer) consume(ctx context.Context, gen *kafka.Generation, assign map[int]int64) {
	ctx, cancel := context.WithCancel(ctx)
	msgs := make(chan kafka.Message, c.cfg.BatchSize)
	var wg sync.WaitGroup
	defer wg.Wait() // runs after cancel: deferred calls run last-in first-out
	defer cancel()

	next := map[int]int64{} // next offset to process, per partition; absent = unknown
	for p, off := range assign {
		if off >= 0 {
			next[p] = off
		}
		r := c.partitionReader(p)
		start := off
		if start < 0 { // no committed offset: kafka.FirstOffset (StartOffset)
			start = kafka.FirstOffset
		}
		if err := r.SetOffset(start); err != nil {
			c.log.Error("set partition offset", "partition", p, "offset", start, "err", err)
			_ = r.Close()
			return
		}
		wg.Go(func() { c.fetch(ctx, r, p, msgs) })
	}

	pending := map[int]int64{} // processed but not yet committed
	for {
		batch, ok := c.collect(ctx, msgs)
		if !ok {
			return
		}
		batch = c.dropStale(batch, next)
		if len(batch) == 0 {
			continue
		}
		if err := c.process(ctx, batch); err != nil {
			return // ctx done: the next owner of the partitions redoes the batch
		}
		for _, m := range batch {
			next[m.Partition] = m.Offset + 1
			pending[m.Partition] = m.Offset + 1
		}
		if !c.commit(gen, pending) {
			return
		}
	}
}

// partitionReader returns a reader of partition p of the events topic.
func (c *Consumer) partitionReader(p int) *kafka.Reader {
	return kafka.NewReader(kafka.ReaderConfig{
		Brokers:   c.cfg.Brokers,
		Topic:     c.cfg.Topic,
		Partition: p,
		Dialer:    c.cfg.Dialer,
		MinBytes:  1,
		MaxBytes:  c.cfg.MaxFetchBytes,
		MaxWait:   c.cfg.MaxWait,
		// kafka-go retries broker errors itself and logs them here.
		ErrorLogger: c.kafkaLogger(slog.LevelInfo),
	})
}

// fetch copies the messages of one partition reader to out until ctx is done.
func (c *Consumer) fetch(ctx context.Context, r *kafka.Reader, p int, out chan<- kafka.Message) {
	defer func() {
		if err := r.Close(); err != nil {
			c.log.Debug("close partition reader", "partition", p, "err", err)
		}
	}()
	backoff := c.cfg.RetryMin
	for {
		m, err := r.FetchMessage(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			c.log.Warn("fetch", "partition", p, "err", err)
			if !sleep(ctx, backoff) {
				return
			}
			backoff = min(backoff*2, c.cfg.RetryMax)
			continue
		}
		backoff = c.cfg.RetryMin
		select {
		case out <- m:
		case <-ctx.Done():
			return
		}
	}
}

// collect waits for a first message, then takes what arrives within Linger,
// up to BatchSize. It returns false when ctx is done.
func (c *Consumer) collect(ctx context.Context, msgs <-chan kafka.Message) ([]kafka.Message, bool) {
	var batch []kafka.Message
	select {
	case m := <-msgs:
		batch = append(batch, m)
	case <-ctx.Done():
		return nil, false
	}
	linger := time.NewTimer(c.cfg.Linger)
	defer linger.Stop()
	for len(batch) < c.cfg.BatchSize {
		select {
		case m := <-msgs:
			batch = append(batch, m)
		case <-linger.C:
			return batch, true
		case <-ctx.Done():
			return nil, false
		}
	}
	return batch, true
}

// dropStale removes messages below the offset already processed in their
// partition (a prefetch that a reader delivered twice).
func (c *Consumer) dropStale(batch []kafka.Message, next map[int]int64) []kafka.Message {
	out := batch[:0]
	for _, m := range batch {
		if n, ok := next[m.Partition]; ok && m.Offset < n {
			c.dropped.Add(1)
			continue
		}
		out = append(out, m)
	}
	return out
}

// process dead-letters the poison of batch and writes its events; it
// retries until both succeed and returns an error only when ctx is done.
func (c *Consumer) process(ctx context.Context, batch []kafka.Message) error {
	var events []companiaevent.Event
	var poison []kafka.Message
	var reasons []string
	lastEvent := map[int]time.Time{}
	var skipped int64
	var links []trace.Link
	for _, m := range batch {
		d := c.dec.decode(m)
		switch d.verdict {
		case apply:
			events = append(events, d.event)
			if c.cfg.Tracer != nil {
				links = appendLink(links, d.event, m)
			}
			if d.event.Time.After(lastEvent[m.Partition]) {
				lastEvent[m.Partition] = d.event.Time
			}
		case skip:
			skipped++
			c.log.Debug("skip unknown event", "partition", m.Partition, "offset", m.Offset, "err", d.err)
		case deadLetter:
			c.log.Warn("poison message", "partition", m.Partition, "offset", m.Offset, "reason", d.reason, "err", d.err)
			poison = append(poison, c.deadLetterMessage(m, d))
			reasons = append(reasons, d.reason)
		}
	}
	var span trace.Span
	if c.cfg.Tracer != nil {
		ctx, span = c.startSpan(ctx, batch, links, skipped, len(poison))
		defer span.End()
	}
	if len(poison) > 0 && c.dlq != nil {
		if err := c.retry(ctx, "dead-letter", func() error { return c.dlq.WriteMessages(ctx, poison...) }); err != nil {
			endWithError(span, err)
			return err
		}
	}
	var gaps []view.VersionGap
	if len(events) > 0 {
		runs, jumps := projection.CollapseRuns(events)
		stored := map[string]view.VersionGap{} // per company, over every attempt
		err := c.retry(ctx, "write views", func() error {
			found, err := c.writeViews(ctx, runs)
			for _, g := range found {
				if _, ok := stored[g.CompaniaID]; !ok {
					stored[g.CompaniaID] = g
					gaps = append(gaps, g)
				}
			}
			return err
		})
		if err != nil {
			endWithError(span, err)
			return err
		}
		c.batches.Add(1)
		gaps = append(gaps, jumps...)
	}
	c.applied.Add(int64(len(events)))
	c.skipped.Add(skipped)
	c.dead.Add(int64(len(poison)))
	if c.cfg.OnDeadLetter != nil {
		for _, r := range reasons {
			c.cfg.OnDeadLetter(r)
		}
	}
	for _, g := range gaps {
		c.reportGap(g)
	}
	if c.cfg.OnApplied != nil && len(events) > 0 {
		times := make([]time.Time, len(events))
		for i, e := range events {
			times[i] = e.Time
		}
		c.cfg.OnApplied(times)
	}

	c.mu.Lock()
	for _, m := range batch {
		c.processed[m.Partition] = m.Offset + 1
	}
	for p, t := range lastEvent {
		if t.After(c.lastEvent[p]) {
			c.lastEvent[p] = t
		}
	}
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
	return nil
}

// reportGap logs g at Warn and calls the OnVersionGap hook.
func (c *Consumer) reportGap(g view.VersionGap) {
	c.gaps.Add(1)
	var previous any = g.Previous
	switch {
	case g.InBatch:
		c.log.Warn("version gap inside a batch: events were lost upstream or discarded from the outbox; the newer event is applied",
			"compania_id", g.CompaniaID, "previous_version", previous, "event_version", g.Version)
	default:
		if g.Previous == 0 {
			previous = "absent"
		}
		c.log.Warn("version gap over the stored view: events were lost upstream or discarded from the outbox; the newer event is applied",
			"compania_id", g.CompaniaID, "stored_version", previous, "event_version", g.Version)
	}
	if c.cfg.OnVersionGap != nil {
		c.cfg.OnVersionGap(g)
	}
}

// ErrWriteTimeout is wrapped by the error of a store write that did not
// return within Config.WriteTimeout.
var ErrWriteTimeout = errors.New("view store write timed out")

// writeViews calls the Writer with a deadline of WriteTimeout. A call that
// fails once its own deadline passed (ctx still live) is a timeout.
func (c *Consumer) writeViews(ctx context.Context, runs []view.Run) ([]view.VersionGap, error) {
	wctx, cancel := context.WithTimeout(ctx, c.cfg.WriteTimeout)
	defer cancel()
	gaps, err := c.writer.WriteViews(wctx, runs)
	if err != nil && ctx.Err() == nil && errors.Is(wctx.Err(), context.DeadlineExceeded) {
		c.timeouts.Add(1)
		return gaps, fmt.Errorf("%w after %s (%d views): %w", ErrWriteTimeout, c.cfg.WriteTimeout, len(runs), err)
	}
	return gaps, err
}

// retry calls f until it succeeds, with capped exponential backoff; it
// returns ctx's error when ctx is done first. The consumer reports
// StateFailing while it retries.
func (c *Consumer) retry(ctx context.Context, what string, f func() error) error {
	backoff := c.cfg.RetryMin
	for attempt := 1; ; attempt++ {
		err := f()
		if err == nil {
			if attempt > 1 {
				c.log.Info(what+" recovered", "attempts", attempt)
				c.setFailing(false)
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		c.retries.Add(1)
		c.setFailing(true)
		if errors.Is(err, ErrWriteTimeout) {
			c.log.Warn(what+" timed out; retrying", "attempt", attempt, "timeout", c.cfg.WriteTimeout, "backoff", backoff, "err", err)
		} else {
			c.log.Warn(what+" failed; retrying", "attempt", attempt, "backoff", backoff, "err", err)
		}
		if !sleep(ctx, backoff) {
			return ctx.Err()
		}
		backoff = min(backoff*2, c.cfg.RetryMax)
	}
}

func (c *Consumer) setFailing(v bool) {
	c.mu.Lock()
	c.failing = v
	c.mu.Unlock()
}

// commit commits pending (next offsets per partition) with gen. It returns
// false when the generation is over, so the caller stops. Other commit
// errors are logged and the offsets stay pending for the next commit.
func (c *Consumer) commit(gen *kafka.Generation, pending map[int]int64) bool {
	offsets := make(map[int]int64, len(pending))
	for p, o := range pending {
		offsets[p] = o
	}
	err := gen.CommitOffsets(map[string]map[int]int64{c.cfg.Topic: offsets})
	switch {
	case err == nil:
		c.mu.Lock()
		for p, o := range offsets {
			c.committed[p] = o
		}
		c.mu.Unlock()
		clear(pending)
		return true
	case isGenerationOver(err):
		// The group moved on; the partitions' new owners redo the
		// uncommitted messages, which is harmless (idempotent writes).
		c.log.Info("commit refused: generation over", "generation", gen.ID, "err", err)
		return false
	default:
		c.log.Warn("commit offsets", "generation", gen.ID, "err", err)
		return true
	}
}

// isGenerationOver reports whether a commit error means this member's
// generation ended (a rebalance) rather than a transient failure.
func isGenerationOver(err error) bool {
	for _, e := range []kafka.Error{
		kafka.RebalanceInProgress, kafka.IllegalGeneration, kafka.UnknownMemberId,
		kafka.NotCoordinatorForGroup, kafka.GroupCoordinatorNotAvailable, kafka.FencedInstanceID,
	} {
		if errors.Is(err, e) {
			return true
		}
	}
	return errors.Is(err, kafka.ErrGenerationEnded)
}

// kafkaLogger adapts c's logger to kafka-go's printf-style Logger at level.
func (c *Consumer) kafkaLogger(level slog.Level) kafka.Logger {
	return kafka.LoggerFunc(func(format string, args ...any) {
		if c.log.Enabled(context.Background(), level) {
			c.log.Log(context.Background(), level, "kafka-go: "+fmt.Sprintf(format, args...))
		}
	})
}

// sleep waits d or until ctx is done; it reports whether d elapsed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// deadLetterMessage returns the DLQ copy of m: its key, value and headers,
// any old dead-letter headers replaced by the deadletter headers for d.
func (c *Consumer) deadLetterMessage(m kafka.Message, d decoded) kafka.Message {
	return kafka.Message{Key: m.Key, Value: m.Value, Headers: deadletter.Headers(deadletter.Info{
		Reason: d.reason, Err: d.err, Topic: m.Topic, Partition: m.Partition, Offset: m.Offset,
		Time: time.Now(), ConsumerGroup: c.cfg.GroupID,
	}, m.Headers)}
}

// Counters returns the running totals.
func (c *Consumer) Counters() Counters {
	return Counters{
		Applied: c.applied.Load(), SkippedUnknown: c.skipped.Load(), DeadLettered: c.dead.Load(),
		DroppedStale: c.dropped.Load(), Batches: c.batches.Load(), Retries: c.retries.Load(),
		WriteTimeouts: c.timeouts.Load(), VersionGaps: c.gaps.Load(),
	}
}

// Joined reports whether the consumer is a member of its group: true from
// its first generation until Run returns, false while joining fails. A
// rebalance does not clear it. A member may hold no partition (more replicas
// than partitions); it still serves reads, so it counts as joined.
func (c *Consumer) Joined() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.joined
}

// Changed returns a channel that is closed the next time the consumer
// finishes a batch (its views written, before the commit).
func (c *Consumer) Changed() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changed
}

// Positions returns, per partition this member has processed, the offset
// after the last message it processed (written or dead-lettered or skipped).
func (c *Consumer) Positions() map[int]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[int]int64, len(c.processed))
	for p, o := range c.processed {
		out[p] = o
	}
	return out
}
