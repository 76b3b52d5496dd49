package groupconsumer

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/propalpes/companias/libs/contracts/deadletter"
)

// runGeneration processes the assignment of gen until gen ends or ctx is
// cancelled. The processing runs under gen.Start, so the group does not
// rejoin before it stopped.
func (c *Consumer) runGeneration(ctx context.Context, gen *kafka.Generation, h Handler) {
	assign := map[int]int64{}
	for _, a := range gen.Assignments[c.cfg.Topic] {
		assign[a.ID] = a.Offset
	}
	c.log.Info("joined generation", "generation", gen.ID, "member", gen.MemberID, "partitions", len(assign))
	c.own(gen.ID, assign)
	if c.cfg.Hooks.OnAssigned != nil {
		c.cfg.Hooks.OnAssigned(gen.ID, assign)
	}
	done := make(chan struct{})
	gen.Start(func(genCtx context.Context) {
		defer close(done)
		runCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		stop := context.AfterFunc(genCtx, cancel)
		defer stop()
		c.consume(runCtx, gen, assign, h)
	})
	<-done
	c.own(0, nil)
	if c.cfg.Hooks.OnRevoked != nil {
		c.cfg.Hooks.OnRevoked(gen.ID)
	}
}

// consume reads the assigned partitions and handles batches until ctx is
// done or a commit says the generation is over.
func (c *Consumer) consume(ctx context.Context, gen *kafka.Generation, assign map[int]int64, h Handler) {
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
		r := kafka.NewReader(c.ReaderConfig(p))
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

	for {
		batch, ok := c.collect(ctx, msgs)
		if !ok {
			return
		}
		batch = c.dropStale(batch, next)
		if len(batch) == 0 {
			continue
		}
		if err := c.handleRetrying(ctx, h, batch); err != nil {
			return // ctx done: the next owner of the partitions redoes the batch
		}
		offsets := map[int]int64{}
		for _, m := range batch {
			next[m.Partition] = m.Offset + 1
			offsets[m.Partition] = m.Offset + 1
		}
		if ctx.Err() != nil {
			// Stopping (or the generation ended) while the batch was
			// handled: do not commit; the batch is handled again.
			return
		}
		if !c.commit(ctx, gen, offsets) {
			return
		}
	}
}

// fetch copies the messages of one partition reader to out until ctx is done.
func (c *Consumer) fetch(ctx context.Context, r *kafka.Reader, p int, out chan<- kafka.Message) {
	defer func() {
		if err := r.Close(); err != nil {
			c.log.Debug("close partition reader", "partition", p, "err", err)
		}
	}()
	for attempt := 0; ; {
		m, err := r.FetchMessage(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			c.log.Warn("fetch", "partition", p, "attempt", attempt+1, "err", err)
			if !c.cfg.Backoff.Wait(ctx, attempt) {
				return
			}
			attempt++
			continue
		}
		attempt = 0
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
	if c.cfg.BatchSize == 1 {
		return batch, true
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
			c.log.Debug("drop stale message", "partition", m.Partition, "offset", m.Offset, "next", n)
			continue
		}
		out = append(out, m)
	}
	if n := len(batch) - len(out); n > 0 && c.cfg.Hooks.OnDroppedStale != nil {
		c.cfg.Hooks.OnDroppedStale(n)
	}
	return out
}

