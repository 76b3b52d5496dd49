package consumer_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/propalpes/companias/libs/contracts/deadletter"
	"github.com/propalpes/companias/services/query/internal/ports/consumer"
	"github.com/propalpes/companias/services/query/internal/view"
)

// A Writer that panics on one company's view: the batch is re-run one
// message at a time, exactly that company's event is dead-lettered with
// reason panic, the other events of the batch and the next ones are
// written, and every offset is committed.
func TestIntegrationConsumerPanicDeadLettersTheMessage(t *testing.T) {
	t.Parallel()
	b := startKafka(t, 1)
	p := newProducer(t, b.Addr())
	bad := uuid(2)
	var mu sync.Mutex
	written := map[string]bool{}
	w := consumer.WriterFunc(func(_ context.Context, runs []view.Run) ([]view.VersionGap, error) {
		for _, r := range runs {
			if r.View.ID == bad {
				panic("store bug")
			}
		}
		mu.Lock()
		defer mu.Unlock()
		for _, r := range runs {
			written[r.View.ID] = true
		}
		return nil, nil
	})
	var reasons []string
	r := startConsumer(t, consumer.Config{Brokers: []string{b.Addr()}, GroupID: "panic", BatchSize: 100, Linger: 50 * time.Millisecond,
		OnDeadLetter: func(reason string) { mu.Lock(); reasons = append(reasons, reason); mu.Unlock() }}, w)
	p.events(t, lifecycle(1)[0], lifecycle(2)[0], lifecycle(3)[0])
	eventually(t, 30*time.Second, "companies 1 and 3 written", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return written[uuid(1)] && written[uuid(3)]
	})
	p.events(t, lifecycle(4)[0])
	eventually(t, 30*time.Second, "company 4 written", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return written[uuid(4)]
	})
	eventually(t, 30*time.Second, "4 offsets committed", func() bool { return groupCommitted(t, b.Addr(), "panic", 1)[0] == 4 })

	d := b.ReadT(t, topic+".dlq", 0, 1)[0]
	get := func(k string) string {
		for _, h := range d.Headers {
			if h.Key == k {
				return string(h.Value)
			}
		}
		return ""
	}
	if get(deadletter.HeaderReason) != deadletter.ReasonPanic || get(deadletter.HeaderOffset) != "1" {
		t.Errorf("dead letter reason %q offset %q, want panic, 1", get(deadletter.HeaderReason), get(deadletter.HeaderOffset))
	}
	mu.Lock()
	defer mu.Unlock()
	if written[bad] || len(reasons) != 1 || reasons[0] != deadletter.ReasonPanic {
		t.Errorf("company 2 written %v, dead-letter reasons %v; want false, [panic]", written[bad], reasons)
	}
	if n := r.c.Counters().DeadLettered; n != 1 {
		t.Errorf("DeadLettered = %d, want 1", n)
	}
}
