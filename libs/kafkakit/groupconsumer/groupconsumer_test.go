package groupconsumer_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/propalpes/companias/libs/contracts/deadletter"
	"github.com/propalpes/companias/libs/devinfra/kafkabroker"
	"github.com/propalpes/companias/libs/devinfra/runtest"
	"github.com/propalpes/companias/libs/kafkakit/groupconsumer"
	"github.com/propalpes/companias/libs/seedwork/retry"
)

const topic = "gc-events"

func startBroker(t *testing.T, partitions int) *kafkabroker.Broker {
	return kafkabroker.StartT(t, kafkabroker.Options{}, partitions, topic, deadletter.Topic(topic))
}

func produce(t *testing.T, addr string, msgs ...kafka.Message) {
	t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(addr), Topic: topic, Balancer: &kafka.Hash{},
		RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond, Transport: &kafka.Transport{}}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
}

// toPartition produces values to one partition, in order.
func toPartition(t *testing.T, addr string, p int, values ...string) {
	t.Helper()
	conn, err := kafka.DialLeader(context.Background(), "tcp", addr, topic, p)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var msgs []kafka.Message
	for _, v := range values {
		msgs = append(msgs, kafka.Message{Value: []byte(v)})
	}
	if _, err := conn.WriteMessages(msgs...); err != nil {
		t.Fatal(err)
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		retry.Sleep(context.Background(), 10*time.Millisecond)
	}
}

func config(addr, group string) groupconsumer.Config {
	return groupconsumer.Config{
		Brokers: []string{addr}, GroupID: group, Topic: topic,
		HeartbeatInterval: 100 * time.Millisecond, SessionTimeout: 6 * time.Second,
		RebalanceTimeout: 5 * time.Second, JoinGroupBackoff: 200 * time.Millisecond,
		MaxWait: 100 * time.Millisecond, CloseTimeout: 5 * time.Second,
		Backoff: retry.Backoff{Min: 10 * time.Millisecond, Max: 100 * time.Millisecond},
	}
}

// run runs c with h until the returned stop is called; stop waits for Run.
func run(t *testing.T, c *groupconsumer.Consumer, h groupconsumer.Handler) (stop func()) {
	t.Helper()
	return runtest.Start(t, func(ctx context.Context) error { return c.Run(ctx, h) })
}

func committed(t *testing.T, addr, group string, partitions int) map[int]int64 {
	t.Helper()
	ids := make([]int, partitions)
	for i := range ids {
		ids[i] = i
	}
	c := &kafka.Client{Addr: kafka.TCP(addr), Transport: &kafka.Transport{}}
	res, err := c.OffsetFetch(context.Background(), &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: ids}})
	if err != nil || res.Error != nil {
		t.Fatalf("offset fetch: %v %v", err, res.Error)
	}
	out := map[int]int64{}
	for _, p := range res.Topics[topic] {
		out[p.Partition] = p.CommittedOffset
	}
	return out
}

func committedSum(t *testing.T, addr, group string, partitions int) int64 {
	var sum int64
	for _, o := range committed(t, addr, group, partitions) {
		sum += max(o, 0)
	}
	return sum
}

func header(m kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// seen records the values handled, and the partitions of each member.
type seen struct {
	mu     sync.Mutex
	values map[string]int
}

func (s *seen) add(v string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.values == nil {
		s.values = map[string]int{}
	}
	s.values[v]++
}

func (s *seen) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.values)
}

type assignment struct {
	mu    sync.Mutex
	parts []int
}

func (a *assignment) hooks() groupconsumer.Hooks {
	return groupconsumer.Hooks{OnAssigned: func(_ int32, ps map[int]int64) {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.parts = a.parts[:0]
		for p := range ps {
			a.parts = append(a.parts, p)
		}
		slices.Sort(a.parts)
	}}
}

func (a *assignment) get() []int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.parts)
}

