package outbox_test

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/segmentio/kafka-go"

	"github.com/propalpes/companias/libs/contracts/companiaevent"
	"github.com/propalpes/companias/libs/kafkakit"
	"github.com/propalpes/companias/services/command/internal/adapters/outbox"
	"github.com/propalpes/companias/services/command/internal/adapters/postgres"
	"github.com/propalpes/companias/services/command/internal/app/command"
	"github.com/propalpes/companias/services/command/internal/domain/compania"
)

// BenchmarkIntegrationCommitToPublish measures, one command at a time, the
// time from Repository.Add returning (committed, NOTIFY sent) to the event
// being acknowledged by Kafka (RequireAll) and its row deleted: wake-up,
// claim, WriteMessages, UPDATE. Reports p50/p99 in ms. Run:
//
//	go test -run '^$' -bench CommitToPublish -benchtime 300x ./internal/adapters/outbox/
func BenchmarkIntegrationCommitToPublish(b *testing.B) {
	for _, bt := range []time.Duration{5 * time.Millisecond, time.Millisecond} {
		b.Run(fmt.Sprintf("BatchTimeout=%v", bt), func(b *testing.B) {
			pool, _ := newPool(b)
			br := startBroker(b, "", "")
			topic := newTopic(b, br.Addr())
			w, err := outbox.NewWriter(outbox.WriterConfig{Kafka: kafkakit.Config{Brokers: []string{br.Addr()}}, BatchTimeout: bt})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = w.Close() })
			done := make(chan struct{}, 1)
			r, err := outbox.New(pool, w, outbox.Options{OnPublished: func(int, time.Time) { done <- struct{}{} }})
			if err != nil {
				b.Fatal(err)
			}
			runRelay(b, r)
			waitFor(b, 10*time.Second, "the relay to lead", r.Leading)
			// Warm up connections and metadata.
			mustCommit(b, pool, topic, company(b, 1)...)
			<-done

			repo := postgres.NewRepository(pool, postgres.WithTopic(topic))
			cos := make([]*compania.Compania, b.N)
			for i := range cos {
				now := time.Now().UTC().Truncate(time.Microsecond)
				c, err := compania.New(uuid.NewString(), compania.Datos{
					Nombre: "Empresa", Email: "info@empresa.co", Identificacion: fmt.Sprintf("800-%d", i),
				}, now)
				if err != nil {
					b.Fatal(err)
				}
				cos[i] = c
			}
			ctx := context.Background()
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				if err := repo.Add(ctx, cos[i], command.Meta{}); err != nil {
					b.Fatal(err)
				}
				t0 := time.Now()
				<-done
				lat = append(lat, time.Since(t0))
			}
			b.StopTimer()
			slices.Sort(lat)
			pct := func(p float64) float64 {
				return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))]) / float64(time.Millisecond)
			}
			b.ReportMetric(pct(0.50), "p50-ms")
			b.ReportMetric(pct(0.99), "p99-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// drainBatchTimeout is the Writer's BatchTimeout in the drain benchmarks:
// the service's default OUTBOX_BATCH_TIMEOUT.
const drainBatchTimeout = time.Millisecond

// BenchmarkIntegrationDrainBacklog measures how fast a running relay
// drains a backlog of 5000 rows (one company per row) committed in one
// transaction, to Kafka, with the service's default settings, as figure 2b
// of bench/RESULTS.md does: from the commit (which notifies the relay) to
// the last row deleted. One relay and one Writer serve every iteration, as
// in the service. Reports rows/s; compare with
// BenchmarkIntegrationDrainRawKafkaGo. Run with -benchtime 3x.
func BenchmarkIntegrationDrainBacklog(b *testing.B) {
	pool, _ := newPool(b)
	br := startBroker(b, "", "")
	topic := newTopic(b, br.Addr())
	w, err := outbox.NewWriter(outbox.WriterConfig{Kafka: kafkakit.Config{Brokers: []string{br.Addr()}}, BatchTimeout: drainBatchTimeout})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = w.Close() })
	const rows = 5000
	var deleted atomic.Int64
	drained := make(chan struct{}, 1)
	r, err := outbox.New(pool, w, outbox.Options{OnPublished: func(n int, _ time.Time) {
		if deleted.Add(int64(n))%rows == 0 {
			drained <- struct{}{}
		}
	}})
	if err != nil {
		b.Fatal(err)
	}
	runRelay(b, r)
	waitFor(b, 10*time.Second, "the relay to lead", r.Leading)
	// Warm up the Writer's connections and metadata.
	mustCommit(b, pool, topic, company(b, rows)...)
	<-drained
	var total time.Duration
	for range b.N {
		b.StopTimer()
		var msgs []companiaevent.Message
		for range rows { // one event per company, as in figure 2b
			msgs = append(msgs, company(b, 1)...)
		}
		mustCommit(b, pool, topic, msgs...)
		t0 := time.Now()
		b.StartTimer()
		select {
		case <-drained:
		case <-time.After(60 * time.Second):
			b.Fatalf("the backlog was not drained in 60s (%d rows deleted)", deleted.Load())
		}
		total += time.Since(t0)
	}
	b.StopTimer()
	b.ReportMetric(float64(rows*b.N)/total.Seconds(), "rows/s")
}

// BenchmarkIntegrationDrainRawKafkaGo is the ceiling of
// BenchmarkIntegrationDrainBacklog: kafka-go alone, configured like the
// relay's Writer, writing the same kind of 5000 records in WriteMessages
// calls of 500 (the relay's batch size), one after the other, as figure 2b
// of bench/RESULTS.md does. Reports msgs/s.
func BenchmarkIntegrationDrainRawKafkaGo(b *testing.B) {
	br := startBroker(b, "", "")
	topic := newTopic(b, br.Addr())
	kw := &kafka.Writer{
		Addr: kafka.TCP(br.Addr()), Balancer: &kafka.Murmur2Balancer{}, RequiredAcks: kafka.RequireAll,
		BatchTimeout: drainBatchTimeout, BatchSize: outbox.DefaultBatchSize,
	}
	b.Cleanup(func() { _ = kw.Close() })
	const rows = 5000
	var total time.Duration
	for range b.N {
		b.StopTimer()
		var msgs []kafka.Message
		for range rows / 5 {
			for _, m := range company(b, 5) {
				km := kafka.Message{Topic: topic, Key: m.Key, Value: m.Value, Time: time.Now()}
				for _, h := range m.Headers {
					km.Headers = append(km.Headers, kafka.Header{Key: h.Key, Value: h.Value})
				}
				msgs = append(msgs, km)
			}
		}
		b.StartTimer()
		t0 := time.Now()
		for i := 0; i < len(msgs); i += outbox.DefaultBatchSize {
			if err := kw.WriteMessages(context.Background(), msgs[i:i+outbox.DefaultBatchSize]...); err != nil {
				b.Fatal(err)
			}
		}
		total += time.Since(t0)
	}
	b.ReportMetric(float64(rows*b.N)/total.Seconds(), "msgs/s")
}
