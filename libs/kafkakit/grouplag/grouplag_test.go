package grouplag_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/segmentio/kafka-go"

	"github.com/propalpes/companias/libs/contracts/deadletter"
	"github.com/propalpes/companias/libs/devinfra/kafkabroker"
	"github.com/propalpes/companias/libs/devinfra/runtest"
	"github.com/propalpes/companias/libs/kafkakit"
	"github.com/propalpes/companias/libs/kafkakit/groupconsumer"
	"github.com/propalpes/companias/libs/kafkakit/grouplag"
	"github.com/propalpes/companias/libs/seedwork/retry"
)

const (
	topic      = "lag-events"
	partitions = 6
)

func startBroker(t *testing.T) *kafkabroker.Broker {
	return kafkabroker.StartT(t, kafkabroker.Options{}, partitions, topic, deadletter.Topic(topic))
}

// toPartition produces n records to partition p.
func toPartition(t *testing.T, addr string, p, n int) {
	t.Helper()
	conn, err := kafka.DialLeader(context.Background(), "tcp", addr, topic, p)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{Value: fmt.Appendf(nil, "%d-%d", p, i)}
	}
	if _, err := conn.WriteMessages(msgs...); err != nil {
		t.Fatal(err)
	}
}

// eventually polls cond every 20ms until it returns nil, failing the test
// with its last error after 60s.
func eventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %v", what, err)
		}
		retry.Sleep(context.Background(), 20*time.Millisecond)
	}
}

// scrape gathers c from a registry of its own, as the services' /metrics do.
func scrape(t *testing.T, c prometheus.Collector) map[string]*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

// series is one sample with its labels.
type series struct {
	labels map[string]string
	value  float64
}

func samples(mfs map[string]*dto.MetricFamily, name string) []series {
	var out []series
	for _, m := range mfs[name].GetMetric() {
		s := series{labels: map[string]string{}, value: m.GetGauge().GetValue()}
		for _, l := range m.GetLabel() {
			s.labels[l.GetName()] = l.GetValue()
		}
		out = append(out, s)
	}
	return out
}

// brokerGroupLag is the group's lag computed from the broker alone: per
// partition, the end offset minus the committed offset (minus the log start
// offset when none is committed).
func brokerGroupLag(ctx context.Context, addr, group string) (int64, error) {
	client := &kafka.Client{Addr: kafka.TCP(addr), Transport: &kafka.Transport{}}
	defer client.Transport.(*kafka.Transport).CloseIdleConnections()
	ids := make([]int, partitions)
	var first, last []kafka.OffsetRequest
	for p := range ids {
		ids[p] = p
		first = append(first, kafka.FirstOffsetOf(p))
		last = append(last, kafka.LastOffsetOf(p))
	}
	bounds := map[int][2]int64{}
	for i, reqs := range [][]kafka.OffsetRequest{first, last} {
		res, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
		if err != nil {
			return 0, err
		}
		for _, po := range res.Topics[topic] {
			if po.Error != nil {
				return 0, po.Error
			}
			b := bounds[po.Partition]
			if i == 0 {
				b[0] = po.FirstOffset
			} else {
				b[1] = po.LastOffset
			}
			bounds[po.Partition] = b
		}
	}
	res, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: ids}})
	if err != nil {
		return 0, err
	}
	if res.Error != nil {
		return 0, res.Error
	}
	var lag int64
	for _, po := range res.Topics[topic] {
		if po.Error != nil {
			return 0, po.Error
		}
		b := bounds[po.Partition]
		if po.CommittedOffset < 0 {
			lag += b[1] - b[0]
		} else {
			lag += b[1] - po.CommittedOffset
		}
	}
	return lag, nil
}

func groupConfig(addr, group string) groupconsumer.Config {
	return groupconsumer.Config{
		Brokers: []string{addr}, GroupID: group, Topic: topic,
		HeartbeatInterval: 100 * time.Millisecond, SessionTimeout: 6 * time.Second,
		RebalanceTimeout: 5 * time.Second, JoinGroupBackoff: 200 * time.Millisecond,
		MaxWait: 100 * time.Millisecond, CloseTimeout: 5 * time.Second,
		Backoff: retry.Backoff{Min: 10 * time.Millisecond, Max: 100 * time.Millisecond},
	}
}

