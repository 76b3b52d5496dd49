// Package retry is the one backoff policy of the workspace: capped
// exponential delays with optional jitter, and a context-aware wait. Every
// loop that retries a failed operation (a publish, a dead-letter write, a
// commit, a dependency at start-up) takes its delays from a Backoff instead
// of doubling a duration by hand.
package retry

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff is a capped exponential backoff policy. The zero value is not
// useful: set Min and Max (Max < Min is treated as Max = Min). A Backoff is
// a value; it holds no state and is safe for concurrent use.
type Backoff struct {
	// Min is the delay before the first retry (attempt 0).
	Min time.Duration
	// Max caps every delay.
	Max time.Duration
	// Jitter is the fraction of each delay, in [0, 1], that is taken off at
	// random, so that clients retrying the same outage spread out. 0: none.
	Jitter float64
}

// Delay returns the wait before retry number attempt (0-based):
// Min·2^attempt capped at Max, less up to Jitter of it at random. It never
// overflows and is never negative.
func (b Backoff) Delay(attempt int) time.Duration {
	hi := max(b.Max, b.Min)
	d := hi
	if attempt < 0 {
		attempt = 0
	}
	if attempt < 62 {
		if e := b.Min << attempt; e > 0 && e < hi {
			d = e
		}
	}
	if d <= 0 {
		return 0
	}
	if j := min(max(b.Jitter, 0), 1); j > 0 {
		d -= time.Duration(rand.Float64() * j * float64(d))
	}
	return d
}

// Sleep waits d, or until ctx is done; it reports whether d elapsed (false:
// ctx was cancelled first). A d ≤ 0 returns at once with ctx.Err() == nil.
func Sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Wait sleeps the delay of retry number attempt (see Delay); it reports
// whether the delay elapsed before ctx was done.
func (b Backoff) Wait(ctx context.Context, attempt int) bool {
	return Sleep(ctx, b.Delay(attempt))
}
