package main

import (
	"testing"
	"time"
)

func TestPercentileNearestRank(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- { // unsorted on purpose
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{50, 50 * time.Millisecond}, {99, 99 * time.Millisecond}, {100, 100 * time.Millisecond}, {0.1, time.Millisecond}} {
		if got := percentile(ds, c.p); got != c.want {
			t.Errorf("percentile(1..100 ms, %v) = %v, want %v", c.p, got, c.want)
		}
	}
	if ds[0] != 100*time.Millisecond {
		t.Error("percentile reordered its argument")
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("percentile(nil) = %v, want 0", got)
	}
	if got := percentile([]time.Duration{7}, 99); got != 7 {
		t.Errorf("percentile of one sample = %v, want it", got)
	}
}

func TestNewRunKeepsSortedSamples(t *testing.T) {
	r := newRun([]time.Duration{3, 1, 2, 4}, 2*time.Second)
	if r.ops != 4 || r.rate() != 2 {
		t.Errorf("ops %d rate %v, want 4 and 2/s", r.ops, r.rate())
	}
	for i, want := range []time.Duration{1, 2, 3, 4} {
		if r.lat[i] != want {
			t.Fatalf("lat = %v, want ascending 1..4", r.lat)
		}
	}
	if r.p50 != 2 || r.p99 != 4 {
		t.Errorf("p50 %v p99 %v, want 2 and 4", r.p50, r.p99)
	}
}

func TestAggregate(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want agg
	}{
		{nil, agg{}},
		{[]float64{5}, agg{5, 5, 5}},
		{[]float64{9, 1, 5}, agg{5, 1, 9}},
		{[]float64{4, 1, 3, 2}, agg{2.5, 1, 4}},
	} {
		if got := aggregate(c.in); got != c.want {
			t.Errorf("aggregate(%v) = %+v, want %+v", c.in, got, c.want)
		}
	}
	in := []float64{3, 1, 2}
	aggregate(in)
	if in[0] != 3 {
		t.Error("aggregate reordered its argument")
	}
}

func TestMedianIndex(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want int
	}{
		{nil, -1},
		{[]float64{7}, 0},
		{[]float64{30, 10, 20}, 2},
		{[]float64{40, 10, 30, 20}, 3}, // the lower of the two middle values
		{[]float64{5, 5, 5}, 1},        // ties keep their order
	} {
		if got := medianIndex(c.in); got != c.want {
			t.Errorf("medianIndex(%v) = %d, want %d", c.in, got, c.want)
		}
	}
}

func TestFmtAgg(t *testing.T) {
	if got := fmtAgg(agg{med: 2.5, lo: 1, hi: 4}, "%.1f"); got != "2.5 (1.0–4.0)" {
		t.Errorf("fmtAgg = %q", got)
	}
}

func TestRatiosPairRuns(t *testing.T) {
	mk := func(ops int) run { return run{ops: ops, elapsed: time.Second} }
	got := ratios([]run{mk(50), mk(80), mk(90)}, []run{mk(100), mk(100), mk(100)})
	if got != (agg{med: 0.8, lo: 0.5, hi: 0.9}) {
		t.Errorf("ratios = %+v, want median 0.8 over 0.5–0.9", got)
	}
}
