package kafkabroker

import (
	"context"
	"testing"
	"time"
)

// StartTimeout bounds the topic creation done by StartT.
const StartTimeout = 30 * time.Second

// StartT starts a broker with opts for a test, closes it in t.Cleanup, and,
// when topics are given, creates them with the given number of partitions
// (see CreateTopics) within StartTimeout. With no topics, partitions is not
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
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	if err := b.CreateTopics(ctx, partitions, topics...); err != nil {
		t.Fatalf("create topics %v: %v", topics, err)
	}
	return b
}
