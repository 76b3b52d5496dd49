package topics_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/propalpes/companias/libs/devinfra/kafkabroker"
	"github.com/propalpes/companias/libs/kafkakit"
	"github.com/propalpes/companias/libs/kafkakit/topics"
)

func plain(brokers ...string) kafkakit.Config { return kafkakit.Config{Brokers: brokers} }

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

// retentionMS returns the retention.ms of topic.
func retentionMS(t *testing.T, addr, topic string) string {
	t.Helper()
	tr, err := plain().Transport()
	if err != nil {
		t.Fatal(err)
	}
	defer tr.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(addr), Transport: tr}
	res, err := client.DescribeConfigs(t.Context(), &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: topic, ConfigNames: []string{"retention.ms"},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res.Resources {
		for _, e := range r.ConfigEntries {
			if e.ConfigName == "retention.ms" {
				return e.ConfigValue
			}
		}
	}
	return ""
}

// TestIntegrationEnsureCreatesMissingTopics checks that Ensure creates the
// missing topics with their partitions and leaves an existing one alone,
// skips an unreachable first broker, is idempotent, and that a writer on a
// fresh transport can produce to a new topic at once.
func TestIntegrationEnsureCreatesMissingTopics(t *testing.T) {
	t.Parallel()
	b := kafkabroker.StartT(t, kafkabroker.Options{}, 0)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := b.CreateTopics(ctx, 2, "existing"); err != nil {
		t.Fatal(err)
	}
	want := []topics.Topic{
		{Name: "events", Partitions: 6, ReplicationFactor: 1},
		{Name: "events.dlq", Partitions: 3}, // replication factor min(3, brokers)
		{Name: "existing", Partitions: 6, ReplicationFactor: 1},
	}
	if err := topics.Ensure(ctx, plain(closedPort(t), b.Addr()), want...); err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	got := partitions(t, b.Addr())
	for name, n := range map[string]int{"events": 6, "events.dlq": 3, "existing": 2} {
		if got[name] != n {
			t.Errorf("topic %s has %d partitions, want %d (all: %v)", name, got[name], n, got)
		}
	}
	if err := topics.Ensure(ctx, plain(b.Addr()), want...); err != nil {
		t.Fatalf("second Ensure: %v", err)
	}
	tr, err := plain().Transport()
	if err != nil {
		t.Fatal(err)
	}
	defer tr.CloseIdleConnections()
	w := &kafka.Writer{Addr: kafka.TCP(b.Addr()), Topic: "events", BatchTimeout: time.Millisecond, Transport: tr}
	defer w.Close()
	if err := w.WriteMessages(ctx, kafka.Message{Key: []byte("k"), Value: []byte("v")}); err != nil {
		t.Fatalf("write to the new topic: %v", err)
	}
}

// TestIntegrationEnsureSetsRetention checks retention.ms: -1 (forever) for a
// topic without Retention, the duration in milliseconds for one with it
// (the dead-letter topics).
func TestIntegrationEnsureSetsRetention(t *testing.T) {
	t.Parallel()
	b := kafkabroker.StartT(t, kafkabroker.Options{}, 0)
	err := topics.Ensure(t.Context(), plain(b.Addr()),
		topics.Topic{Name: "eventos", Partitions: 3},
		topics.Topic{Name: "eventos.dlq", Partitions: 3, Retention: 168 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if got := retentionMS(t, b.Addr(), "eventos"); got != "-1" {
		t.Errorf("eventos retention.ms = %q, want -1", got)
	}
	if got, want := retentionMS(t, b.Addr(), "eventos.dlq"), "604800000"; got != want {
		t.Errorf("eventos.dlq retention.ms = %q, want %s", got, want)
	}
}

// TestIntegrationEnsureSecured creates a topic over TLS and SCRAM as the
// secured broker's admin principal.
func TestIntegrationEnsureSecured(t *testing.T) {
	t.Parallel()
	b := kafkabroker.StartT(t, kafkabroker.Options{Addr: "127.0.0.1:0", Security: &kafkabroker.Security{Dir: t.TempDir()}}, 0)
	cfg, err := b.ClientConfig(kafkabroker.AdminPrincipal)
	if err != nil {
		t.Fatal(err)
	}
	if err := topics.Ensure(t.Context(), cfg, topics.Topic{Name: "secured", Partitions: 2}); err != nil {
		t.Fatalf("Ensure over TLS + SCRAM: %v", err)
	}
}

func TestIntegrationEnsureConcurrent(t *testing.T) {
	t.Parallel()
	b := kafkabroker.StartT(t, kafkabroker.Options{}, 0)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			errs <- topics.Ensure(ctx, plain(b.Addr()), topics.Topic{Name: "race", Partitions: 4})
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
	ok := topics.Topic{Name: "t", Partitions: 1}
	tests := []struct {
		name   string
		cfg    kafkakit.Config
		topics []topics.Topic
		want   string
	}{
		{"no brokers", plain(), []topics.Topic{ok}, "no brokers"},
		{"no name", plain("127.0.0.1:1"), []topics.Topic{{Partitions: 1}}, "invalid topic"},
		{"no partitions", plain("127.0.0.1:1"), []topics.Topic{{Name: "t"}}, "invalid topic"},
		{"negative replication", plain("127.0.0.1:1"), []topics.Topic{{Name: "t", Partitions: 1, ReplicationFactor: -1}}, "invalid topic"},
		{"negative retention", plain("127.0.0.1:1"), []topics.Topic{{Name: "t", Partitions: 1, Retention: -time.Hour}}, "invalid topic"},
		{"bad SASL", kafkakit.Config{Brokers: []string{"127.0.0.1:1"}, SASL: kafkakit.SASL{Mechanism: "NOPE"}}, []topics.Topic{ok}, "KAFKA_SASL_MECHANISM"},
		{"unreachable", plain(closedPort(t), closedPort(t)), []topics.Topic{ok}, "dial"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			err := topics.Ensure(ctx, tt.cfg, tt.topics...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Ensure error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestIntegrationEnsureStopsWithContext(t *testing.T) {
	t.Parallel()
	b := kafkabroker.StartT(t, kafkabroker.Options{}, 0)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := topics.Ensure(ctx, plain(b.Addr()), topics.Topic{Name: "never", Partitions: 1}); err == nil {
		t.Fatal("Ensure with a cancelled context = nil, want an error")
	}
	if _, ok := partitions(t, b.Addr())["never"]; ok {
		t.Error("topic created despite the cancelled context")
	}
}

func TestRetentionMS(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{{0, "-1"}, {time.Hour, "3600000"}, {168 * time.Hour, "604800000"}} {
		if got := (topics.Topic{Retention: tc.d}).RetentionMS(); got != tc.want {
			t.Errorf("RetentionMS(%v) = %q, want %q", tc.d, got, tc.want)
		}
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
