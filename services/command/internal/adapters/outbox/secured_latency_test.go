package outbox_test

import (
	"context"
	"net"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/propalpes/companias/libs/devinfra/kafkabroker"
	"github.com/propalpes/companias/services/command/internal/adapters/outbox"
)

// TestIntegrationSecuredRelayKeepsItsConnections: the relay on a TLS +
// SCRAM broker publishes commit after commit, across lease renewals and
// metadata refreshes, on the connections it opened at warm-up (no dial and
// no SASL handshake per publish). The commit → publish latency is logged;
// its targets live in the benchmark (bench/), not here.
func TestIntegrationSecuredRelayKeepsItsConnections(t *testing.T) {
	const partitions = 6
	b := startSecuredBroker(t, partitions)
	cfg, err := b.ClientConfig(kafkabroker.WriterPrincipal)
	if err != nil {
		t.Fatal(err)
	}
	pool, _ := newPool(t)
	w, err := outbox.NewWriter(outbox.WriterConfig{Kafka: cfg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	var dials atomic.Int64
	outbox.WrapDial(w, func(next outbox.DialFunc) outbox.DialFunc {
		return func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			return next(ctx, network, addr)
		}
	})
	done := make(chan time.Time, 16)
	r, err := outbox.New(pool, w, outbox.Options{OnPublished: func(int, time.Time) { done <- time.Now() }})
	if err != nil {
		t.Fatal(err)
	}
	runRelay(t, r)
	waitFor(t, 10*time.Second, "the relay to lead", r.Leading)
	mustCommit(t, pool, serviceTopics.Events, company(t, 1)...)
	<-done
	warm := dials.Load()

	const n = 150 // about 10 s: lease renewals, metadata refreshes (6 s)
	lat := make([]time.Duration, 0, n)
	pace := time.NewTicker(50 * time.Millisecond) // a steady trickle, as under light load
	defer pace.Stop()
	for range n {
		msgs := company(t, 1)
		t0 := time.Now()
		mustCommit(t, pool, serviceTopics.Events, msgs...)
		select {
		case at := <-done:
			lat = append(lat, at.Sub(t0))
		case <-time.After(10 * time.Second):
			t.Fatal("no publish within 10s")
		}
		<-pace.C
	}
	slices.Sort(lat)
	p50, p99 := lat[n/2], lat[n*99/100]
	t.Logf("secured commit → published: p50 %v, p99 %v; dials %d after warm-up, %d in all", p50, p99, dials.Load()-warm, dials.Load())
	if d := dials.Load() - warm; d > 2 {
		t.Errorf("%d new broker connections for %d publishes after warm-up", d, n)
	}
}
