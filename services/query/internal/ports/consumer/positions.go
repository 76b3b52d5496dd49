package consumer

import (
	"maps"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
)

// positions is what this member processed: per partition, the offset after
// the last message it processed and the newest event time it applied; and
// the channel closed after each batch. It is safe for concurrent use once
// init ran.
type positions struct {
	mu        sync.Mutex
	processed map[int]int64 // next offset after what this member processed, per partition
	lastEvent map[int]time.Time
	changed   chan struct{} // closed and replaced after each batch
}

func (p *positions) init() {
	p.processed, p.lastEvent, p.changed = map[int]int64{}, map[int]time.Time{}, make(chan struct{})
}

// batchDone records that batch was processed, with the newest event time of
// each of its partitions, and wakes those waiting on Changed.
func (p *positions) batchDone(batch []kafka.Message, lastEvent map[int]time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range batch {
		p.processed[m.Partition] = m.Offset + 1
	}
	for part, t := range lastEvent {
		if t.After(p.lastEvent[part]) {
			p.lastEvent[part] = t
		}
	}
	close(p.changed)
	p.changed = make(chan struct{})
}

// lastEvents returns a copy of the newest event time applied per partition.
func (p *positions) lastEvents() map[int]time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.lastEvent)
}

// Changed returns a channel that is closed the next time the consumer
// finishes a batch (its views written, before the commit).
func (c *Consumer) Changed() <-chan struct{} {
	c.positions.mu.Lock()
	defer c.positions.mu.Unlock()
	return c.positions.changed
}

// Positions returns, per partition this member has processed, the offset
// after the last message it processed (written or dead-lettered or skipped).
func (c *Consumer) Positions() map[int]int64 {
	c.positions.mu.Lock()
	defer c.positions.mu.Unlock()
	return maps.Clone(c.positions.processed)
}
