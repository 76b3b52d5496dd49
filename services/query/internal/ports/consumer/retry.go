package consumer

import (
	"context"
	"errors"
	"fmt"

	"github.com/propalpes/companias/services/query/internal/view"
)

// ErrWriteTimeout is wrapped by the error of a store write that did not
// return within Config.WriteTimeout.
var ErrWriteTimeout = errors.New("view store write timed out")

// writeViews calls the Writer with a deadline of WriteTimeout. A call that
// fails once its own deadline passed (ctx still live) is a timeout.
func (c *Consumer) writeViews(ctx context.Context, runs []view.Run) ([]view.VersionGap, error) {
	wctx, cancel := context.WithTimeout(ctx, c.cfg.WriteTimeout)
	defer cancel()
	gaps, err := c.writer.WriteViews(wctx, runs)
	if err != nil && ctx.Err() == nil && errors.Is(wctx.Err(), context.DeadlineExceeded) {
		c.counters.timeouts.Add(1)
		return gaps, fmt.Errorf("%w after %s (%d views): %w", ErrWriteTimeout, c.cfg.WriteTimeout, len(runs), err)
	}
	return gaps, err
}

// retrying calls f until it succeeds, with capped exponential backoff; it
// returns ctx's error when ctx is done first. The consumer reports
// StateFailing while it retries.
func (c *Consumer) retrying(ctx context.Context, what string, f func() error) error {
	for attempt := 1; ; attempt++ {
		err := f()
		if err == nil {
			if attempt > 1 {
				c.log.InfoContext(ctx, what+" recovered", "attempts", attempt)
				c.member.setFailing(false)
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		c.counters.retries.Add(1)
		c.member.setFailing(true)
		if errors.Is(err, ErrWriteTimeout) {
			c.log.WarnContext(ctx, what+" timed out; retrying", "attempt", attempt, "timeout", c.cfg.WriteTimeout, "err", err)
		} else {
			c.log.WarnContext(ctx, what+" failed; retrying", "attempt", attempt, "err", err)
		}
		if !c.backoff.Wait(ctx, attempt-1) {
			return ctx.Err()
		}
	}
}