// run runs c with h until the test ends.
func run(t *testing.T, c *groupconsumer.Consumer, h groupconsumer.Handler) {
	t.Helper()
	runtest.Start(t, func(ctx context.Context) error { return c.Run(ctx, h) })
}

// TestIntegrationSummedLagIsTheGroupLag runs three members of one group,
// each processing the first records of the partitions it owns and holding
// at offset `processed` of the first partition that reaches it (a member
// handles one batch at a time, so its other partitions wait too), scrapes
// the three collectors and checks that every partition is reported by
// exactly one of them and that their summed lag is the group's lag computed
// from the broker.
func TestIntegrationSummedLagIsTheGroupLag(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an embedded Kafka broker")
	}
	t.Parallel()
	b := startBroker(t)
	const group, processed = "lag-group", 2
	want := int64(0)
	for p := range partitions {
		n := processed + 1 + 3*p // each partition a different lag
		toPartition(t, b.Addr(), p, n)
		want += int64(n - processed)
	}

	// Each member processes (and commits) the first records of a partition
	// and holds at offset `processed` until its generation ends: the lag
	// stays well above zero (at least want) and stops moving.
	hold := groupconsumer.PerMessage(func(ctx context.Context, m kafka.Message, _ groupconsumer.DeadLetterer) error {
		if m.Offset < processed {
			return nil
		}
		<-ctx.Done()
		return ctx.Err()
	})
	cfg := kafkakit.Config{Brokers: []string{b.Addr()}}
	var collectors []*grouplag.Collector
	for range 3 {
		c, err := groupconsumer.New(groupConfig(b.Addr(), group))
		if err != nil {
			t.Fatal(err)
		}
		col, err := grouplag.New(c, cfg, grouplag.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(col.Close)
		collectors = append(collectors, col)
		run(t, c, hold)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	eventually(t, "the summed lag of the three replicas to equal the broker's group lag", func() error {
		brokerLag, err := brokerGroupLag(ctx, b.Addr(), group)
		if err != nil {
			return fmt.Errorf("broker lag: %w", err)
		}
		var sum int64
		seen := map[string]int{}
		owned := 0
		for i, col := range collectors {
			mfs := scrape(t, col)
			o := samples(mfs, grouplag.OwnedPartitionsMetric)
			if len(o) != 1 || o[0].labels["topic"] != topic || o[0].labels["group"] != group {
				return fmt.Errorf("replica %d: owned partitions %v", i, o)
			}
			if o[0].value == 0 {
				return fmt.Errorf("replica %d owns no partition yet", i)
			}
			owned += int(o[0].value)
			lags := samples(mfs, grouplag.LagMetric)
			if len(lags) != int(o[0].value) {
				return fmt.Errorf("replica %d owns %v partitions but reports lag for %d", i, o[0].value, len(lags))
			}
			for _, s := range lags {
				if got := slices.Sorted(maps.Keys(s.labels)); !slices.Equal(got, []string{"group", "partition", "topic"}) {
					t.Fatalf("lag labels %v, want group, partition, topic", got)
				}
				seen[s.labels["partition"]]++
				sum += int64(s.value)
			}
		}
		for p := range partitions {
			if n := seen[strconv.Itoa(p)]; n != 1 {
				return fmt.Errorf("partition %d reported by %d replicas (%v)", p, n, seen)
			}
		}
		if owned != partitions {
			return fmt.Errorf("replicas own %d partitions in all, want %d", owned, partitions)
		}
		if brokerLag < want {
			return fmt.Errorf("broker group lag %d, want at least %d (the members hold at offset %d)", brokerLag, want, processed)
		}
		if sum != brokerLag {
			return fmt.Errorf("summed lag %d, broker group lag %d", sum, brokerLag)
		}
		return nil
	})
}

// fakeSource is a Source with a fixed assignment.
type fakeSource struct {
	mu sync.Mutex
	a  groupconsumer.Assignment
}

func (f *fakeSource) Assignment() groupconsumer.Assignment {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.a
}

func value(t *testing.T, mfs map[string]*dto.MetricFamily, name, partition string) (float64, bool) {
	t.Helper()
	for _, s := range samples(mfs, name) {
		if s.labels["partition"] == partition {
			return s.value, true
		}
	}
	return 0, false
}

func TestIntegrationCollectorReportsOwnedPartitionsOnly(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an embedded Kafka broker")
	}
	t.Parallel()
	b := startBroker(t)
	toPartition(t, b.Addr(), 1, 5)
	toPartition(t, b.Addr(), 4, 7)
	src := &fakeSource{a: groupconsumer.Assignment{Topic: topic, GroupID: "g", Partitions: map[int]int64{}}}
	col, err := grouplag.New(src, kafkakit.Config{Brokers: []string{b.Addr()}}, grouplag.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer col.Close()

	mfs := scrape(t, col)
	if o := samples(mfs, grouplag.OwnedPartitionsMetric); len(o) != 1 || o[0].value != 0 {
		t.Errorf("no assignment: owned partitions %v, want one series of 0", o)
	}
	for _, name := range []string{grouplag.LagMetric, grouplag.CommittedOffsetMetric, grouplag.HighWatermarkMetric} {
		if s := samples(mfs, name); len(s) != 0 {
			t.Errorf("no assignment: %s has %d series, want none", name, len(s))
		}
	}

	src.mu.Lock()
	src.a = groupconsumer.Assignment{Topic: topic, GroupID: "g", Generation: 3, Partitions: map[int]int64{1: 2, 4: -1}}
	src.mu.Unlock()
	mfs = scrape(t, col)
	for _, tt := range []struct {
		name, partition string
		want            float64
	}{
		{grouplag.LagMetric, "1", 3},
		{grouplag.CommittedOffsetMetric, "1", 2},
		{grouplag.HighWatermarkMetric, "1", 5},
		{grouplag.LagMetric, "4", 7}, // none committed: the whole log
		{grouplag.CommittedOffsetMetric, "4", -1},
		{grouplag.HighWatermarkMetric, "4", 7},
	} {
		if got, ok := value(t, mfs, tt.name, tt.partition); !ok || got != tt.want {
			t.Errorf("%s{partition=%s} = %v (present %v), want %v", tt.name, tt.partition, got, ok, tt.want)
		}
	}
	if n := len(samples(mfs, grouplag.LagMetric)); n != 2 {
		t.Errorf("lag series %d, want 2 (owned partitions only)", n)
	}

	// The brokers gone: the last bounds read are reported; a partition never
	// read has its committed offset but no lag.
	b.Close()
	src.mu.Lock()
	src.a.Partitions = map[int]int64{1: 4, 5: 0}
	src.mu.Unlock()
	mfs = scrape(t, col)
	if got, ok := value(t, mfs, grouplag.LagMetric, "1"); !ok || got != 1 {
		t.Errorf("broker down: lag{partition=1} = %v (present %v), want 1 from the last bounds", got, ok)
	}
	if _, ok := value(t, mfs, grouplag.LagMetric, "5"); ok {
		t.Error("broker down: lag{partition=5} reported without bounds ever read")
	}
	if got, ok := value(t, mfs, grouplag.CommittedOffsetMetric, "5"); !ok || got != 0 {
		t.Errorf("broker down: committed{partition=5} = %v (present %v), want 0", got, ok)
	}
}

func TestNewRejectsABadTLSFile(t *testing.T) {
	t.Parallel()
	_, err := grouplag.New(&fakeSource{}, kafkakit.Config{Brokers: []string{"127.0.0.1:1"},
		TLS: kafkakit.TLS{Enabled: true, CAFile: "/nonexistent/ca.pem"}}, grouplag.Options{})
	if err == nil || !strings.Contains(err.Error(), kafkakit.TLSCAFileVar) {
		t.Fatalf("got %v, want an error naming %s", err, kafkakit.TLSCAFileVar)
	}
}

func TestBoundsLag(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		b                 grouplag.Bounds
		committed         int64
		wantLag, wantHigh int64
	}{
		{grouplag.Bounds{First: 0, High: 10}, 4, 6, 10},
		{grouplag.Bounds{First: 3, High: 10}, -1, 7, 10},
		{grouplag.Bounds{First: 0, High: 10}, 12, 0, 12}, // committed after the bounds were read
		{grouplag.Bounds{First: 10, High: 10}, -1, 0, 10},
	} {
		lag, high := tt.b.Lag(tt.committed)
		if lag != tt.wantLag || high != tt.wantHigh {
			t.Errorf("%+v.Lag(%d) = %d, %d; want %d, %d", tt.b, tt.committed, lag, high, tt.wantLag, tt.wantHigh)
		}
	}
}
