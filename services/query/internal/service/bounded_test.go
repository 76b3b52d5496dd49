package service

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestRunBounded(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	if err := runBounded(t.Context(), func(context.Context) error { return boom }, time.Second); err != boom {
		t.Errorf("failing worker: runBounded = %v, want boom", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := runBounded(ctx, func(ctx context.Context) error { <-ctx.Done(); return nil }, time.Second); err != nil {
		t.Errorf("clean stop: runBounded = %v, want nil", err)
	}
	stuck := make(chan struct{})
	defer close(stuck)
	err := runBounded(ctx, func(context.Context) error { <-stuck; return nil }, 10*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "did not stop within 10ms") {
		t.Errorf("stuck worker: runBounded = %v, want a timeout error", err)
	}
}
