package main

import (
	"testing"
	"time"
)

func TestTakeoverOf(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f := faultRecord{kind: faultFreezeRelay, at: t0, back: t0.Add(freezeFor), victim: "writer1", standby: "writer2"}
	now := t0.Add(time.Minute)
	for _, tc := range []struct {
		leads, lost []time.Duration
		took, gone  bool
	}{
		{nil, nil, false, false},
		{[]time.Duration{-time.Second}, nil, false, false},            // it led before: not a takeover
		{[]time.Duration{3 * time.Second}, nil, true, false},          // took over during the freeze
		{[]time.Duration{freezeFor + time.Second}, nil, false, false}, // only after the resume
		{[]time.Duration{2 * time.Second}, []time.Duration{freezeFor + 100*time.Millisecond}, true, true},
		{nil, []time.Duration{time.Second}, false, false}, // a loss before the resume is not this one
	} {
		at := func(ds []time.Duration) []time.Time {
			var out []time.Time
			for _, d := range ds {
				out = append(out, t0.Add(d))
			}
			return out
		}
		took, gone := takeoverOf(f, at(tc.leads), at(tc.lost), now)
		if took != tc.took || gone != tc.gone {
			t.Errorf("leads %v lost %v: took %v lost %v, want %v %v", tc.leads, tc.lost, took, gone, tc.took, tc.gone)
		}
	}
	if took, _ := takeoverOf(faultRecord{at: t0}, []time.Time{t0.Add(30 * time.Second)}, nil, now); !took {
		t.Error("a leader never resumed: a takeover up to now does not count")
	}
}
