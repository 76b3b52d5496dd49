// Package kafkatopic creates the Kafka topics a service uses, at start-up.
//
// Create topics before the first produce or consume: kafka-go's Transport
// caches metadata (MetadataTTL 6 s), so a Writer that looked up a topic
// before it existed keeps failing with Unknown Topic Or Partition until its
// cache expires, and brokers with auto-creation on would make the topic with
// their default partition count instead.
package kafkatopic

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
)

// retainForever is the configuration of every topic the service creates:
// no time limit. The event topic is replayed from the start by view rebuilds
// and new consumers, and dead letters wait for an operator; a broker default
// (seven days) would silently lose them.
var retainForever = []kafka.ConfigEntry{{ConfigName: "retention.ms", ConfigValue: "-1"}}

// maxReplicationFactor caps the replication factor of created topics; a
// smaller cluster gets one replica per broker.
const maxReplicationFactor = 3

// Ensure creates each of topics that does not exist yet with the given number
// of partitions, no retention time limit and a replication factor of
// min(3, brokers in the cluster),
// then waits until the cluster metadata shows every topic with a leader for
// each partition. Existing topics are left as they are, whatever their
// partition count. It is idempotent and safe to run from several processes
// at once. ctx bounds the whole call; without a deadline it gets 30 s.
func Ensure(ctx context.Context, brokers []string, partitions int, topics ...string) error {
	if len(brokers) == 0 {
		return errors.New("ensure topics: no brokers")
	}
	if partitions < 1 {
		return fmt.Errorf("ensure topics: partitions must be ≥ 1, got %d", partitions)
	}
	if len(topics) == 0 {
		return nil
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}

	conn, err := dialAny(ctx, brokers)
	if err != nil {
		return fmt.Errorf("ensure topics: %w", err)
	}
	defer conn.Close()
	if err := create(ctx, conn, partitions, topics); err != nil {
		return fmt.Errorf("ensure topics %v: %w", topics, err)
	}
	if err := awaitMetadata(ctx, conn, topics); err != nil {
		return fmt.Errorf("ensure topics %v: %w", topics, err)
	}
	return nil
}

func dialAny(ctx context.Context, brokers []string) (*kafka.Conn, error) {
	var errs []error
	for _, b := range brokers {
		conn, err := kafka.DialContext(ctx, "tcp", b)
		if err == nil {
			return conn, nil
		}
		errs = append(errs, fmt.Errorf("dial %s: %w", b, err))
	}
	return nil, errors.Join(errs...)
}

// create sends one CreateTopics request to the controller. Topics that exist
// already are not an error (kafka-go ignores TopicAlreadyExists).
func create(ctx context.Context, conn *kafka.Conn, partitions int, topics []string) error {
	deadline, _ := ctx.Deadline()
	if err := conn.SetDeadline(deadline); err != nil {
		return err
	}
	bs, err := conn.Brokers()
	if err != nil {
		return fmt.Errorf("list brokers: %w", err)
	}
	rf := min(maxReplicationFactor, max(1, len(bs)))
	ctrl, err := conn.Controller()
	if err != nil {
		return fmt.Errorf("find controller: %w", err)
	}
	cc, err := kafka.DialContext(ctx, "tcp", net.JoinHostPort(ctrl.Host, strconv.Itoa(ctrl.Port)))
	if err != nil {
		return fmt.Errorf("dial controller: %w", err)
	}
	defer cc.Close()
	if err := cc.SetDeadline(deadline); err != nil {
		return err
	}
	cfgs := make([]kafka.TopicConfig, len(topics))
	for i, t := range topics {
		cfgs[i] = kafka.TopicConfig{Topic: t, NumPartitions: partitions, ReplicationFactor: rf, ConfigEntries: retainForever}
	}
	if err := cc.CreateTopics(cfgs...); err != nil {
		return fmt.Errorf("create: %w", err)
	}
	return nil
}

// awaitMetadata polls the metadata until every topic has partitions, each
// with a leader. Creation is asynchronous on a real cluster.
func awaitMetadata(ctx context.Context, conn *kafka.Conn, topics []string) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		missing, err := missingTopics(conn, topics)
		if err == nil && len(missing) == 0 {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("no leader yet for %v", missing)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("await metadata: %w (last: %w)", ctx.Err(), err)
		case <-tick.C:
		}
	}
}

func missingTopics(conn *kafka.Conn, topics []string) ([]string, error) {
	// The topics exist by now, so the auto-creation flag kafka-go sets on
	// this metadata request cannot create anything.
	parts, err := conn.ReadPartitions(topics...)
	if err != nil {
		return nil, err
	}
	led := map[string]bool{}
	seen := map[string]bool{}
	for _, p := range parts {
		seen[p.Topic] = true
		if p.Leader.Host == "" {
			led[p.Topic] = false
		} else if _, ok := led[p.Topic]; !ok {
			led[p.Topic] = true
		}
	}
	var missing []string
	for _, t := range topics {
		if !seen[t] || !led[t] {
			missing = append(missing, t)
		}
	}
	return missing, nil
}
