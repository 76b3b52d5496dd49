package consumer_test

import (
	"context"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/propalpes/companias/services/query/internal/ports/consumer"
	"github.com/propalpes/companias/services/query/internal/view"
)

// TestIntegrationConsumerStopsDuringARebalance stops a consumer whose
// JoinGroup is in flight: the coordinator answers it only when the
// rebalance ends, which waits for another member that does not rejoin, up
// to the rebalance timeout. kafka-go's ConsumerGroup.Close waits for that
// answer; Run must not, beyond CloseTimeout (a process stopped by SIGTERM
// during a rebalance otherwise overruns its shutdown timeout).
func TestIntegrationConsumerStopsDuringARebalance(t *testing.T) {
	t.Parallel()
	const rebalanceTimeout = time.Minute
	b := startKafka(t, 2)
	ctx := ctxT(t)

	// A member that joins, then does not rejoin when the group rebalances:
	// its generation's function does not return until released.
	other, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID: "stop", Brokers: []string{b.Addr()}, Topics: []string{topic},
		HeartbeatInterval: 100 * time.Millisecond, SessionTimeout: rebalanceTimeout, RebalanceTimeout: rebalanceTimeout,
	})
	if err != nil {
		t.Fatal(err)
	}
	gen, err := other.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	gen.Start(func(context.Context) { <-release })
	t.Cleanup(func() {
		close(release)
		_ = other.Close()
	})

	c, err := consumer.New(consumer.Config{
		Brokers: []string{b.Addr()}, Topic: topic, GroupID: "stop",
		HeartbeatInterval: 100 * time.Millisecond, SessionTimeout: rebalanceTimeout, RebalanceTimeout: rebalanceTimeout,
		CloseTimeout: time.Second,
	}, consumer.WriterFunc(func(context.Context, []view.Run) ([]view.VersionGap, error) { return nil, nil }))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- c.Run(runCtx) }()

	// The consumer's JoinGroup started a rebalance that waits for "other".
	client := &kafka.Client{Addr: kafka.TCP(b.Addr())}
	eventually(t, 30*time.Second, "the group to be rebalancing", func() bool {
		res, err := client.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{"stop"}})
		return err == nil && len(res.Groups) == 1 && res.Groups[0].GroupState == "PreparingRebalance"
	})
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	case <-time.After(rebalanceTimeout / 2):
		t.Fatalf("Run still waits for the rebalance %s after its context ended (CloseTimeout 1s)", rebalanceTimeout/2)
	}
	if c.Joined() {
		t.Error("Joined after Run returned")
	}
}
