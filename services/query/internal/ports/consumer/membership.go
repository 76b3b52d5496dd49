package consumer

import (
	"maps"
	"sync"

	"github.com/segmentio/kafka-go"

	"github.com/propalpes/companias/libs/kafkakit/groupconsumer"
)

// member is what the group membership says about this member: whether it
// is in the group, the partitions it holds in the current generation and
// the offsets it committed; and whether a store or dead-letter write is
// being retried (failing), which Status reports for the partitions held.
// It is safe for concurrent use once init ran.
type member struct {
	mu        sync.Mutex
	joined    bool
	failing   bool
	assigned  map[int]bool
	committed map[int]int64 // next offset this member committed, per partition
}

func (m *member) init() {
	m.assigned, m.committed = map[int]bool{}, map[int]int64{}
}

// snapshot returns copies of the partitions held and the offsets committed,
// and whether a write is being retried.
func (m *member) snapshot() (assigned map[int]bool, committed map[int]int64, failing bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.assigned), maps.Clone(m.committed), m.failing
}

func (m *member) setFailing(v bool) {
	m.mu.Lock()
	m.failing = v
	m.mu.Unlock()
}

// hooks keeps the consumer's membership state and counters in step with its
// group membership (groupconsumer calls them on its goroutines).
func (c *Consumer) hooks() groupconsumer.Hooks {
	m := &c.member
	return groupconsumer.Hooks{
		OnAssigned: func(_ int32, partitions map[int]int64) {
			m.mu.Lock()
			defer m.mu.Unlock()
			m.joined = true
			clear(m.assigned)
			for p := range partitions {
				m.assigned[p] = true
			}
		},
		OnRevoked: func(int32) {
			m.mu.Lock()
			defer m.mu.Unlock()
			clear(m.assigned)
			m.failing = false
		},
		OnJoinError: func(error) {
			m.mu.Lock()
			defer m.mu.Unlock()
			m.joined = false
		},
		OnLeave: func() {
			m.mu.Lock()
			defer m.mu.Unlock()
			m.joined = false
			clear(m.assigned)
		},
		OnCommitted: func(offsets map[int]int64) {
			m.mu.Lock()
			defer m.mu.Unlock()
			for p, o := range offsets {
				m.committed[p] = o
			}
		},
		OnDeadLetter: func(reason string) {
			c.counters.dead.Add(1)
			if c.cfg.OnDeadLetter != nil {
				c.cfg.OnDeadLetter(reason)
			}
		},
		OnDroppedStale: func(n int) { c.counters.dropped.Add(int64(n)) },
		OnRetry: func(_ string, _ int, err error) {
			if err != nil {
				c.counters.retries.Add(1)
			}
			m.setFailing(err != nil)
		},
	}
}

// Joined reports whether the consumer is a member of its group: true from
// its first generation until Run returns, false while joining fails. A
// rebalance does not clear it. A member may hold no partition (more replicas
// than partitions); it still serves reads, so it counts as joined.
func (c *Consumer) Joined() bool {
	c.member.mu.Lock()
	defer c.member.mu.Unlock()
	return c.member.joined
}

// Assignment returns the partitions this member owns in its current
// generation with the group's next offset in each (groupconsumer's
// Assignment), for the lag metric (libs/kafkakit/grouplag). Status, unlike
// it, lists every partition of the topic, for the HTTP status.
func (c *Consumer) Assignment() groupconsumer.Assignment { return c.group.Assignment() }

// partitionReader returns a reader of partition p of the events topic, as
// the group membership builds them.
func (c *Consumer) partitionReader(p int) *kafka.Reader {
	return kafka.NewReader(c.group.ReaderConfig(p))
}
