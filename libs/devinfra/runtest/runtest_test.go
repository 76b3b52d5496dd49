package runtest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/propalpes/companias/libs/devinfra/runtest"
)

// stopRecorder is a testing.TB that records Errorf instead of failing.
type stopRecorder struct {
	testing.TB
	errors []string
}

func (r *stopRecorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, format)
}

func TestStartCancelsAndWaits(t *testing.T) {
	t.Parallel()
	started := make(chan struct{})
	returned := false
	stop := runtest.Start(t, func(ctx context.Context) error {
		close(started)
		<-ctx.Done()
		returned = true
		return nil
	})
	<-started
	stop()
	if !returned {
		t.Fatal("stop returned before run did")
	}
	stop() // idempotent
}

func TestStartReportsAnError(t *testing.T) {
	t.Parallel()
	rec := &stopRecorder{TB: t}
	stop := runtest.Start(rec, func(ctx context.Context) error {
		<-ctx.Done()
		return errors.New("boom")
	})
	stop()
	stop()
	if len(rec.errors) != 1 {
		t.Fatalf("Errorf called %d times, want once", len(rec.errors))
	}
}

func TestCleanupReportsAnError(t *testing.T) {
	t.Parallel()
	rec := &stopRecorder{TB: t}
	t.Run("worker", func(t *testing.T) {
		rec.TB = t
		runtest.Start(rec, func(ctx context.Context) error {
			<-ctx.Done()
			return errors.New("boom")
		})
	})
	if len(rec.errors) != 1 {
		t.Fatalf("Errorf called %d times at cleanup, want once", len(rec.errors))
	}
}

func TestStartErrReturnsRunsErrorAsIs(t *testing.T) {
	t.Parallel()
	want := errors.New("boom")
	stop := runtest.StartErr(t, func(ctx context.Context) error {
		<-ctx.Done()
		return want
	})
	if err := stop(); !errors.Is(err, want) || err != want {
		t.Fatalf("stop() = %v, want %v as is", err, want)
	}
	if err := stop(); err != want {
		t.Fatalf("second stop() = %v, want the same %v", err, want)
	}
}

func TestCleanupStops(t *testing.T) {
	t.Parallel()
	done := make(chan struct{})
	t.Run("worker", func(t *testing.T) {
		runtest.Start(t, func(ctx context.Context) error {
			<-ctx.Done()
			close(done)
			return nil
		})
	})
	select {
	case <-done:
	default:
		t.Fatal("the subtest ended and its worker still runs")
	}
}

func TestContextHasTheDeadline(t *testing.T) {
	t.Parallel()
	before := time.Now()
	ctx := runtest.Context(t, time.Minute)
	d, ok := ctx.Deadline()
	if !ok || d.Before(before.Add(time.Minute)) || d.After(time.Now().Add(time.Minute)) {
		t.Fatalf("Deadline() = %v, %v; want a minute from now", d, ok)
	}
	var ended context.Context
	t.Run("sub", func(t *testing.T) { ended = runtest.Context(t, time.Minute) })
	if ended.Err() == nil {
		t.Error("the context of an ended test is still live")
	}
}