// Two members of a group split the partitions between them, every message
// is handled and every offset committed.
func TestIntegrationTwoMembersSplitPartitions(t *testing.T) {
	t.Parallel()
	const partitions = 4
	b := startBroker(t, partitions)
	var s seen
	h := groupconsumer.PerMessage(func(_ context.Context, m kafka.Message, _ groupconsumer.DeadLetterer) error {
		s.add(string(m.Value))
		return nil
	})
	var asA, asB assignment
	cfgA, cfgB := config(b.Addr(), "split"), config(b.Addr(), "split")
	cfgA.Hooks, cfgB.Hooks = asA.hooks(), asB.hooks()
	a, err := groupconsumer.New(cfgA)
	if err != nil {
		t.Fatal(err)
	}
	bb, err := groupconsumer.New(cfgB)
	if err != nil {
		t.Fatal(err)
	}
	run(t, a, h)
	eventually(t, "A to hold every partition", func() bool { return len(asA.get()) == partitions })
	run(t, bb, h)
	eventually(t, "the partitions split between A and B", func() bool {
		pa, pb := asA.get(), asB.get()
		all := append(pa, pb...)
		slices.Sort(all)
		return len(pa) > 0 && len(pb) > 0 && slices.Equal(slices.Compact(all), []int{0, 1, 2, 3}) && len(all) == partitions
	})
	var msgs []kafka.Message
	for i := range 40 {
		msgs = append(msgs, kafka.Message{Key: []byte(fmt.Sprint("k", i)), Value: []byte(fmt.Sprint("v", i))})
	}
	produce(t, b.Addr(), msgs...)
	eventually(t, "40 messages handled", func() bool { return s.count() == 40 })
	eventually(t, "40 offsets committed", func() bool { return committedSum(t, b.Addr(), "split", partitions) == 40 })
}

// A member whose generation ends while it handles a message does not commit
// that message under the old generation: the next generation handles it
// again, and the group's offsets end at the end of the log.
func TestIntegrationRebalanceDoesNotCommitOldGeneration(t *testing.T) {
	t.Parallel()
	const partitions = 2
	b := startBroker(t, partitions)
	toPartition(t, b.Addr(), 0, "a0", "gate", "a2")
	toPartition(t, b.Addr(), 1, "b0", "b1")

	type commit struct {
		gen       int32
		partition int
		offset    int64
	}
	var mu sync.Mutex
	var gen int32
	var commits []commit
	var handledGate int
	entered := make(chan struct{})
	release := make(chan struct{})
	cfg := config(b.Addr(), "rebalance")
	cfg.Hooks = groupconsumer.Hooks{
		OnAssigned: func(g int32, _ map[int]int64) { mu.Lock(); gen = g; mu.Unlock() },
		OnCommitted: func(offs map[int]int64) {
			mu.Lock()
			defer mu.Unlock()
			for p, o := range offs {
				commits = append(commits, commit{gen, p, o})
			}
		},
	}
	var s seen
	var firstGen int32
	a, err := groupconsumer.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	run(t, a, groupconsumer.PerMessage(func(ctx context.Context, m kafka.Message, _ groupconsumer.DeadLetterer) error {
		s.add(string(m.Value))
		if string(m.Value) == "gate" {
			mu.Lock()
			handledGate++
			first := handledGate == 1
			if first {
				firstGen = gen
			}
			mu.Unlock()
			if first {
				close(entered)
				<-release // returns nil after its generation ended
			}
		}
		return nil
	}))
	<-entered
	// A second member joins: A's generation ends while "gate" is handled.
	var sB seen
	cfgB := config(b.Addr(), "rebalance")
	var asB assignment
	cfgB.Hooks = asB.hooks()
	bm, err := groupconsumer.New(cfgB)
	if err != nil {
		t.Fatal(err)
	}
	run(t, bm, groupconsumer.PerMessage(func(_ context.Context, m kafka.Message, _ groupconsumer.DeadLetterer) error {
		sB.add(string(m.Value))
		return nil
	}))
	eventually(t, "B to join", func() bool { return len(asB.get()) > 0 })
	close(release)
	eventually(t, "every offset committed", func() bool {
		c := committed(t, b.Addr(), "rebalance", partitions)
		return c[0] == 3 && c[1] == 2
	})
	mu.Lock()
	defer mu.Unlock()
	for _, c := range commits {
		if c.gen == firstGen && c.partition == 0 && c.offset >= 2 {
			t.Errorf("the old generation %d committed partition 0 offset %d after its end", c.gen, c.offset)
		}
	}
	s.mu.Lock()
	sB.mu.Lock()
	gateRuns := s.values["gate"] + sB.values["gate"]
	s.mu.Unlock()
	sB.mu.Unlock()
	if gateRuns < 2 {
		t.Errorf("gate handled %d times, want again after the rebalance", gateRuns)
	}
}

