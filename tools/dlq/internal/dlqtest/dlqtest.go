// Package dlqtest holds test helpers for the dlq tool: an in-process Kafka
// broker (libs/devinfra/kafkabroker) with pre-created topics, a producer of
// dead-letter messages shaped like the services' ones, and counts of a
// topic's messages and of the broker's consumer groups. Only tests import it.
package dlqtest

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/propalpes/companias/libs/contracts/deadletter"
	"github.com/propalpes/companias/libs/devinfra/kafkabroker"
	"github.com/propalpes/companias/libs/kafkakit"
	"github.com/segmentio/kafka-go"
)

// Partitions is the partition count of every topic StartBroker creates.
const Partitions = 3

// StartBroker starts a broker with topics of Partitions partitions each
// (see kafkabroker.StartT: closed at cleanup, t.Fatalf on failure) and
// returns its bootstrap address.
func StartBroker(t testing.TB, topics ...string) string {
	t.Helper()
	return kafkabroker.StartT(t, kafkabroker.Options{}, Partitions, topics...).Addr()
}

// Dead describes one dead-lettered message to produce.
type Dead struct {
	Key, Value    string
	Reason        string
	Error         string
	OriginalTopic string // empty: no dlq_original_topic header
	Time          time.Time
	Headers       []kafka.Header // the original (non-dlq) headers
}

// Message returns d as the consumers write it to a DLQ: the original
// headers followed by the deadletter headers.
func (d Dead) Message() kafka.Message {
	h := append([]kafka.Header(nil), d.Headers...)
	add := func(k, v string) { h = append(h, kafka.Header{Key: k, Value: []byte(v)}) }
	add(deadletter.HeaderReason, d.Reason)
	add(deadletter.HeaderError, d.Error)
	if d.OriginalTopic != "" {
		add(deadletter.HeaderTopic, d.OriginalTopic)
	}
	add(deadletter.HeaderPartition, "1")
	add(deadletter.HeaderOffset, strconv.Itoa(len(d.Key)+40))
	add(deadletter.HeaderTime, d.Time.UTC().Format(time.RFC3339Nano))
	add(deadletter.HeaderConsumer, "test-group")
	return kafka.Message{Key: []byte(d.Key), Value: []byte(d.Value), Headers: h}
}

// Produce writes msgs to topic and waits for acknowledgement.
func Produce(t testing.TB, addr, topic string, msgs ...kafka.Message) {
	t.Helper()
	tr := transport(t)
	defer tr.CloseIdleConnections()
	w := &kafka.Writer{
		Addr: kafka.TCP(addr), Topic: topic, Balancer: &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll, BatchTimeout: 5 * time.Millisecond, Transport: tr,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("close writer: %v", err)
	}
}

// ProduceDead writes each Dead to the dlq topic.
func ProduceDead(t testing.TB, addr, dlq string, ds ...Dead) {
	t.Helper()
	msgs := make([]kafka.Message, len(ds))
	for i, d := range ds {
		msgs[i] = d.Message()
	}
	Produce(t, addr, dlq, msgs...)
}

// EndOffsets returns the sum of the high watermarks of topic's partitions
// (the number of messages ever written to a fresh topic).
func EndOffsets(t testing.TB, addr, topic string) int64 {
	t.Helper()
	tr := transport(t)
	defer tr.CloseIdleConnections()
	c := &kafka.Client{Addr: kafka.TCP(addr), Transport: tr, Timeout: 10 * time.Second}
	reqs := make([]kafka.OffsetRequest, Partitions)
	for p := range Partitions {
		reqs[p] = kafka.LastOffsetOf(p)
	}
	res, err := c.ListOffsets(context.Background(), &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		t.Fatalf("list offsets of %s: %v", topic, err)
	}
	var n int64
	for _, po := range res.Topics[topic] {
		if po.Error != nil {
			t.Fatalf("list offsets of %s/%d: %v", topic, po.Partition, po.Error)
		}
		n += po.LastOffset
	}
	return n
}

// Groups returns the consumer groups the broker knows.
func Groups(t testing.TB, addr string) []string {
	t.Helper()
	tr := transport(t)
	defer tr.CloseIdleConnections()
	c := &kafka.Client{Addr: kafka.TCP(addr), Transport: tr, Timeout: 10 * time.Second}
	res, err := c.ListGroups(context.Background(), &kafka.ListGroupsRequest{})
	if err != nil {
		t.Fatalf("list groups: %v", err)
	}
	if res.Error != nil {
		t.Fatalf("list groups: %v", res.Error)
	}
	var out []string
	for _, g := range res.Groups {
		out = append(out, g.GroupID)
	}
	return out
}

// transport returns a plaintext Transport of its own for the embedded
// broker, built by kafkakit like every Kafka client of the workspace.
func transport(t testing.TB) *kafka.Transport {
	t.Helper()
	tr, err := (kafkakit.Config{}).Transport()
	if err != nil {
		t.Fatalf("kafka transport: %v", err)
	}
	return tr
}
