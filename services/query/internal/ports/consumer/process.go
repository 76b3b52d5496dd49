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
	var events []companiaevent.Event
	var poison []groupconsumer.Letter
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
			poison = append(poison, groupconsumer.Letter{Message: m, Reason: d.reason, Err: d.err})
		}
	}
	var span trace.Span
	if c.cfg.Tracer != nil {
		ctx, span = c.startSpan(ctx, batch, links, skipped, len(poison))
		defer span.End()
	}
	// Logged with ctx from here on: the lines carry the batch span's ids.
	for _, l := range poison {
		c.log.WarnContext(ctx, "poison message", "partition", l.Message.Partition, "offset", l.Message.Offset, "reason", l.Reason, "err", l.Err)
	}
	// Written (or, with DisableDLQ, counted) by groupconsumer, which
	// retries until it succeeds; its OnDeadLetter hook counts them.
	if err := dl.DeadLetter(ctx, poison...); err != nil {
		endWithError(span, err)
		return err
	}
	var gaps []view.VersionGap
	if len(events) > 0 {
		runs, jumps := projection.CollapseRuns(events)
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
			endWithError(span, err)
			return err
		}
		c.counters.batches.Add(1)
		gaps = append(gaps, jumps...)
	}
	c.counters.applied.Add(int64(len(events)))
	c.counters.skipped.Add(skipped)
	for _, g := range gaps {
		c.reportGap(ctx, g)
	}
	if c.cfg.OnApplied != nil && len(events) > 0 {
		times := make([]time.Time, len(events))
		for i, e := range events {
			times[i] = e.Time
		}
		c.cfg.OnApplied(times)
	}

	c.positions.batchDone(batch, lastEvent)
	if len(events) > 0 {
		ids := make([]string, len(events))
		for i, e := range events {
			ids[i] = e.Subject()
		}
		c.signals.fire(ids)
	}
	return nil
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
