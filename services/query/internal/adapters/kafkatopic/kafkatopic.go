// Package kafkatopic creates the Kafka topics the query service reads and
// writes, before any reader or writer touches them.
//
// Creating topics up front matters with kafka-go: its default transport
// caches topic metadata (for 6 s), so a writer that saw a topic missing keeps
// failing with "Unknown Topic Or Partition" for a while even after someone
// else creates it, and a group reader joined to a missing topic may sit on an
// empty assignment.
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

// Topic describes a topic to create when it is missing.
type Topic struct {
	Name              string
	Partitions        int
	ReplicationFactor int
}

// retainForever is the configuration of every topic the service creates:
// no time limit, since view rebuilds replay the event topic from its start
// and dead letters wait for an operator; a broker default (seven days)
// would silently lose them.
var retainForever = []kafka.ConfigEntry{{ConfigName: "retention.ms", ConfigValue: "-1"}}

// pollInterval is how often Ensure re-reads metadata while it waits for new
// topics to become visible.
const pollInterval = 50 * time.Millisecond

// Ensure creates each topic that does not exist yet, through the cluster
// controller, and waits until every topic is visible in the metadata of the
// broker it dialled. Topics that already exist are left unchanged, whatever
// their partition count; Ensure is idempotent and safe to run from several
// replicas at once. It tries the brokers in order until one answers, and
// gives up when ctx is done.
func Ensure(ctx context.Context, brokers []string, topics ...Topic) error {
	if len(brokers) == 0 {
		return errors.New("ensure topics: no brokers")
	}
	for _, t := range topics {
		if t.Name == "" || t.Partitions < 1 || t.ReplicationFactor < 1 {
			return fmt.Errorf("ensure topics: invalid topic %+v", t)
		}
	}
	var errs []error
	for _, b := range brokers {
		err := ensureVia(ctx, b, topics)
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

func ensureVia(ctx context.Context, broker string, topics []Topic) error {
	var d kafka.Dialer
	conn, err := d.DialContext(ctx, "tcp", broker)
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()

	missing, err := missingTopics(conn, topics)
	if err != nil {
		return err
	}
	if len(missing) == 0 {
		return nil
	}
	ctrl, err := conn.Controller()
	if err != nil {
		return fmt.Errorf("find controller: %w", err)
	}
	cc, err := d.DialContext(ctx, "tcp", net.JoinHostPort(ctrl.Host, strconv.Itoa(ctrl.Port)))
	if err != nil {
		return fmt.Errorf("dial controller: %w", err)
	}
	defer cc.Close()
	stopCC := context.AfterFunc(ctx, func() { _ = cc.SetDeadline(time.Now()) })
	defer stopCC()

	cfgs := make([]kafka.TopicConfig, 0, len(missing))
	for _, t := range missing {
		cfgs = append(cfgs, kafka.TopicConfig{Topic: t.Name, NumPartitions: t.Partitions, ReplicationFactor: t.ReplicationFactor,
			ConfigEntries: retainForever})
	}
	// TopicAlreadyExists (another replica won the race) is not an error:
	// kafka-go's CreateTopics skips it.
	if err := cc.CreateTopics(cfgs...); err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	return waitVisible(ctx, conn, missing)
}

// partitionsByTopic reads the metadata of every topic. It never names
// topics in the request: a metadata request for named topics lets a broker
// with auto.create.topics.enable create a missing one with its default
// partition count, which is what Ensure must avoid.
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

// missingTopics returns the topics the broker does not know.
func missingTopics(conn *kafka.Conn, topics []Topic) ([]Topic, error) {
	known, err := partitionsByTopic(conn)
	if err != nil {
		return nil, err
	}
	var missing []Topic
	for _, t := range topics {
		if len(known[t.Name]) == 0 {
			missing = append(missing, t)
		}
	}
	return missing, nil
}

// waitVisible polls metadata until every topic shows its partitions with a
// leader, or ctx is done. Metadata errors while the topics settle are
// retried.
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
