package outbox

import (
	"context"

	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/propalpes/companias/libs/contracts/companiaevent"
	"github.com/propalpes/companias/libs/telemetry/tracing"
)

// startPublishSpan starts the producer span of one relay batch. The span is
// a root (a batch serves many requests) linked to the trace context of every
// message that carries one, so that a request's trace leads to the batch
// that published its events.
func startPublishSpan(ctx context.Context, tracer trace.Tracer, msgs []kafka.Message, ids []int64) (context.Context, trace.Span) {
	links := make([]trace.Link, 0, len(msgs))
	for i, m := range msgs {
		sc, ok := tracing.SpanContext(headerValue(m.Headers, companiaevent.HeaderTraceparent))
		if !ok {
			continue
		}
		links = append(links, trace.Link{SpanContext: sc, Attributes: []attribute.KeyValue{
			attribute.Int64("outbox.id", ids[i]),
			attribute.String("messaging.kafka.message.key", string(m.Key)),
			attribute.String("messaging.destination.name", m.Topic),
		}})
	}
	return tracer.Start(ctx, "outbox publish",
		trace.WithNewRoot(),
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithLinks(links...),
		trace.WithAttributes(
			attribute.String("messaging.system", "kafka"),
			attribute.String("messaging.operation.type", "publish"),
			attribute.Int("messaging.batch.message_count", len(msgs)),
			attribute.Int64("outbox.first_id", ids[0]),
			attribute.Int64("outbox.last_id", ids[len(ids)-1]),
		))
}

// endWithError marks span failed with err.
func endWithError(span trace.Span, err error) {
	span.RecordError(err)
	span.SetStatus(codes.Error, err.Error())
}

// headerValue returns the value of the first header named key, or "".
func headerValue(headers []kafka.Header, key string) string {
	for _, h := range headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
