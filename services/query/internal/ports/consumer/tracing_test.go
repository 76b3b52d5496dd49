package consumer_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/propalpes/companias/libs/contracts/companiaevent"
	"github.com/propalpes/companias/libs/telemetry/tracing"
	"github.com/propalpes/companias/services/query/internal/ports/consumer"
	"github.com/propalpes/companias/services/query/internal/view"
)

// newTracer returns a tracer recording every span in the returned exporter.
func newTracer(t testing.TB) (trace.Tracer, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := tracing.NewProvider(tracing.Config{ServiceName: "test", SampleRatio: 1}, sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp.Tracer(tracing.ScopeName), exp
}

func linkAttrs(l tracetest.SpanStub, i int) map[attribute.Key]string {
	out := map[attribute.Key]string{}
	for _, kv := range l.Links[i].Attributes {
		out[kv.Key] = kv.Value.String()
	}
	return out
}

// The reader's half of a trace: the projection's batch span links to the
// traceparent each event carried (the writer's request span), with the
// event's company, version, partition and offset on the link.
func TestIntegrationConsumerSpanLinksToEventTraces(t *testing.T) {
	t.Parallel()
	b := startKafka(t, 1)
	m := startMongo(t)
	p := newProducer(t, b.Addr())
	tracer, exp := newTracer(t)

	const tpA = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	const tpB = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	a, bb, untraced := lifecycle(1)[0], lifecycle(2)[1], lifecycle(4)[0]
	a.Traceparent, bb.Traceparent = tpA, tpB
	p.events(t, a, bb, untraced)

	r := startConsumer(t, consumer.Config{Brokers: []string{b.Addr()}, Tracer: tracer}, m.store)
	eventually(t, time.Minute, "the group to commit every message", func() bool { return caughtUp(3, r.c.Status()) })
	checkViews(t, m.store, fold([]companiaevent.Event{a, bb, untraced}))

	type linked struct {
		sc    trace.SpanContext
		attrs map[attribute.Key]string
	}
	var links []linked
	messages := 0
	for _, s := range exp.GetSpans() {
		if s.Name != "projection apply" {
			t.Errorf("unexpected span %q", s.Name)
			continue
		}
		if s.SpanKind != trace.SpanKindConsumer || s.Parent.IsValid() || s.Status.Code != codes.Unset {
			t.Errorf("span kind %v parent %v status %v, want a consumer root, unset", s.SpanKind, s.Parent, s.Status)
		}
		for _, kv := range s.Attributes {
			if kv.Key == "messaging.batch.message_count" {
				messages += int(kv.Value.AsInt64())
			}
		}
		for i := range s.Links {
			links = append(links, linked{s.Links[i].SpanContext, linkAttrs(s, i)})
		}
	}
	if messages != 3 {
		t.Errorf("spans cover %d messages, want 3", messages)
	}
	if len(links) != 2 {
		t.Fatalf("%d links, want 2 (the untraced event has none): %+v", len(links), links)
	}
	for i, want := range []struct {
		tp, id, version, offset string
	}{{tpA, a.Data.Compania.ID, "1", "0"}, {tpB, bb.Data.Compania.ID, "2", "1"}} {
		l := links[i]
		if got := tracing.Traceparent(l.sc); got != want.tp {
			t.Errorf("link %d to %s, want %s", i, got, want.tp)
		}
		if l.attrs["compania.id"] != want.id || l.attrs["compania.version"] != want.version ||
			l.attrs["messaging.destination.partition.id"] != "0" || l.attrs["messaging.kafka.offset"] != want.offset {
			t.Errorf("link %d attributes %v, want company %s version %s partition 0 offset %s", i, l.attrs, want.id, want.version, want.offset)
		}
	}
}

// A batch whose write never succeeds before shutdown ends its span as an
// error.
func TestIntegrationConsumerSpanRecordsFailedWrite(t *testing.T) {
	t.Parallel()
	b := startKafka(t, 1)
	p := newProducer(t, b.Addr())
	tracer, exp := newTracer(t)
	ev := lifecycle(1)[0]
	ev.Traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	p.events(t, ev)

	var calls atomic.Int64
	w := consumer.WriterFunc(func(context.Context, []view.Run) ([]view.VersionGap, error) {
		calls.Add(1)
		return nil, errors.New("store down")
	})
	r := startConsumer(t, consumer.Config{Brokers: []string{b.Addr()}, Tracer: tracer}, w)
	eventually(t, time.Minute, "a failed write", func() bool { return calls.Load() >= 2 })
	if n := len(exp.GetSpans()); n != 0 {
		t.Errorf("%d spans ended while the batch is retried, want 0", n)
	}
	r.stop()
	spans := exp.GetSpans()
	if len(spans) != 1 || spans[0].Status.Code != codes.Error || len(spans[0].Links) != 1 {
		t.Fatalf("spans after shutdown: %+v, want one failed span with one link", spans)
	}
	attrs := map[attribute.Key]string{}
	for _, kv := range spans[0].Attributes {
		attrs[kv.Key] = kv.Value.String()
	}
	if attrs["compania.id"] != ev.Data.Compania.ID || attrs["messaging.kafka.offset"] != "0" {
		t.Errorf("single-message span attributes %v, want its company and offset", attrs)
	}
}
