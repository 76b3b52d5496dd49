// Package grouplag is the consumer-lag collector of every consumer-group
// member of the workspace: the reader's projection (events topic) and the
// writer's command intake (commands topic) register it on their admin
// registry in the same way.
//
// At each scrape it reports, for the partitions this replica owns in its
// current generation only (groupconsumer.Consumer.Assignment):
//
//	companias_consumer_lag{topic,group,partition}              high watermark − committed offset
//	companias_consumer_committed_offset{topic,group,partition} the group's next offset (-1: none committed)
//	companias_consumer_high_watermark{topic,group,partition}   offset of the partition's next record
//	companias_consumer_owned_partitions{topic,group}           partitions owned in the current generation
//
// Because every partition is owned by one member of a group, the sum of
// companias_consumer_lag over the replicas of a group is the group's lag
// (outside the moment of a rebalance, when a moving partition is reported by
// none). The topic and group labels are the consumer's configuration, never
// record content.
//
// The committed offsets are the member's own (what its generation started
// from, advanced by each commit), so they are current; the log bounds are
// read from the brokers during the scrape (one ListOffsets request for the
// high watermarks and one for the log start offsets of the owned
// partitions, bounded by Options.Timeout). When they cannot be read, the
// last bounds read are used, and a partition never read has no lag or high
// watermark series until they can be.
package grouplag

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/propalpes/companias/libs/kafkakit"
	"github.com/propalpes/companias/libs/kafkakit/groupconsumer"
)

// The metric and label names, shared by both services so that the
// Kubernetes autoscalers, alerts and dashboards select them by these names.
const (
	LagMetric             = "companias_consumer_lag"
	CommittedOffsetMetric = "companias_consumer_committed_offset"
	HighWatermarkMetric   = "companias_consumer_high_watermark"
	OwnedPartitionsMetric = "companias_consumer_owned_partitions"

	TopicLabel     = "topic"
	GroupLabel     = "group"
	PartitionLabel = "partition"
)

// DefaultTimeout bounds the reading of the log bounds during one scrape.
const DefaultTimeout = 2 * time.Second

// Source is a consumer-group member; *groupconsumer.Consumer is one, and
// so are the services' consumers that wrap it. Assignment must not block.
type Source interface {
	Assignment() groupconsumer.Assignment
}

// Options tune a Collector. Zero fields take the defaults noted.
type Options struct {
	// Timeout bounds the reading of the log bounds in one scrape (default
	// DefaultTimeout).
	Timeout time.Duration
	// Logger receives a Debug line when the bounds cannot be read (default:
	// discard); the consumer itself reports an unreachable cluster.
	Logger *slog.Logger
}

// Collector is a prometheus.Collector of one group member's lag. Build it
// with New; it is safe for concurrent scrapes. Close it when done.
type Collector struct {
	src       Source
	client    *kafka.Client
	transport *kafka.Transport
	timeout   time.Duration
	log       *slog.Logger

	lag, committed, hwm, owned *prometheus.Desc

	mu   sync.Mutex
	last map[string]map[int]Bounds // topic → partition → last bounds read
}

// New returns a Collector of src that reads the log bounds from the cluster
// of cfg, over a kafka.Transport of its own (TLS, SASL and client id of
// cfg; the principal needs to describe the topic, which reading it grants).
// It does not connect.
func New(src Source, cfg kafkakit.Config, opts Options) (*Collector, error) {
	tr, err := cfg.Transport()
	if err != nil {
		return nil, fmt.Errorf("grouplag: %w", err)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	part := []string{TopicLabel, GroupLabel, PartitionLabel}
	return &Collector{
		src: src, client: &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Transport: tr}, transport: tr, timeout: opts.Timeout, log: opts.Logger,
		lag: prometheus.NewDesc(LagMetric,
			"Records of the partition not yet committed by the consumer group (high watermark − committed offset; from the log start when none is committed), reported only by the replica that owns the partition in the current generation: sum over replicas for the group's lag.", part, nil),
		committed: prometheus.NewDesc(CommittedOffsetMetric,
			"Next offset the consumer group reads in the partition (-1 if none committed), reported only by the replica that owns the partition.", part, nil),
		hwm: prometheus.NewDesc(HighWatermarkMetric,
			"High watermark of the partition (the offset of its next record), reported only by the replica that owns the partition.", part, nil),
		owned: prometheus.NewDesc(OwnedPartitionsMetric,
			"Partitions of the topic this replica owns in the consumer group's current generation (0 while joining or rebalancing).", []string{TopicLabel, GroupLabel}, nil),
		last: map[string]map[int]Bounds{},
	}, nil
}

