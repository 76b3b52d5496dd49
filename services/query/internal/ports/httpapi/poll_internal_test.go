package httpapi

import (
	"testing"
	"time"
)

// TestPollBackoffKeepsTheDoublingSchedule checks that the read-your-writes
// poll, now on seedwork/retry, waits what the hand-written loop waited:
// PollMin, then doubled after each poll, capped at PollMax, with no jitter.
func TestPollBackoffKeepsTheDoublingSchedule(t *testing.T) {
	t.Parallel()
	for _, o := range []Options{
		{}, // the defaults: 5ms .. 100ms
		{PollMin: time.Millisecond, PollMax: 5 * time.Millisecond},
		{PollMin: 3 * time.Millisecond, PollMax: 40 * time.Millisecond}, // a cap that is no power of two of Min
		{PollMin: time.Hour, PollMax: time.Minute},                      // Max below Min: Max = Min
	} {
		o = o.withDefaults()
		b := o.pollBackoff()
		want := o.PollMin // the former loop: backoff = min(backoff*2, PollMax)
		for attempt := range 40 {
			if got := b.Delay(attempt); got != want {
				t.Fatalf("%+v: delay of poll %d = %v, want %v", o, attempt, got, want)
			}
			want = min(want*2, o.PollMax)
		}
	}
}
