package main

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestSleepCtx(t *testing.T) {
	t.Parallel()
	if err := sleepCtx(t.Context(), time.Millisecond); err != nil {
		t.Errorf("sleepCtx(live, 1ms) = %v, want nil", err)
	}
	if err := sleepCtx(t.Context(), 0); err != nil {
		t.Errorf("sleepCtx(live, 0) = %v, want nil", err)
	}
	if err := sleepCtx(t.Context(), -time.Second); err != nil {
		t.Errorf("sleepCtx(live, -1s) = %v, want nil (time.Until of a past instant)", err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := sleepCtx(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("sleepCtx(cancelled, 1h) = %v, want context.Canceled", err)
	}

	ctx, cancel = context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- sleepCtx(ctx, time.Hour) }()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("sleepCtx(deadline 10ms, 1h) = %v, want context.DeadlineExceeded", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("sleepCtx did not return when its context ended")
	}
}
