package kafkatopic_test

import (
	"context"
	"net"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/propalpes/companias/libs/devinfra/kafkabroker"
	"github.com/propalpes/companias/services/command/internal/adapters/kafkatopic"
)

func startBroker(t *testing.T) string {
	t.Helper()
	b, err := kafkabroker.Start(kafkabroker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b.Addr()
}

func partitionsOf(t *testing.T, addr, topic string) []int {
	t.Helper()
	conn, err := kafka.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ps, err := conn.ReadPartitions(topic)
	if err != nil {
		t.Fatalf("read partitions of %s: %v", topic, err)
	}
	var ids []int
	for _, p := range ps {
		ids = append(ids, p.ID)
	}
	sort.Ints(ids)
	return ids
}

func TestIntegrationEnsureCreatesTopicsIdempotently(t *testing.T) {
	t.Parallel()
	addr := startBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := kafkatopic.Ensure(ctx, []string{addr}, 6, "a", "a.dlq"); err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	for _, topic := range []string{"a", "a.dlq"} {
		if got := partitionsOf(t, addr, topic); len(got) != 6 {
			t.Errorf("%s has partitions %v, want 6", topic, got)
		}
	}
	// Again, concurrently, with one existing and one new topic, and an
	// unreachable first broker.
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for range 3 {
		wg.Go(func() { errs <- kafkatopic.Ensure(ctx, []string{"127.0.0.1:1", addr}, 6, "a", "b") })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Ensure again: %v", err)
		}
	}
	if got := partitionsOf(t, addr, "b"); len(got) != 6 {
		t.Errorf("b has partitions %v, want 6", got)
	}
	// A Writer on a fresh transport can write right away.
	w := &kafka.Writer{Addr: kafka.TCP(addr), Transport: &kafka.Transport{}, BatchTimeout: time.Millisecond}
	defer w.Close()
	if err := w.WriteMessages(ctx, kafka.Message{Topic: "b", Value: []byte("x")}); err != nil {
		t.Errorf("write to the new topic: %v", err)
	}
}

func TestEnsureRejectsBadArguments(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	if err := kafkatopic.Ensure(ctx, nil, 6, "a"); err == nil {
		t.Error("no brokers: nil error")
	}
	if err := kafkatopic.Ensure(ctx, []string{"127.0.0.1:1"}, 0, "a"); err == nil {
		t.Error("0 partitions: nil error")
	}
	if err := kafkatopic.Ensure(ctx, []string{"127.0.0.1:1"}, 6); err != nil {
		t.Errorf("no topics: %v, want nil (nothing to do)", err)
	}
}

func TestEnsureFailsWhenNoBrokerAnswers(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := kafkatopic.Ensure(ctx, []string{addr}, 6, "a"); err == nil {
		t.Error("Ensure against a closed port = nil error")
	}
}

func TestIntegrationEnsureCreatesTopicsWithoutRetentionLimit(t *testing.T) {
	t.Parallel()
	addr := startBroker(t)
	ctx := t.Context()
	if err := kafkatopic.Ensure(ctx, []string{addr}, 3, "eventos"); err != nil {
		t.Fatal(err)
	}
	client := &kafka.Client{Addr: kafka.TCP(addr)}
	res, err := client.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: "eventos", ConfigNames: []string{"retention.ms"},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	got := ""
	for _, r := range res.Resources {
		for _, e := range r.ConfigEntries {
			if e.ConfigName == "retention.ms" {
				got = e.ConfigValue
			}
		}
	}
	if got != "-1" {
		t.Errorf("retention.ms = %q, want -1", got)
	}
}
