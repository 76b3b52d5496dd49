package consumer

import (
	"context"
	"time"

	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/trace"

	"github.com/propalpes/companias/libs/contracts/companiaevent"
	"github.com/propalpes/companias/libs/kafkakit/groupconsumer"
	"github.com/propalpes/companias/services/query/internal/projection"
	"github.com/propalpes/companias/services/query/internal/view"
)

// process dead-letters the poison of batch and writes its events; it
// retries until both succeed and returns an error only when ctx is done. It
// is the consumer's groupconsumer.Handler.
func (c *Consumer) process(ctx context.Context, batch []kafka.Message, dl groupconsumer.DeadLetterer) error {
	s := c.classify(batch)
	var span trace.Span
	if c.cfg.Tracer != nil {
		ctx, span = c.startSpan(ctx, batch, s.links, s.skipped, len(s.poison))
		defer span.End()
	}
	// Logged with ctx from here on: the lines carry the batch span's ids.
	for _, l := range s.poison {
		c.log.WarnContext(ctx, "poison message", "partition", l.Message.Partition, "offset", l.Message.Offset, "reason", l.Reason, "err", l.Err)
	}
	// Written (or, with DisableDLQ, counted) by groupconsumer, which
	// retries until it succeeds; its OnDeadLetter hook counts them.
	if err := dl.DeadLetter(ctx, s.poison...); err != nil {
		endWithError(span, err)
		return err
	}
	gaps, err := c.write(ctx, s.events)
	if err != nil {
		endWithError(span, err)
		return err
	}
	c.reportApplied(ctx, s, gaps)
	c.positions.batchDone(batch, s.lastEvent)
	if len(s.events) > 0 {
		ids := make([]string, len(s.events))
		for i, e := range s.events {
			ids[i] = e.Subject()
		}
		c.signals.fire(ids)
	}
	return nil
}

// classified is a batch sorted by verdict.
type classified struct {
	events    []companiaevent.Event  // to apply, in batch order
	poison    []groupconsumer.Letter // to dead-letter
	skipped   int64                  // unknown event types of the known major version
	links     []trace.Link           // to the events' traces, when tracing
	lastEvent map[int]time.Time      // newest event time to apply, per partition
}

// classify decodes each message of batch and sorts it by verdict.
func (c *Consumer) classify(batch []kafka.Message) classified {
	s := classified{lastEvent: map[int]time.Time{}}
	for _, m := range batch {
		d := c.dec.decode(m)
		switch d.verdict {
		case apply:
			s.events = append(s.events, d.event)
			if c.cfg.Tracer != nil {
				s.links = appendLink(s.links, d.event, m)
			}
			if d.event.Time.After(s.lastEvent[m.Partition]) {
				s.lastEvent[m.Partition] = d.event.Time
			}
		case skip:
			s.skipped++
			c.log.Debug("skip unknown event", "partition", m.Partition, "offset", m.Offset, "err", d.err)
		case deadLetter:
			s.poison = append(s.poison, groupconsumer.Letter{Message: m, Reason: d.reason, Err: d.err})
		}
	}
	return s
}

// write collapses events per company and writes them, retrying until the
// write succeeds or ctx is done. It returns the version gaps: those the
// store found (the first found per company, over every attempt), then
// those inside the batch.
func (c *Consumer) write(ctx context.Context, events []companiaevent.Event) ([]view.VersionGap, error) {
	if len(events) == 0 {
		return nil, nil
	}
	runs, jumps := projection.CollapseRuns(events)
	var gaps []view.VersionGap
	stored := map[string]view.VersionGap{} // per company, over every attempt
	err := c.retrying(ctx, "write views", func() error {
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
		return nil, err
	}
	c.counters.batches.Add(1)
	return append(gaps, jumps...), nil
}

// reportApplied counts a written batch, reports its gaps and calls the OnApplied
// hook with its event times.
func (c *Consumer) reportApplied(ctx context.Context, s classified, gaps []view.VersionGap) {
	c.counters.applied.Add(int64(len(s.events)))
	c.counters.skipped.Add(s.skipped)
	for _, g := range gaps {
		c.reportGap(ctx, g)
	}
	if c.cfg.OnApplied != nil && len(s.events) > 0 {
		times := make([]time.Time, len(s.events))
		for i, e := range s.events {
			times[i] = e.Time
		}
		c.cfg.OnApplied(times)
	}
}

// reportGap logs g at Warn and calls the OnVersionGap hook.
func (c *Consumer) reportGap(ctx context.Context, g view.VersionGap) {
	c.counters.gaps.Add(1)
	var previous any = g.Previous
	switch {
	case g.InBatch:
		c.log.WarnContext(ctx, "version gap inside a batch: events were lost upstream or discarded from the outbox; the newer event is applied",
			"compania_id", g.CompaniaID, "previous_version", previous, "event_version", g.Version)
	default:
		if g.Previous == 0 {
			previous = "absent"
		}
		c.log.WarnContext(ctx, "version gap over the stored view: events were lost upstream or discarded from the outbox; the newer event is applied",
			"compania_id", g.CompaniaID, "stored_version", previous, "event_version", g.Version)
	}
	if c.cfg.OnVersionGap != nil {
		c.cfg.OnVersionGap(g)
	}
}
