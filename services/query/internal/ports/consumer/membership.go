package consumer

import (
	"github.com/propalpes/companias/libs/kafkakit/groupconsumer"
)

// hooks keeps the consumer's status and counters in step with its group
// membership (groupconsumer calls them on its goroutines).
func (c *Consumer) hooks() groupconsumer.Hooks {
	return groupconsumer.Hooks{
		OnAssigned: func(_ int32, partitions map[int]int64) {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.joined = true
			clear(c.assigned)
			for p := range partitions {
				c.assigned[p] = true
			}
		},
		OnRevoked: func(int32) {
			c.mu.Lock()
			defer c.mu.Unlock()
			clear(c.assigned)
			c.failing = false
		},
		OnJoinError: func(error) {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.joined = false
		},
		OnLeave: func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.joined = false
			clear(c.assigned)
		},
		OnCommitted: func(offsets map[int]int64) {
			c.mu.Lock()
			defer c.mu.Unlock()
			for p, o := range offsets {
				c.committed[p] = o
			}
		},
		OnDeadLetter: func(reason string) {
			c.dead.Add(1)
			if c.cfg.OnDeadLetter != nil {
				c.cfg.OnDeadLetter(reason)
			}
		},
		OnDroppedStale: func(n int) { c.dropped.Add(int64(n)) },
		OnRetry: func(_ string, _ int, err error) {
			if err != nil {
				c.retries.Add(1)
			}
			c.setFailing(err != nil)
		},
	}
}
