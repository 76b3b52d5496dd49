package kafkatopic_test

import (
	"context"
	"net"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/propalpes/companias/libs/devinfra/kafkabroker"
	"github.com/propalpes/companias/services/query/internal/adapters/kafkatopic"
)

func startBroker(t *testing.T) *kafkabroker.Broker {
	t.Helper()
	b, err := kafkabroker.Start(kafkabroker.Options{})
	if err != nil {
		t.Fatalf("start broker: %v", err)
	}
	t.Cleanup(b.Close)
	return b
}

// partitions returns the partition count of each topic the broker knows.
func partitions(t *testing.T, addr string) map[string]int {
	t.Helper()
	conn, err := kafka.DialContext(t.Context(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	parts, err := conn.ReadPartitions()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, p := range parts {
		out[p.Topic]++
	}
	return out
}

func TestIntegrationEnsureCreatesMissingTopics(t *testing.T) {
	t.Parallel()
	b := startBroker(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := b.CreateTopics(ctx, 2, "existing"); err != nil {
		t.Fatal(err)
	}
	topics := []kafkatopic.Topic{
		{Name: "events", Partitions: 6, ReplicationFactor: 1},
		{Name: "events.dlq", Partitions: 3, ReplicationFactor: 1},
		{Name: "existing", Partitions: 6, ReplicationFactor: 1},
	}
	// An unreachable first broker is skipped.
	dead := closedPort(t)
	if err := kafkatopic.Ensure(ctx, []string{dead, b.Addr()}, topics...); err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	got := partitions(t, b.Addr())
	want := map[string]int{"events": 6, "events.dlq": 3, "existing": 2}
	for name, n := range want {
		if got[name] != n {
			t.Errorf("topic %s has %d partitions, want %d (all: %v)", name, got[name], n, got)
		}
	}
	// Idempotent, and a writer on a fresh transport can produce at once.
	if err := kafkatopic.Ensure(ctx, []string{b.Addr()}, topics...); err != nil {
		t.Fatalf("second Ensure: %v", err)
	}
	w := &kafka.Writer{Addr: kafka.TCP(b.Addr()), Topic: "events", BatchTimeout: time.Millisecond, Transport: &kafka.Transport{}}
	defer w.Close()
	if err := w.WriteMessages(ctx, kafka.Message{Key: []byte("k"), Value: []byte("v")}); err != nil {
		t.Fatalf("write to the new topic: %v", err)
	}
}

func TestIntegrationEnsureConcurrent(t *testing.T) {
	t.Parallel()
	b := startBroker(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			errs <- kafkatopic.Ensure(ctx, []string{b.Addr()}, kafkatopic.Topic{Name: "race", Partitions: 4, ReplicationFactor: 1})
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Errorf("concurrent Ensure: %v", err)
		}
	}
	if n := partitions(t, b.Addr())["race"]; n != 4 {
		t.Errorf("race has %d partitions, want 4", n)
	}
}

func TestEnsureErrors(t *testing.T) {
	t.Parallel()
	ok := kafkatopic.Topic{Name: "t", Partitions: 1, ReplicationFactor: 1}
	tests := []struct {
		name    string
		brokers []string
		topics  []kafkatopic.Topic
		want    string
	}{
		{"no brokers", nil, []kafkatopic.Topic{ok}, "no brokers"},
		{"no name", []string{"127.0.0.1:1"}, []kafkatopic.Topic{{Partitions: 1, ReplicationFactor: 1}}, "invalid topic"},
		{"no partitions", []string{"127.0.0.1:1"}, []kafkatopic.Topic{{Name: "t", ReplicationFactor: 1}}, "invalid topic"},
		{"unreachable", []string{closedPort(t), closedPort(t)}, []kafkatopic.Topic{ok}, "dial"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			err := kafkatopic.Ensure(ctx, tt.brokers, tt.topics...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Ensure error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestIntegrationEnsureStopsWithContext(t *testing.T) {
	t.Parallel()
	b := startBroker(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := kafkatopic.Ensure(ctx, []string{b.Addr()}, kafkatopic.Topic{Name: "never", Partitions: 1, ReplicationFactor: 1})
	if err == nil {
		t.Fatal("Ensure with a cancelled context = nil, want an error")
	}
	if _, ok := partitions(t, b.Addr())["never"]; ok {
		names := []string{}
		for n := range partitions(t, b.Addr()) {
			names = append(names, n)
		}
		sort.Strings(names)
		t.Errorf("topic created despite the cancelled context: %v", names)
	}
}

// closedPort returns a loopback address nobody listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
