package outbox_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/propalpes/companias/libs/contracts/companiaevent"
	"github.com/propalpes/companias/libs/kafkakit"
	"github.com/propalpes/companias/services/command/internal/adapters/outbox"
	"github.com/propalpes/companias/services/command/internal/adapters/postgres"
	"github.com/propalpes/companias/services/command/internal/app/command"
	"github.com/propalpes/companias/services/command/internal/domain/compania"
)

// BenchmarkIntegrationCommitToPublish measures, one command at a time, the
// time from Repository.Add returning (committed, NOTIFY sent) to the event
// being acknowledged by Kafka (RequireAll) and its row stamped: wake-up,
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

// BenchmarkIntegrationDrainBacklog measures how fast a relay drains a
// backlog of 5000 committed rows (one company per 5 rows) to Kafka with the
// default settings. Reports rows/s. Run with -benchtime 3x.
func BenchmarkIntegrationDrainBacklog(b *testing.B) {
	pool, _ := newPool(b)
	br := startBroker(b, "", "")
	topic := newTopic(b, br.Addr())
	w := newWriter(b, br.Addr())
	const rows = 5000
	var total time.Duration
	for range b.N {
		b.StopTimer()
		var msgs []companiaevent.Message
		for range rows / 5 {
			msgs = append(msgs, company(b, 5)...)
		}
		for i := 0; i < len(msgs); i += 500 {
			mustCommit(b, pool, topic, msgs[i:i+500]...)
		}
		r, err := outbox.New(pool, w, outbox.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		t0 := time.Now()
		stop := runRelay(b, r)
		waitFor(b, 60*time.Second, "the backlog drained", func() bool { return unpublished(b, pool) == 0 })
		total += time.Since(t0)
		b.StopTimer()
		stop()
	}
	b.ReportMetric(float64(rows*b.N)/total.Seconds(), "rows/s")
}
