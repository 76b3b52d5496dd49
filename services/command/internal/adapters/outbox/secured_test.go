package outbox_test

import (
	"context"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/propalpes/companias/libs/devinfra/kafkabroker"
	"github.com/propalpes/companias/libs/kafkakit"
	"github.com/propalpes/companias/services/command/internal/adapters/outbox"
)

// endOffset returns the sum of the high watermarks of topic's partitions,
// read as cfg's principal.
func endOffset(ctx context.Context, t *testing.T, cfg kafkakit.Config, topic string, partitions int) int64 {
	t.Helper()
	tr, err := cfg.Transport()
	if err != nil {
		t.Fatal(err)
	}
	defer tr.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Transport: tr, Timeout: 10 * time.Second}
	reqs := make([]kafka.OffsetRequest, partitions)
	for p := range partitions {
		reqs[p] = kafka.LastOffsetOf(p)
	}
	res, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
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

// serviceTopics are the topics and consumer groups that the secured
// broker's service principals are granted.
var serviceTopics = kafkabroker.ServiceTopics{
	Events: "eventos", EventsDLQ: "eventos.dlq", EventsGroup: "proyeccion",
	Commands: "comandos", CommandsDLQ: "comandos.dlq", CommandsGroup: "intake", ExternalGroup: "external",
}

// startSecuredBroker starts a TLS + SCRAM-SHA-512 broker with the service
// principals and their ACLs, closed at cleanup, and creates
// serviceTopics.Events with the given partitions as the admin principal.
func startSecuredBroker(t testing.TB, partitions int) *kafkabroker.Broker {
	t.Helper()
	return kafkabroker.StartT(t, kafkabroker.Options{Security: &kafkabroker.Security{
		Dir: t.TempDir(), Principals: kafkabroker.ServicePrincipals(serviceTopics),
	}}, partitions, serviceTopics.Events)
}

// TestIntegrationWriterPublishesToSecuredBroker builds the relay's Writer
// from the writer principal's kafkakit configuration (TLS with the broker's
// CA, SCRAM-SHA-512) and checks that it publishes to a secured broker with
// ACLs while its fence is open, and that the fence, which sits below TLS,
// still stops it once closed, on connections already authenticated. (A
// write refused by a closed fence makes kafka-go fail fast for a moment
// after the fence reopens; the relay's retry covers it, and the fencing
// tests cover the closed fence.)
func TestIntegrationWriterPublishesToSecuredBroker(t *testing.T) {
	t.Parallel()
	const partitions = 3
	b := startSecuredBroker(t, partitions)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	writerCfg, err := b.ClientConfig(kafkabroker.WriterPrincipal)
	if err != nil {
		t.Fatal(err)
	}
	if !writerCfg.TLS.Enabled || writerCfg.SASL.Mechanism != kafkakit.MechanismSCRAMSHA512 {
		t.Fatalf("writer principal's config is not TLS + SCRAM: %+v", writerCfg)
	}
	adminCfg, err := b.ClientConfig(kafkabroker.AdminPrincipal)
	if err != nil {
		t.Fatal(err)
	}

	fence := outbox.NewFence()
	w, err := outbox.NewWriter(outbox.WriterConfig{Kafka: writerCfg, Fence: fence, MaxAttempts: 1, WriteTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("NewWriter: %v", err)
	}
	t.Cleanup(func() { _ = w.Close() })
	msg := func(key string) kafka.Message {
		return kafka.Message{Topic: serviceTopics.Events, Key: []byte(key), Value: []byte(`{"id":"` + key + `"}`)}
	}

	outbox.OpenFence(fence, time.Now().Add(time.Minute))
	if err := w.WriteMessages(ctx, msg("a"), msg("b"), msg("c")); err != nil {
		t.Fatalf("WriteMessages over TLS + SCRAM with the fence open: %v", err)
	}
	if n := endOffset(ctx, t, adminCfg, serviceTopics.Events, partitions); n != 3 {
		t.Fatalf("the event topic holds %d records, want 3", n)
	}
	outbox.CloseFence(fence)
	if err := w.WriteMessages(ctx, msg("after")); err == nil {
		t.Fatal("WriteMessages on fenced TLS connections succeeded after the fence closed")
	}
	if n := endOffset(ctx, t, adminCfg, serviceTopics.Events, partitions); n != 3 {
		t.Errorf("the event topic holds %d records after the fence closed, want 3", n)
	}
}
