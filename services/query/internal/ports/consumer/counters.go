package consumer

import "sync/atomic"

// Counters are running totals since the consumer was built.
type Counters struct {
	// Applied counts events written to the store (duplicates included).
	Applied int64
	// SkippedUnknown counts events of an unknown type of the known major
	// version (a newer minor version of the contract), skipped.
	SkippedUnknown int64
	// DeadLettered counts poison messages copied to the dead-letter topic
	// (or, with DisableDLQ, skipped).
	DeadLettered int64
	// DroppedStale counts fetched messages dropped because this member had
	// already processed their offset.
	DroppedStale int64
	// Batches counts store writes that succeeded.
	Batches int64
	// Retries counts failed store or dead-letter writes that were retried.
	Retries int64
	// WriteTimeouts counts store writes cancelled after WriteTimeout (each
	// is also counted in Retries).
	WriteTimeouts int64
	// VersionGaps counts the version gaps reported (Config.OnVersionGap).
	VersionGaps int64
}

// counters holds the running totals behind Counters; each is updated on
// its own, without the consumer's locks.
type counters struct {
	applied, skipped, dead, dropped, batches, retries, timeouts, gaps atomic.Int64
}

// Counters returns the running totals.
func (c *Consumer) Counters() Counters {
	n := &c.counters
	return Counters{
		Applied: n.applied.Load(), SkippedUnknown: n.skipped.Load(), DeadLettered: n.dead.Load(),
		DroppedStale: n.dropped.Load(), Batches: n.batches.Load(), Retries: n.retries.Load(),
		WriteTimeouts: n.timeouts.Load(), VersionGaps: n.gaps.Load(),
	}
}