// Close releases the connections of the Collector's transport. Scrapes
// after Close reconnect.
func (c *Collector) Close() {
	if c.transport != nil {
		c.transport.CloseIdleConnections()
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.lag
	ch <- c.committed
	ch <- c.hwm
	ch <- c.owned
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	a := c.src.Assignment()
	ch <- prometheus.MustNewConstMetric(c.owned, prometheus.GaugeValue, float64(len(a.Partitions)), a.Topic, a.GroupID)
	if len(a.Partitions) == 0 {
		return
	}
	parts := slices.Sorted(maps.Keys(a.Partitions))
	bounds := c.bounds(a.Topic, parts)
	for _, p := range parts {
		committed := a.Partitions[p]
		labels := []string{a.Topic, a.GroupID, strconv.Itoa(p)}
		ch <- prometheus.MustNewConstMetric(c.committed, prometheus.GaugeValue, float64(committed), labels...)
		b, ok := bounds[p]
		if !ok {
			continue
		}
		lag, hw := b.Lag(committed)
		ch <- prometheus.MustNewConstMetric(c.hwm, prometheus.GaugeValue, float64(hw), labels...)
		ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, float64(lag), labels...)
	}
}

// bounds reads the bounds of parts of topic, falling back to (and
// refreshing) the last ones read.
func (c *Collector) bounds(topic string, parts []int) map[int]Bounds {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	got, err := ReadBounds(ctx, c.client, topic, parts)
	c.mu.Lock()
	defer c.mu.Unlock()
	last := c.last[topic]
	if last == nil {
		last = map[int]Bounds{}
		c.last[topic] = last
	}
	if err != nil {
		c.log.Debug("read log bounds for the lag metric; reporting the last ones read", "topic", topic, "err", err)
	}
	maps.Copy(last, got)
	return maps.Clone(last)
}

// Bounds are the offsets delimiting one partition's log.
type Bounds struct {
	First int64 // log start offset
	High  int64 // high watermark: the offset the next record will get
}

// Lag returns the lag of a group whose next offset in the partition is
// committed (-1: none committed, so the whole log is pending), and the high
// watermark it was measured against: at least committed, since a commit
// proves the log reaches it even if the bounds were read before it.
func (b Bounds) Lag(committed int64) (lag, high int64) {
	high = max(b.High, committed)
	if committed < 0 {
		return max(high-b.First, 0), high
	}
	return high - committed, high
}

// ReadBounds returns the bounds of partitions parts of topic, with one
// ListOffsets request per bound (a request must not repeat a partition). On
// error it returns what it read and the error.
func ReadBounds(ctx context.Context, client *kafka.Client, topic string, parts []int) (map[int]Bounds, error) {
	out := make(map[int]Bounds, len(parts))
	if len(parts) == 0 {
		return out, nil
	}
	first := map[int]int64{}
	for _, wantFirst := range []bool{true, false} {
		reqs := make([]kafka.OffsetRequest, len(parts))
		for i, p := range parts {
			if wantFirst {
				reqs[i] = kafka.FirstOffsetOf(p)
			} else {
				reqs[i] = kafka.LastOffsetOf(p)
			}
		}
		res, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
		if err != nil {
			return out, fmt.Errorf("list offsets of %s: %w", topic, err)
		}
		var errs error
		for _, po := range res.Topics[topic] {
			switch {
			case po.Error != nil:
				errs = fmt.Errorf("list offsets of %s/%d: %w", topic, po.Partition, po.Error)
			case wantFirst:
				first[po.Partition] = po.FirstOffset
			default:
				if f, ok := first[po.Partition]; ok {
					out[po.Partition] = Bounds{First: f, High: po.LastOffset}
				}
			}
		}
		if errs != nil {
			return out, errs
		}
	}
	return out, nil
}