// A panic while handling one message of a batch dead-letters exactly that
// message with reason panic; the others are handled and committed, and the
// consumer goes on with the next messages.
func TestIntegrationPanicDeadLettersTheMessageAndGoesOn(t *testing.T) {
	t.Parallel()
	b := startBroker(t, 1)
	toPartition(t, b.Addr(), 0, "a", "b", "boom", "c", "d")
	cfg := config(b.Addr(), "panic")
	cfg.BatchSize, cfg.Linger = 100, 50*time.Millisecond
	var reasons []string
	var mu sync.Mutex
	cfg.Hooks.OnDeadLetter = func(r string) { mu.Lock(); reasons = append(reasons, r); mu.Unlock() }
	c, err := groupconsumer.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var s seen
	run(t, c, groupconsumer.HandlerFunc(func(_ context.Context, msgs []kafka.Message, _ groupconsumer.DeadLetterer) error {
		for _, m := range msgs {
			if string(m.Value) == "boom" {
				panic("boom")
			}
		}
		for _, m := range msgs {
			s.add(string(m.Value))
		}
		return nil
	}))
	eventually(t, "a, b, c, d handled", func() bool { return s.count() == 4 })
	d := b.ReadT(t, deadletter.Topic(topic), 0, 1)
	if string(d[0].Value) != "boom" || header(d[0], deadletter.HeaderReason) != deadletter.ReasonPanic ||
		header(d[0], deadletter.HeaderOffset) != "2" {
		t.Errorf("dead letter %q reason %q offset %q, want boom, panic, 2", d[0].Value,
			header(d[0], deadletter.HeaderReason), header(d[0], deadletter.HeaderOffset))
	}
	eventually(t, "5 offsets committed", func() bool { return committedSum(t, b.Addr(), "panic", 1) == 5 })
	toPartition(t, b.Addr(), 0, "e")
	eventually(t, "the next message handled", func() bool { return s.count() == 5 })
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(reasons, []string{deadletter.ReasonPanic}) {
		t.Errorf("dead-letter reasons %v, want [panic]", reasons)
	}
}

// A handler error retries the same batch; nothing is committed meanwhile.
func TestIntegrationHandlerErrorRetriesTheBatch(t *testing.T) {
	t.Parallel()
	b := startBroker(t, 1)
	toPartition(t, b.Addr(), 0, "a")
	cfg := config(b.Addr(), "retry")
	var retries int
	var mu sync.Mutex
	cfg.Hooks.OnRetry = func(what string, _ int, err error) {
		if err != nil {
			mu.Lock()
			retries++
			mu.Unlock()
		}
	}
	c, err := groupconsumer.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var calls int
	var s seen
	run(t, c, groupconsumer.PerMessage(func(_ context.Context, m kafka.Message, _ groupconsumer.DeadLetterer) error {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		if n <= 3 {
			return errors.New("transient")
		}
		s.add(string(m.Value))
		return nil
	}))
	eventually(t, "a handled", func() bool { return s.count() == 1 })
	eventually(t, "a committed", func() bool { return committedSum(t, b.Addr(), "retry", 1) == 1 })
	mu.Lock()
	defer mu.Unlock()
	if retries != 3 {
		t.Errorf("%d retries reported, want 3", retries)
	}
}

