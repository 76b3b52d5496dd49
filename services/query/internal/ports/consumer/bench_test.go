package consumer_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/propalpes/companias/libs/contracts/companiaevent"
	"github.com/propalpes/companias/services/query/internal/adapters/mongoview"
	"github.com/propalpes/companias/services/query/internal/ports/consumer"
)

// BenchmarkIntegrationProjection measures the whole projection path: a
// fresh group reads benchCompanies×~3.7 events from 6 partitions of the
// embedded broker, collapses them and writes them to FerretDB
// (PostgreSQL backend with the _id index), into a fresh database per
// iteration.
func BenchmarkIntegrationProjection(b *testing.B) {
	const companies = 500
	k := startKafka(b, 6)
	m := startMongo(b)
	p := newProducer(b, k.Addr())
	var events []companiaevent.Event
	for n := range companies {
		events = append(events, lifecycle(n)...)
	}
	p.events(b, events...)
	total := int64(len(events))

	for _, batch := range []int{100, 500} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			i := 0
			for b.Loop() {
				i++
				store, err := mongoview.Open(ctxT(b), m.client, mongoview.Options{
					Database: fmt.Sprintf("bench_%d_%d", batch, i), OnCollectionCreated: m.srv.EnsureIDIndex,
				})
				if err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				r := startConsumer(b, consumer.Config{Brokers: []string{k.Addr()}, GroupID: fmt.Sprintf("bench-%d-%d", batch, i), BatchSize: batch}, store)
				eventually(b, 10*time.Minute, "the projection to catch up", func() bool { return caughtUp(total, r.c.Status()) })
				elapsed := time.Since(start)
				r.stop()
				b.ReportMetric(float64(total)/elapsed.Seconds(), "events/s")
				b.ReportMetric(float64(r.c.Counters().Batches), "writes")
			}
		})
	}
}
