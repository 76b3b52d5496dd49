// Package topics creates the Kafka topics a program uses, at start-up,
// through the connections kafkakit builds (TLS, SASL).
//
// Create topics before the first produce or consume: kafka-go's Transport
// caches metadata (MetadataTTL 6 s), so a Writer that looked up a topic
// before it existed keeps failing with Unknown Topic Or Partition until its
// cache expires; a group reader joined to a missing topic may sit on an
// empty assignment; and brokers with auto-creation on would make the topic
// with their default partition count and retention instead.
package topics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/propalpes/companias/libs/kafkakit"
)

// MaxAutoReplicationFactor caps the replication factor of a Topic that
// leaves it zero: such a topic gets min(3, brokers in the cluster).
const MaxAutoReplicationFactor = 3

// DefaultTimeout bounds Ensure when its context has no deadline.
const DefaultTimeout = 30 * time.Second

// pollInterval is how often Ensure re-reads metadata while it waits for new
// topics to become visible.
const pollInterval = 50 * time.Millisecond

// Topic describes a topic to create when it is missing.
type Topic struct {
	// Name is the topic name; required.
	Name string
	// Partitions is the partition count; at least 1.
	Partitions int
	// ReplicationFactor is the number of replicas; 0 means
	// min(MaxAutoReplicationFactor, brokers in the cluster).
	ReplicationFactor int
	// Retention is the topic's retention.ms: how long a record is kept.
	// 0 keeps records forever (retention.ms=-1): the event topic is replayed
	// from its start by view rebuilds and new consumers, which a broker
	// default (seven days) would silently break. Dead-letter topics hold
	// personal data and get a finite retention.
	Retention time.Duration
}

// RetentionMS is the retention.ms value Ensure gives t: "-1" when
// t.Retention is 0, else the duration in milliseconds.
func (t Topic) RetentionMS() string {
	if t.Retention <= 0 {
		return "-1"
	}
	return strconv.FormatInt(t.Retention.Milliseconds(), 10)
}

// Ensure creates each topic that does not exist yet, through the cluster
// controller, with its partitions, replication factor and retention, and
// waits until the metadata shows every created topic with a leader for each
// partition. Topics that already exist are left unchanged, whatever their
// settings; Ensure is idempotent and safe to run from several processes at
// once. It connects with cfg's Dialer (TLS, SASL), trying cfg.Brokers in
// order until one answers, and never names a topic in a metadata request
// (a broker with auto.create.topics.enable would create it). ctx bounds the
// whole call; without a deadline it gets DefaultTimeout.
func Ensure(ctx context.Context, cfg kafkakit.Config, topics ...Topic) error {
	if len(cfg.Brokers) == 0 {
		return errors.New("ensure topics: no brokers")
	}
	for _, t := range topics {
		if t.Name == "" || t.Partitions < 1 || t.ReplicationFactor < 0 || t.Retention < 0 {
			return fmt.Errorf("ensure topics: invalid topic %+v", t)
		}
	}
	if len(topics) == 0 {
		return nil
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	d, err := cfg.Dialer()
	if err != nil {
		return fmt.Errorf("ensure topics: %w", err)
	}
	var errs []error
	for _, b := range cfg.Brokers {
		err := ensureVia(ctx, d, b, topics)
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("broker %s: %w", b, err))
		if ctx.Err() != nil {
			break
		}
	}
	return fmt.Errorf("ensure topics: %w", errors.Join(errs...))
}

// dial opens a connection whose every call fails once ctx is done; stop
// releases the watch.
func dial(ctx context.Context, d *kafka.Dialer, addr string) (conn *kafka.Conn, stop func() bool, err error) {
	conn, err = d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	return conn, context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) }), nil
}

func ensureVia(ctx context.Context, d *kafka.Dialer, broker string, topics []Topic) error {
	conn, stop, err := dial(ctx, d, broker)
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer conn.Close()
	defer stop()

	known, err := partitionsByTopic(conn)
	if err != nil {
		return err
	}
	var missing []Topic
	for _, t := range topics {
		if len(known[t.Name]) == 0 {
			missing = append(missing, t)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	auto := 0
	for _, t := range missing {
		if t.ReplicationFactor == 0 {
			bs, err := conn.Brokers()
			if err != nil {
				return fmt.Errorf("list brokers: %w", err)
			}
			auto = min(MaxAutoReplicationFactor, max(1, len(bs)))
			break
		}
	}
	ctrl, err := conn.Controller()
	if err != nil {
		return fmt.Errorf("find controller: %w", err)
	}
	cc, stopCC, err := dial(ctx, d, net.JoinHostPort(ctrl.Host, strconv.Itoa(ctrl.Port)))
	if err != nil {
		return fmt.Errorf("dial controller: %w", err)
	}
	defer cc.Close()
	defer stopCC()

	cfgs := make([]kafka.TopicConfig, 0, len(missing))
	for _, t := range missing {
		rf := t.ReplicationFactor
		if rf == 0 {
			rf = auto
		}
		cfgs = append(cfgs, kafka.TopicConfig{Topic: t.Name, NumPartitions: t.Partitions, ReplicationFactor: rf,
			ConfigEntries: []kafka.ConfigEntry{{ConfigName: "retention.ms", ConfigValue: t.RetentionMS()}}})
	}
	// TopicAlreadyExists (another process won the race) is not an error:
	// kafka-go's CreateTopics skips it.
	if err := cc.CreateTopics(cfgs...); err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	return waitVisible(ctx, conn, missing)
}

// partitionsByTopic reads the metadata of every topic. It never names
// topics in the request: a metadata request for named topics lets a broker
// with auto.create.topics.enable create a missing one with its defaults.
func partitionsByTopic(conn *kafka.Conn) (map[string][]kafka.Partition, error) {
	parts, err := conn.ReadPartitions()
	if err != nil {
		return nil, fmt.Errorf("read metadata: %w", err)
	}
	m := map[string][]kafka.Partition{}
	for _, p := range parts {
		m[p.Topic] = append(m[p.Topic], p)
	}
	return m, nil
}

// waitVisible polls metadata until every topic shows its partitions, each
// with a leader, or ctx is done; creation is asynchronous on a real
// cluster. Metadata errors while the topics settle are retried.
func waitVisible(ctx context.Context, conn *kafka.Conn, topics []Topic) error {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		pending, err := notReady(conn, topics)
		if err == nil && len(pending) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = fmt.Errorf("topics %v not visible yet", pending)
			}
			return fmt.Errorf("wait for topics: %w (%w)", ctx.Err(), err)
		case <-t.C:
		}
	}
}

func notReady(conn *kafka.Conn, topics []Topic) ([]string, error) {
	known, err := partitionsByTopic(conn)
	if err != nil {
		return nil, err
	}
	var pending []string
	for _, t := range topics {
		led := 0
		for _, p := range known[t.Name] {
			if p.Leader.Host != "" {
				led++
			}
		}
		if led == 0 || led < len(known[t.Name]) {
			pending = append(pending, t.Name)
		}
	}
	return pending, nil
}
