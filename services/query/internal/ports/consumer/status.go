package consumer

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/propalpes/companias/libs/kafkakit/grouplag"
	"github.com/propalpes/companias/libs/seedwork/retry"
	"github.com/propalpes/companias/services/query/internal/view"
)

// topicLogs is what the brokers last said about the topic, read every
// StatusInterval by refreshLoop: its partitions, their log bounds and the
// group's committed offsets. It is safe for concurrent use once init ran.
type topicLogs struct {
	mu         sync.Mutex
	partitions []int                   // of the topic, from metadata
	groupOff   map[int]int64           // the group's committed offsets
	bounds     map[int]grouplag.Bounds // log start and high watermark
}

func (l *topicLogs) init() {
	l.groupOff, l.bounds = map[int]int64{}, map[int]grouplag.Bounds{}
}

// refreshLoop reads the partitions, high watermarks and the group's
// committed offsets every StatusInterval until ctx is done. kafka-go's own
// lag figures are wrong in group mode (#508, #1163), so lag is computed from
// these.
func (c *Consumer) refreshLoop(ctx context.Context) {
	for {
		if err := c.refresh(ctx); err != nil && ctx.Err() == nil {
			c.log.Debug("refresh projection status", "err", err)
		}
		if !retry.Sleep(ctx, c.cfg.StatusInterval) {
			return
		}
	}
}

func (c *Consumer) refresh(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	client := &kafka.Client{Addr: kafka.TCP(c.cfg.Brokers...), Transport: c.transport}
	offs, err := Watermarks(ctx, client, c.cfg.Topic)
	if err != nil {
		return err
	}
	parts := slices.Sorted(maps.Keys(offs))
	committed, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{
		GroupID: c.cfg.GroupID, Topics: map[string][]int{c.cfg.Topic: parts},
	})
	if err != nil {
		return fmt.Errorf("fetch committed offsets: %w", err)
	}
	if committed.Error != nil {
		return fmt.Errorf("fetch committed offsets: %w", committed.Error)
	}
	l := &c.logs
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partitions = parts
	maps.Copy(l.bounds, offs)
	for _, po := range committed.Topics[c.cfg.Topic] {
		if po.Error == nil {
			l.groupOff[po.Partition] = po.CommittedOffset
		}
	}
	return nil
}

// Watermarks returns the log bounds of every partition of topic: its
// partitions from the metadata, their bounds from grouplag.ReadBounds.
func Watermarks(ctx context.Context, client *kafka.Client, topic string) (map[int]grouplag.Bounds, error) {
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, fmt.Errorf("read metadata of %s: %w", topic, err)
	}
	var parts []int
	for _, t := range md.Topics {
		if t.Name != topic {
			continue
		}
		if t.Error != nil {
			return nil, fmt.Errorf("read metadata of %s: %w", topic, t.Error)
		}
		for _, p := range t.Partitions {
			parts = append(parts, p.ID)
		}
	}
	out, err := grouplag.ReadBounds(ctx, client, topic, parts)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Status returns the progress of every partition of the topic, from the
// last refresh (every StatusInterval) merged with this member's own
// commits. Committed is the group's next offset (-1 if none committed); Lag
// is HighWatermark − Committed (from the log start when nothing is
// committed); State is Config.State, or view.StateFailing while a store or
// dead-letter write is being retried, for the partitions this member holds,
// and view.StateIdle for the others (held by another replica, or none yet).
// LastEventTime is the newest ce_time this member applied in the partition.
func (c *Consumer) Status() []view.PartitionStatus {
	assigned, committedHere, failing := c.member.snapshot()
	lastEvent := c.positions.lastEvents()
	l := &c.logs
	l.mu.Lock()
	defer l.mu.Unlock()
	parts := l.partitions
	if len(parts) == 0 {
		parts = slices.Sorted(maps.Keys(assigned))
	}
	out := make([]view.PartitionStatus, 0, len(parts))
	for _, p := range parts {
		committed := int64(-1)
		if o, ok := l.groupOff[p]; ok && o >= 0 {
			committed = o
		}
		if assigned[p] {
			if o, ok := committedHere[p]; ok && o > committed {
				committed = o
			}
		}
		// The bounds are refreshed every StatusInterval while commits are
		// seen at once: Lag raises the high watermark to the committed offset.
		lag, hw := l.bounds[p].Lag(committed)
		state := view.StateIdle
		if assigned[p] {
			state = c.cfg.State
			if failing {
				state = view.StateFailing
			}
		}
		out = append(out, view.PartitionStatus{
			Partition: p, Committed: committed, HighWatermark: hw, Lag: lag,
			LastEventTime: lastEvent[p], State: state,
		})
	}
	return out
}