// Run returns within CloseTimeout while its JoinGroup is in flight: the
// coordinator answers it only when the rebalance ends, which waits for a
// member that does not rejoin, up to the rebalance timeout.
func TestIntegrationStopsWithinCloseTimeoutDuringAJoin(t *testing.T) {
	t.Parallel()
	const rebalanceTimeout = time.Minute
	b := startBroker(t, 2)
	ctx := context.Background()
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
	released := make(chan struct{})
	gen.Start(func(context.Context) { <-released })
	t.Cleanup(func() {
		close(released)
		_ = other.Close()
	})

	cfg := config(b.Addr(), "stop")
	cfg.SessionTimeout, cfg.RebalanceTimeout, cfg.CloseTimeout = rebalanceTimeout, rebalanceTimeout, time.Second
	var left sync.WaitGroup
	left.Add(1)
	cfg.Hooks.OnLeave = left.Done
	c, err := groupconsumer.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() {
		done <- c.Run(runCtx, groupconsumer.PerMessage(func(context.Context, kafka.Message, groupconsumer.DeadLetterer) error { return nil }))
	}()
	client := &kafka.Client{Addr: kafka.TCP(b.Addr()), Transport: &kafka.Transport{}}
	eventually(t, "the group to be rebalancing", func() bool {
		res, err := client.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{"stop"}})
		return err == nil && len(res.Groups) == 1 && res.Groups[0].GroupState == "PreparingRebalance"
	})
	began := time.Now()
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
		if d := time.Since(began); d > 10*time.Second {
			t.Errorf("Run took %s to return, CloseTimeout 1s", d)
		}
	case <-time.After(rebalanceTimeout / 2):
		t.Fatalf("Run still waits for the rebalance %s after its context ended (CloseTimeout 1s)", rebalanceTimeout/2)
	}
	left.Wait()
}

func TestNewValidatesConfig(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]groupconsumer.Config{
		"no brokers":  {GroupID: "g", Topic: "t"},
		"no group":    {Brokers: []string{"x:1"}, Topic: "t"},
		"no topic":    {Brokers: []string{"x:1"}, GroupID: "g"},
		"dlq = topic": {Brokers: []string{"x:1"}, GroupID: "g", Topic: "t", DLQTopic: "t"},
	} {
		if _, err := groupconsumer.New(cfg); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
	c, err := groupconsumer.New(groupconsumer.Config{Brokers: []string{"x:1"}, GroupID: "g", Topic: "t"})
	if err != nil {
		t.Fatal(err)
	}
	got := c.Config()
	if got.DLQTopic != deadletter.Topic("t") || got.BatchSize != 1 || got.MaxFetchBytes != groupconsumer.DefaultMaxFetchBytes {
		t.Errorf("defaults: %+v", got)
	}
	rc := c.ReaderConfig(3)
	if rc.Partition != 3 || rc.MinBytes != 1 || rc.MaxBytes != groupconsumer.DefaultMaxFetchBytes || rc.GroupID != "" {
		t.Errorf("reader config %+v", rc)
	}
}

// TestAssignmentFollowsTheGeneration checks what Assignment reports: nothing
// before Run, the owned partitions with the group's next offset (-1 for
// none committed) during a generation, advanced by each commit, and
// nothing once Run returned.
func TestAssignmentFollowsTheGeneration(t *testing.T) {
	t.Parallel()
	b := startBroker(t, 2)
	toPartition(t, b.Addr(), 0, "a", "b", "c")
	c, err := groupconsumer.New(config(b.Addr(), "assignment"))
	if err != nil {
		t.Fatal(err)
	}
	if a := c.Assignment(); a.Topic != topic || a.GroupID != "assignment" || a.Generation != 0 || len(a.Partitions) != 0 || a.Partitions == nil {
		t.Fatalf("before Run: %+v, want topic and group, no generation, an empty map", a)
	}
	var handled seen
	stop := run(t, c, groupconsumer.PerMessage(func(_ context.Context, m kafka.Message, _ groupconsumer.DeadLetterer) error {
		handled.add(string(m.Value))
		return nil
	}))
	eventually(t, "the member to own both partitions, partition 0 committed to 3", func() bool {
		a := c.Assignment()
		return a.Generation > 0 && len(a.Partitions) == 2 && a.Partitions[0] == 3 && a.Partitions[1] == -1
	})
	a := c.Assignment()
	a.Partitions[0] = 99 // a copy: the member's state is unchanged
	if got := c.Assignment().Partitions[0]; got != 3 {
		t.Errorf("Assignment returned the member's map: partition 0 = %d after the caller changed its copy", got)
	}
	stop()
	if a := c.Assignment(); a.Generation != 0 || len(a.Partitions) != 0 {
		t.Errorf("after Run: %+v, want no generation and no partitions", a)
	}
}
