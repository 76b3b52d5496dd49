package main

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// percentile returns the nearest-rank p-th percentile (0 < p ≤ 100) of ds,
// or 0 for no samples.
func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return percentileSorted(s, p)
}

// percentileSorted is percentile of samples already in ascending order.
func percentileSorted(s []time.Duration, p float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	rank := int(float64(len(s))*p/100+0.999999) - 1
	return s[min(max(rank, 0), len(s)-1)]
}

// run is the outcome of one measured run.
type run struct {
	ops      int
	elapsed  time.Duration
	p50, p99 time.Duration
	lat      []time.Duration // every latency of the run, ascending (for the plots)
	cpu      cpuPerOp        // CPU ms per operation, when measured (withCPU)
}

// withCPU runs f and records the CPU time per operation of the service
// process pid (0: none), of this process and of PostgreSQL.
func withCPU(pid int, f func() (run, error)) (run, error) {
	before := takeCPU(pid)
	r, err := f()
	if err != nil {
		return r, err
	}
	r.cpu = before.perOp(takeCPU(pid), r.ops)
	return r, nil
}

func (r run) rate() float64 { return float64(r.ops) / r.elapsed.Seconds() }

// newRun summarises the latencies of a run; it keeps them, sorted.
func newRun(lat []time.Duration, elapsed time.Duration) run {
	s := slices.Clone(lat)
	slices.Sort(s)
	return run{ops: len(s), elapsed: elapsed, p50: percentileSorted(s, 50), p99: percentileSorted(s, 99), lat: s}
}

// medianIndex returns the index of the median of xs (the lower of the two
// middle values for an even count), or -1 for none: the run a plot shows
// as the typical one.
func medianIndex(xs []float64) int {
	if len(xs) == 0 {
		return -1
	}
	idx := make([]int, len(xs))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(xs[a], xs[b]) })
	return idx[(len(xs)-1)/2]
}

// agg is the median and the spread (min, max) of one figure over runs.
type agg struct{ med, lo, hi float64 }

func aggregate(xs []float64) agg {
	if len(xs) == 0 {
		return agg{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return agg{med: m, lo: s[0], hi: s[len(s)-1]}
}

func rates(rs []run) agg { return aggregate(mapRuns(rs, func(r run) float64 { return r.rate() })) }
func p50s(rs []run) agg  { return aggregate(mapRuns(rs, func(r run) float64 { return ms(r.p50) })) }
func p99s(rs []run) agg  { return aggregate(mapRuns(rs, func(r run) float64 { return ms(r.p99) })) }

func mapRuns(rs []run, f func(run) float64) []float64 {
	out := make([]float64, len(rs))
	for i, r := range rs {
		out[i] = f(r)
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// fmtAgg renders "median (min–max)" with the given number format.
func fmtAgg(a agg, format string) string {
	return fmt.Sprintf(format+" ("+format+"–"+format+")", a.med, a.lo, a.hi)
}

// closedLoop runs op from conc workers back to back for d and returns the
// latencies of the successful calls. The first error stops the run.
func closedLoop(ctx context.Context, conc int, d time.Duration, op func(ctx context.Context) error) (run, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu   sync.Mutex
		all  []time.Duration
		ferr error
		wg   sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(d)
	for range conc {
		wg.Go(func() {
			lat := make([]time.Duration, 0, 1024)
			for time.Now().Before(deadline) && ctx.Err() == nil {
				t0 := time.Now()
				if err := op(ctx); err != nil {
					mu.Lock()
					if ferr == nil && ctx.Err() == nil {
						ferr = err
					}
					mu.Unlock()
					cancel()
					break
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if ferr != nil {
		return run{}, ferr
	}
	return newRun(all, elapsed), nil
}
