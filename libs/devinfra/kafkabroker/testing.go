package kafkabroker

import (
	"context"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// HelperTimeout bounds the broker round trips of StartT and ReadT.
const HelperTimeout = 30 * time.Second

// StartT starts a broker with opts for a test, closes it in t.Cleanup, and,
// when topics are given, creates them with the given number of partitions
// (see CreateTopics) within HelperTimeout. With no topics, partitions is not
// used. It calls t.Fatalf when the broker does not start or a topic is not
// created, so it must be called from the test's goroutine.
func StartT(t testing.TB, opts Options, partitions int, topics ...string) *Broker {
	t.Helper()
	b, err := Start(opts)
	if err != nil {
		t.Fatalf("start broker: %v", err)
	}
	t.Cleanup(b.Close)
	if len(topics) == 0 {
		return b
	}
	ctx, cancel := context.WithTimeout(context.Background(), HelperTimeout)
	defer cancel()
	if err := b.CreateTopics(ctx, partitions, topics...); err != nil {
		t.Fatalf("create topics %v: %v", topics, err)
	}
	return b
}

// ReadT reads the first n messages of one partition of topic with a
// kafka-go Reader (no consumer group, no commit) and returns them in offset
// order. It calls t.Fatalf when they are not all there within HelperTimeout,
// so it must be called from the test's goroutine. On a secured broker it
// cannot authenticate: use it on a plaintext one.
func (b *Broker) ReadT(t testing.TB, topic string, partition, n int) []kafka.Message {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{b.Addr()}, Topic: topic, Partition: partition, MaxWait: 100 * time.Millisecond})
	defer func() { _ = r.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), HelperTimeout)
	defer cancel()
	out := make([]kafka.Message, 0, n)
	for len(out) < n {
		m, err := r.FetchMessage(ctx) // a partition reader: no group, nothing to commit
		if err != nil {
			t.Fatalf("read %s/%d: message %d of %d: %v", topic, partition, len(out)+1, n, err)
		}
		out = append(out, m)
	}
	return out
}