// handleRetrying handles batch until the handler succeeds; it returns an
// error only when ctx is done first.
func (c *Consumer) handleRetrying(ctx context.Context, h Handler, batch []kafka.Message) error {
	for attempt := 0; ; attempt++ {
		err := c.handle(ctx, h, batch)
		if err == nil {
			if attempt > 0 {
				c.log.Info("batch recovered", "attempts", attempt+1)
				c.retried("batch", attempt, nil)
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		c.log.Warn("batch failed; retrying", "attempt", attempt+1, "messages", len(batch), "err", err)
		c.retried("batch", attempt+1, err)
		if !c.cfg.Backoff.Wait(ctx, attempt) {
			return ctx.Err()
		}
	}
}

// handle calls h on batch, recovering a panic: a batch of one message that
// panics is dead-lettered with reason panic, a larger one is handled again
// one message at a time.
func (c *Consumer) handle(ctx context.Context, h Handler, batch []kafka.Message) error {
	err, p := c.call(ctx, h, batch)
	if p == nil {
		return err
	}
	if len(batch) > 1 {
		c.log.Warn("panic while handling a batch; handling its messages one at a time",
			"messages", len(batch), "panic", fmt.Sprint(p.value))
		for _, m := range batch {
			if err := c.handleRetrying(ctx, h, []kafka.Message{m}); err != nil {
				return err
			}
		}
		return nil
	}
	m := batch[0]
	c.log.Error("panic while handling a message; dead-lettering it", "partition", m.Partition,
		"offset", m.Offset, "panic", fmt.Sprint(p.value), "stack", string(p.stack))
	return c.DeadLetter(ctx, Letter{Message: m, Reason: deadletter.ReasonPanic, Err: fmt.Errorf("panic: %v", p.value)})
}

type recovered struct {
	value any
	stack []byte
}

// call runs h.HandleBatch and returns the panic it raised, if any.
func (c *Consumer) call(ctx context.Context, h Handler, batch []kafka.Message) (err error, p *recovered) {
	defer func() {
		if v := recover(); v != nil {
			p = &recovered{value: v, stack: debug.Stack()}
		}
	}()
	return h.HandleBatch(ctx, batch, c), nil
}

// commit commits offsets (next offset per partition) with gen, retrying
// transient failures. It returns false when the generation is over or ctx
// is done, so the caller stops.
func (c *Consumer) commit(ctx context.Context, gen *kafka.Generation, offsets map[int]int64) bool {
	for attempt := 0; ; attempt++ {
		err := gen.CommitOffsets(map[string]map[int]int64{c.cfg.Topic: offsets})
		switch {
		case err == nil:
			c.advance(offsets)
			if c.cfg.Hooks.OnCommitted != nil {
				c.cfg.Hooks.OnCommitted(offsets)
			}
			return true
		case isGenerationOver(err):
			// The group moved on; the partitions' new owners redo the
			// uncommitted messages.
			c.log.Info("commit refused: generation over", "generation", gen.ID, "err", err)
			return false
		}
		c.log.Warn("commit offsets; retrying", "generation", gen.ID, "attempt", attempt+1, "err", err)
		if !c.cfg.Backoff.Wait(ctx, attempt) {
			return false
		}
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

// DeadLetter implements DeadLetterer; a Handler receives c as its
// DeadLetterer. It may be called only while Run runs.
func (c *Consumer) DeadLetter(ctx context.Context, letters ...Letter) error {
	if len(letters) == 0 {
		return nil
	}
	if c.dlq != nil {
		now := time.Now()
		msgs := make([]kafka.Message, len(letters))
		for i, l := range letters {
			msgs[i] = c.Copy(l, now)
		}
		for attempt := 0; ; attempt++ {
			err := c.dlq.WriteMessages(ctx, msgs...)
			if err == nil {
				if attempt > 0 {
					c.log.Info("dead-letter recovered", "attempts", attempt+1)
					c.retried("dead-letter", attempt, nil)
				}
				break
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			c.log.Warn("write dead letters; retrying", "letters", len(msgs), "attempt", attempt+1, "err", err)
			c.retried("dead-letter", attempt+1, err)
			if !c.cfg.Backoff.Wait(ctx, attempt) {
				return ctx.Err()
			}
		}
	}
	for _, l := range letters {
		c.log.Warn("message dead-lettered", "reason", l.Reason, "err", errText(l.Err),
			"partition", l.Message.Partition, "offset", l.Message.Offset,
			"dead_letter_topic", c.cfg.DLQTopic, "written", c.dlq != nil)
		if c.cfg.Hooks.OnDeadLetter != nil {
			c.cfg.Hooks.OnDeadLetter(l.Reason)
		}
	}
	return nil
}

// Copy returns the dead-letter copy of l.Message: its key, value and
// headers, any old dead-letter headers replaced by the deadletter headers.
func (c *Consumer) Copy(l Letter, now time.Time) kafka.Message {
	m := l.Message
	return kafka.Message{Key: m.Key, Value: m.Value, Headers: deadletter.Headers(deadletter.Info{
		Reason: l.Reason, Err: l.Err, Topic: m.Topic, Partition: m.Partition, Offset: m.Offset,
		Time: now, ConsumerGroup: c.cfg.GroupID,
	}, m.Headers)}
}

func (c *Consumer) retried(what string, attempt int, err error) {
	if c.cfg.Hooks.OnRetry != nil {
		c.cfg.Hooks.OnRetry(what, attempt, err)
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
