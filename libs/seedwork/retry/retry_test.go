package retry_test

import (
	"context"
	"testing"
	"time"

	"github.com/propalpes/companias/libs/seedwork/retry"
)

func TestDelay(t *testing.T) {
	t.Parallel()
	b := retry.Backoff{Min: 100 * time.Millisecond, Max: time.Second}
	for _, tc := range []struct {
		attempt int
		want    time.Duration
	}{
		{-1, 100 * time.Millisecond},
		{0, 100 * time.Millisecond},
		{1, 200 * time.Millisecond},
		{3, 800 * time.Millisecond},
		{4, time.Second},
		{63, time.Second},
		{1 << 20, time.Second},
	} {
		if got := b.Delay(tc.attempt); got != tc.want {
			t.Errorf("Delay(%d) = %v, want %v", tc.attempt, got, tc.want)
		}
	}
	if got := (retry.Backoff{Min: time.Second, Max: time.Millisecond}).Delay(5); got != time.Second {
		t.Errorf("Max < Min: Delay = %v, want Min", got)
	}
	if got := (retry.Backoff{}).Delay(3); got != 0 {
		t.Errorf("zero Backoff: Delay = %v, want 0", got)
	}
}

func TestDelayJitterStaysInRange(t *testing.T) {
	t.Parallel()
	b := retry.Backoff{Min: time.Second, Max: 8 * time.Second, Jitter: 0.2}
	for attempt := range 6 {
		full := retry.Backoff{Min: b.Min, Max: b.Max}.Delay(attempt)
		for range 200 {
			d := b.Delay(attempt)
			if d > full || d < full-full/5 {
				t.Fatalf("Delay(%d) = %v, want within [%v, %v]", attempt, d, full-full/5, full)
			}
		}
	}
}

func TestSleepStopsWithTheContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if retry.Sleep(ctx, time.Hour) {
		t.Error("Sleep on a cancelled context reported that the delay elapsed")
	}
	if !retry.Sleep(context.Background(), time.Microsecond) {
		t.Error("Sleep(1µs) did not elapse")
	}
	if retry.Sleep(ctx, 0) {
		t.Error("Sleep(0) on a cancelled context reported success")
	}
	if !(retry.Backoff{Min: time.Microsecond, Max: time.Microsecond}).Wait(context.Background(), 2) {
		t.Error("Wait did not elapse")
	}
}
