package consumer

import (
	"context"
	"strconv"

	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/propalpes/companias/libs/contracts/companiaevent"
	"github.com/propalpes/companias/libs/telemetry/tracing"
)

// appendLink appends to links a link to the trace context of e, read from
// message m, if e carries a valid one.
func appendLink(links []trace.Link, e companiaevent.Event, m kafka.Message) []trace.Link {
	sc, ok := tracing.SpanContext(e.Traceparent)
	if !ok {
		return links
	}
	return append(links, trace.Link{SpanContext: sc, Attributes: []attribute.KeyValue{
		attribute.String("compania.id", e.Data.Compania.ID),
		attribute.Int64("compania.version", e.Data.Compania.Version),
		attribute.String("cloudevents.event_id", e.ID),
		attribute.String("messaging.destination.partition.id", strconv.Itoa(m.Partition)),
		attribute.Int64("messaging.kafka.offset", m.Offset),
	}})
}

// startSpan starts the consumer span of one batch: a root span (a batch
// serves many traces) with links to the events' trace contexts. With a
// single message, its company, version, partition and offset are also
// attributes of the span itself.
func (c *Consumer) startSpan(ctx context.Context, batch []kafka.Message, links []trace.Link, skipped int64, poison int) (context.Context, trace.Span) {
	attrs := []attribute.KeyValue{
		attribute.String("messaging.system", "kafka"),
		attribute.String("messaging.operation.type", "process"),
		attribute.String("messaging.destination.name", c.cfg.Topic),
		attribute.String("messaging.consumer.group.name", c.cfg.GroupID),
		attribute.Int("messaging.batch.message_count", len(batch)),
		attribute.Int64("projection.skipped", skipped),
		attribute.Int("projection.dead_lettered", poison),
	}
	if len(batch) == 1 {
		attrs = append(attrs,
			attribute.String("messaging.destination.partition.id", strconv.Itoa(batch[0].Partition)),
			attribute.Int64("messaging.kafka.offset", batch[0].Offset))
		if len(links) == 1 {
			attrs = append(attrs, links[0].Attributes[:2]...) // company id and version
		}
	}
	return c.cfg.Tracer.Start(ctx, "projection apply",
		trace.WithNewRoot(),
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithLinks(links...),
		trace.WithAttributes(attrs...))
}

// endWithError marks span, if any, failed with err.
func endWithError(span trace.Span, err error) {
	if span == nil {
		return
	}
	span.RecordError(err)
	span.SetStatus(codes.Error, err.Error())
}
