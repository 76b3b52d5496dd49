package kafkabroker_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/propalpes/companias/libs/devinfra/kafkabroker"
	"github.com/propalpes/companias/libs/devinfra/runtest"
)

func testContext(t *testing.T) context.Context {
	t.Helper()
	return runtest.Context(t, 30*time.Second)
}

func newClient(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatalf("kgo.NewClient: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func produce(ctx context.Context, t *testing.T, cl *kgo.Client, topic string, from, to int) {
	t.Helper()
	var recs []*kgo.Record
	for i := from; i < to; i++ {
		recs = append(recs, &kgo.Record{
			Topic: topic,
			Key:   fmt.Appendf(nil, "k-%d", i%7),
			Value: fmt.Appendf(nil, "v-%d", i),
		})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// consume polls cl until it has seen n records or ctx ends; it returns the
// record values.
func consume(ctx context.Context, t *testing.T, cl *kgo.Client, n int) []string {
	t.Helper()
	var got []string
	for len(got) < n {
		fetches := cl.PollRecords(ctx, n-len(got))
		if ctx.Err() != nil {
			t.Fatalf("consume: got %d of %d records before %v", len(got), n, ctx.Err())
		}
		if errs := fetches.Errors(); len(errs) > 0 {
			t.Fatalf("consume: %v", errs)
		}
		fetches.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	return got
}

func TestStartDefaultsToLoopbackFreePort(t *testing.T) {
	t.Parallel()
	b := kafkabroker.StartT(t, kafkabroker.Options{}, 0)

	host, port, err := net.SplitHostPort(b.Addr())
	if err != nil {
		t.Fatalf("Addr %q: %v", b.Addr(), err)
	}
	if host != "127.0.0.1" || port == "0" {
		t.Fatalf("Addr = %q, want 127.0.0.1:<non-zero>", b.Addr())
	}
	conn, err := net.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatalf("dial %s: %v", b.Addr(), err)
	}
	_ = conn.Close()
}

func TestStartWildcardAdvertisesLoopback(t *testing.T) {
	t.Parallel()
	b := kafkabroker.StartT(t, kafkabroker.Options{Addr: "0.0.0.0:0"}, 0)
	if !strings.HasPrefix(b.Addr(), "127.0.0.1:") {
		t.Fatalf("Addr = %q, want 127.0.0.1:<port>", b.Addr())
	}
	ctx := testContext(t)
	if err := b.CreateTopics(ctx, 1, "wild"); err != nil {
		t.Fatalf("CreateTopics: %v", err)
	}
	cl := newClient(t, b.Addr(), kgo.ConsumeTopics("wild"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	produce(ctx, t, cl, "wild", 0, 3)
	if got := consume(ctx, t, cl, 3); len(got) != 3 {
		t.Fatalf("consumed %d records, want 3", len(got))
	}
}

func TestStartFailsWhenAddrTaken(t *testing.T) {
	t.Parallel()
	b := kafkabroker.StartT(t, kafkabroker.Options{}, 0)
	_, err := kafkabroker.Start(kafkabroker.Options{Addr: b.Addr()})
	if err == nil {
		t.Fatalf("second Start on %s succeeded, want an error", b.Addr())
	}
}

func TestCloseIsIdempotent(t *testing.T) {
	t.Parallel()
	b, err := kafkabroker.Start(kafkabroker.Options{})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(b.Close)
	}
	wg.Wait()
	b.Close()
}

func TestCreateTopics(t *testing.T) {
	t.Parallel()
	b := kafkabroker.StartT(t, kafkabroker.Options{}, 0)
	ctx := testContext(t)

	if err := b.CreateTopics(ctx, 6, "companias.events", "companias.events.dlq"); err != nil {
		t.Fatalf("CreateTopics: %v", err)
	}
	// Existing topics are not an error, and keep their partition count.
	if err := b.CreateTopics(ctx, 3, "companias.events", "other"); err != nil {
		t.Fatalf("CreateTopics again: %v", err)
	}
	if err := b.CreateTopics(ctx, 1); err != nil {
		t.Fatalf("CreateTopics with no topics: %v", err)
	}

	cl := newClient(t, b.Addr())
	want := map[string]int{"companias.events": 6, "companias.events.dlq": 6, "other": 3}
	// kadm-free metadata check through a plain client request.
	parts := partitionCounts(ctx, t, cl, "companias.events", "companias.events.dlq", "other")
	for topic, n := range want {
		if parts[topic] != n {
			t.Errorf("topic %s has %d partitions, want %d", topic, parts[topic], n)
		}
	}
}

// StartT starts a broker that the test's cleanup closes, with its topics.
func TestStartT(t *testing.T) {
	var b *kafkabroker.Broker
	t.Run("start", func(t *testing.T) {
		b = kafkabroker.StartT(t, kafkabroker.Options{}, 4, "a", "b")
		ctx := testContext(t)
		parts := partitionCounts(ctx, t, newClient(t, b.Addr()), "a", "b")
		if parts["a"] != 4 || parts["b"] != 4 {
			t.Errorf("partitions = %v, want 4 for a and b", parts)
		}
	})
	if c, err := net.DialTimeout("tcp", b.Addr(), time.Second); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after the test's cleanup", b.Addr())
	}
}

// ReadT reads the first messages of a partition, in order.
func TestReadT(t *testing.T) {
	t.Parallel()
	b := kafkabroker.StartT(t, kafkabroker.Options{}, 1, "read")
	ctx := testContext(t)
	produce(ctx, t, newClient(t, b.Addr()), "read", 0, 5)
	msgs := b.ReadT(t, "read", 0, 3)
	var got []string
	for _, m := range msgs {
		got = append(got, string(m.Value))
	}
	if want := []string{"v-0", "v-1", "v-2"}; !slices.Equal(got, want) {
		t.Fatalf("ReadT = %q, want %q", got, want)
	}
}

func TestCreateTopicsRejectsBadInput(t *testing.T) {
	t.Parallel()
	b := kafkabroker.StartT(t, kafkabroker.Options{}, 0)
	ctx := testContext(t)

	if err := b.CreateTopics(ctx, 0, "t"); err == nil {
		t.Error("CreateTopics with 0 partitions succeeded, want an error")
	}
	if err := b.CreateTopics(ctx, 1, "bad topic name!"); err == nil {
		t.Error("CreateTopics with an invalid name succeeded, want an error")
	}
}

func TestCreateTopicsHonoursContext(t *testing.T) {
	t.Parallel()
	b := kafkabroker.StartT(t, kafkabroker.Options{}, 0)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := b.CreateTopics(ctx, 1, "t")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("CreateTopics on a cancelled context = %v, want context.Canceled", err)
	}
}

func TestProduceConsumeGroup(t *testing.T) {
	t.Parallel()
	b := kafkabroker.StartT(t, kafkabroker.Options{}, 0)
	ctx := testContext(t)
	if err := b.CreateTopics(ctx, 4, "orders"); err != nil {
		t.Fatalf("CreateTopics: %v", err)
	}
	producer := newClient(t, b.Addr())
	produce(ctx, t, producer, "orders", 0, 100)

	consumer := newClient(t, b.Addr(),
		kgo.ConsumerGroup("g"), kgo.ConsumeTopics("orders"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := consume(ctx, t, consumer, 100)
	seen := make(map[string]bool, len(got))
	for _, v := range got {
		seen[v] = true
	}
	if len(seen) != 100 {
		t.Fatalf("consumed %d distinct records, want 100", len(seen))
	}
}

// TestRestartKeepsState starts a persistent broker, produces and commits
// part of the stream, restarts on the same DataDir and port, and checks
// that topics, records and group offsets survived.
func TestRestartKeepsState(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := testContext(t)

	b1, err := kafkabroker.Start(kafkabroker.Options{DataDir: dir})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	addr := b1.Addr()
	if err := b1.CreateTopics(ctx, 3, "persisted"); err != nil {
		b1.Close()
		t.Fatalf("CreateTopics: %v", err)
	}
	func() {
		defer b1.Close()
		cl := newClient(t, addr)
		produce(ctx, t, cl, "persisted", 0, 50)

		consumer, err := kgo.NewClient(kgo.SeedBrokers(addr),
			kgo.ConsumerGroup("g"), kgo.ConsumeTopics("persisted"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.DisableAutoCommit())
		if err != nil {
			t.Fatalf("kgo.NewClient: %v", err)
		}
		defer consumer.Close() // leaves the group after the commit below
		// Consume and commit everything produced so far.
		got := consume(ctx, t, consumer, 50)
		if len(got) != 50 {
			t.Fatalf("consumed %d, want 50", len(got))
		}
		if err := consumer.CommitUncommittedOffsets(ctx); err != nil {
			t.Fatalf("commit: %v", err)
		}
		produce(ctx, t, cl, "persisted", 50, 80)
		cl.Close()
	}()

	b2 := kafkabroker.StartT(t, kafkabroker.Options{Addr: addr, DataDir: dir}, 0)
	if b2.Addr() != addr {
		t.Fatalf("restarted Addr = %s, want %s", b2.Addr(), addr)
	}

	// All 80 records are still readable from the start.
	reader := newClient(t, addr, kgo.ConsumeTopics("persisted"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if got := consume(ctx, t, reader, 80); len(got) != 80 {
		t.Fatalf("after restart read %d records, want 80", len(got))
	}

	// The group resumes after its committed offsets: only the 30 records
	// produced after the commit are delivered.
	group := newClient(t, addr, kgo.ConsumerGroup("g"), kgo.ConsumeTopics("persisted"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := consume(ctx, t, group, 30)
	for _, v := range got {
		var i int
		if _, err := fmt.Sscanf(v, "v-%d", &i); err != nil || i < 50 {
			t.Fatalf("group re-delivered %q, want only v-50..v-79", v)
		}
	}
	// CreateTopics on the restored topic is a no-op.
	if err := b2.CreateTopics(ctx, 3, "persisted"); err != nil {
		t.Fatalf("CreateTopics after restart: %v", err)
	}
}
