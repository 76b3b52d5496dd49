package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// soakOptions are the flags of the soak mode (-soak).
type soakOptions struct {
	duration time.Duration // constant-load phase
	rate     float64       // commands per second; 0 (the default): half the measured capacity
	measure  time.Duration // closed-loop burst measuring the capacity
	every    time.Duration // sampling period
	out      string        // Markdown report
	series   string        // JSON series for the plots
	memTol   float64       // allowed relative RSS growth
	memAbs   float64       // and absolute, MiB
	goTol    float64       // allowed relative goroutine growth
	goAbs    float64       // and absolute
	check    bool          // fail on growth
}

// soakFlags registers the flags of the soak mode on the default flag set.
func soakFlags(o *options) {
	so := &o.soak
	flag.BoolVar(&o.soakMode, "soak", false, "soak mode: constant load, no faults; reports memory, goroutines, lag and freshness over time")
	flag.DurationVar(&so.duration, "duration", 10*time.Minute, "soak: duration of the constant load")
	flag.Float64Var(&so.rate, "rate", 0, "soak: commands per second (0: half the pipeline capacity, measured first by a closed-loop burst of -workers clients for -measure)")
	flag.DurationVar(&so.measure, "measure", 15*time.Second, "soak: length of the closed-loop burst measuring the capacity (with -workers clients)")
	flag.DurationVar(&so.every, "every", 10*time.Second, "soak: sampling period")
	flag.StringVar(&so.out, "soak-out", "SOAK.md", "soak: Markdown report to write (empty: none)")
	flag.StringVar(&so.series, "soak-series", "", "soak: JSON file of the series over time (lag, freshness, RSS, goroutines) to write (empty: none);\n"+
		"`make soak` writes soak/series.json and draws it with bench/cmd/benchrun -soak-plots into PNGs beside it, which the report links")
	flag.Float64Var(&so.memTol, "mem-tolerance", 0.15, "soak: allowed relative RSS growth of a service (last third vs second third, medians)")
	flag.Float64Var(&so.memAbs, "mem-slack", 8, "soak: allowed absolute RSS growth of a service, MiB (growth must exceed both)")
	flag.Float64Var(&so.goTol, "goroutine-tolerance", 0.15, "soak: allowed relative goroutine growth of a service")
	flag.Float64Var(&so.goAbs, "goroutine-slack", 10, "soak: allowed absolute goroutine growth of a service (growth must exceed both)")
	flag.BoolVar(&so.check, "soak-check", true, "soak: exit non-zero when a service's memory or goroutines grew")
}

// soakSample is one observation of the whole stack.
type soakSample struct {
	at         time.Duration      // since the start of the constant load
	rss        map[string]float64 // process → VmRSS, MiB (absent if unreadable)
	goroutines map[string]float64 // service → go_goroutines (absent if unreadable)
	lag        float64            // the readers' group lag (-1 unknown)
	timeouts   float64            // view-store writes the readers cancelled at their write timeout, in the window
	sent, ok   int64              // commands in the window, and 2xx answers
	errs       int64              // non-2xx answers and transport errors in the window
	skipped    int64              // ticks skipped because too many commands were in flight
	fresh      []time.Duration    // POST → visible on a reader, in the window
	freshLost  int64              // freshness probes never seen within 30s
}

// soakLoad is the open-loop command generator: creates, PATCHes and
// approvals/rejections of companies it created itself.
type soakLoad struct {
	s       *stack
	n       atomic.Int64
	pending chan soakCompania // PENDIENTE companies, for PATCH / aprobar / rechazar
	inFl    atomic.Int64
	sent    atomic.Int64
	ok      atomic.Int64
	errs    atomic.Int64
	skipped atomic.Int64
	lastErr atomic.Value // string
}

type soakCompania struct {
	id      string
	version int64
}

// one sends one command and reports whether it was answered 2xx.
func (l *soakLoad) one(ctx context.Context) bool {
	i := l.n.Add(1)
	w := l.s.writers[i%int64(len(l.s.writers))]
	l.sent.Add(1)
	var a answer
	var err error
	var c soakCompania
	have := false
	if i%2 == 0 { // every other command mutates a company, when there is one
		select {
		case c = <-l.pending:
			have = true
		default:
		}
	}
	path := "/v1/companias/" + c.id
	ifMatch := map[string]string{"If-Match": fmt.Sprintf(`"%d"`, c.version)}
	switch {
	case !have:
		body := map[string]string{
			"nombre":         fmt.Sprintf("Soak %d %08d", l.s.o.seed%100000, i),
			"email":          fmt.Sprintf("s%08d@soak.example.com", i),
			"identificacion": fmt.Sprintf("SK-%d-%08d", l.s.o.seed%100000, i),
		}
		a, err = send(ctx, w, http.MethodPost, "/v1/companias", body, map[string]string{"Idempotency-Key": fmt.Sprintf("soak-%d-%d", l.s.o.seed, i)})
		if err == nil && a.status == http.StatusCreated {
			select {
			case l.pending <- soakCompania{id: a.c.ID, version: a.c.Version}:
			default:
			}
		}
	case c.version < 3:
		a, err = send(ctx, w, http.MethodPatch, path, map[string]string{"email": fmt.Sprintf("p%08d@soak.example.com", i)}, ifMatch)
		if err == nil && a.status == http.StatusOK {
			select {
			case l.pending <- soakCompania{id: c.id, version: a.c.Version}:
			default:
			}
		}
	case i%4 == 0:
		a, err = send(ctx, w, http.MethodPost, path+"/aprobar", nil, ifMatch)
	default:
		a, err = send(ctx, w, http.MethodPost, path+"/rechazar", map[string]string{"motivo": "soak"}, ifMatch)
	}
	if err != nil || a.status/100 != 2 {
		l.errs.Add(1)
		if ctx.Err() == nil {
			l.lastErr.Store(fmt.Sprintf("status %d, error %v, body %.150s", a.status, err, a.body))
		}
		return false
	}
	l.ok.Add(1)
	return true
}

// capacity runs a closed-loop burst of workers for d and returns the
// commands answered 2xx per second.
func (l *soakLoad) capacity(ctx context.Context, workers int, d time.Duration) float64 {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	start := time.Now()
	var done atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				if l.one(ctx) {
					done.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return float64(done.Load()) / time.Since(start).Seconds()
}

// paced sends rate commands per second (open loop: a slow answer does not
// slow the schedule) until ctx ends; a tick finding maxInFlight commands in
// flight is skipped and counted. Commands in flight at the end finish on
// sendCtx.
func (l *soakLoad) paced(ctx, sendCtx context.Context, rate float64, maxInFlight int64) {
	interval := time.Duration(float64(time.Second) / rate)
	var wg sync.WaitGroup
	defer wg.Wait()
	next := time.Now()
	for {
		next = next.Add(interval)
		if d := time.Until(next); d > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(d):
			}
		} else if ctx.Err() != nil {
			return
		}
		if l.inFl.Load() >= maxInFlight {
			l.skipped.Add(1)
			continue
		}
		l.inFl.Add(1)
		wg.Go(func() {
			defer l.inFl.Add(-1)
			l.one(sendCtx)
		})
	}
}

// freshness creates a company every period and measures how long until a
// reader (round robin) serves its view.
func (s *stack) freshness(ctx context.Context, period time.Duration, record func(time.Duration, bool)) {
	for k := 0; ; k++ {
		select {
		case <-ctx.Done():
			return
		case <-time.After(period):
		}
		w := s.writers[k%len(s.writers)]
		r := s.readers[k%len(s.readers)]
		body := map[string]string{
			"nombre":         fmt.Sprintf("Fresh %d %06d", s.o.seed%100000, k),
			"email":          fmt.Sprintf("f%06d@soak.example.com", k),
			"identificacion": fmt.Sprintf("FR-%d-%06d", s.o.seed%100000, k),
		}
		a, err := send(ctx, w, http.MethodPost, "/v1/companias", body, nil)
		if err != nil || a.status != http.StatusCreated {
			continue
		}
		t0 := time.Now() // the command committed: from here the view may lag
		deadline := t0.Add(30 * time.Second)
		seen := false
		for time.Now().Before(deadline) && ctx.Err() == nil {
			st, err := getJSON(ctx, "http://"+r.addr+"/v1/companias/"+a.c.ID, nil)
			if err == nil && st == http.StatusOK {
				seen = true
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		if ctx.Err() != nil {
			return
		}
		record(time.Since(t0), seen)
	}
}

// drain waits until the readers' group lag is (almost) 0 and returns the
// pipeline's throughput: n commands over the time since t0.
func (s *stack) drain(ctx context.Context, n int64, t0 time.Time, limit time.Duration) (float64, error) {
	deadline := time.Now().Add(limit)
	lastPrint := time.Now()
	for {
		_, _, lag, _ := s.sample(ctx)
		if lag >= 0 && lag <= 5 {
			return float64(n) / time.Since(t0).Seconds(), nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("the readers did not catch up within %s of the capacity burst: group lag %s", limit, fmtLag(lag))
		}
		if time.Since(lastPrint) >= 5*time.Second {
			fmt.Printf("  %s after the burst started: group lag %s\n", time.Since(t0).Round(time.Second), fmtLag(lag))
			lastPrint = time.Now()
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// pid returns the current instance's process id (0 if none).
func (sv *service) pid() int {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	if sv.cmd == nil || sv.cmd.Process == nil {
		return 0
	}
	return sv.cmd.Process.Pid
}

// rssMiB reads VmRSS of pid from /proc.
func rssMiB(pid int) (float64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if err != nil {
				return 0, fmt.Errorf("parse VmRSS %q: %w", v, err)
			}
			return kb / 1024, nil
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// scrape returns the sum of the samples of each named metric in the
// Prometheus text exposition at http://addr/metrics (addr: a service's
// admin listener, METRICS_ADDR).
func scrape(ctx context.Context, addr string, names ...string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := probeClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: status %d", resp.StatusCode)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		for _, n := range names {
			rest, ok := strings.CutPrefix(line, n)
			if !ok || (rest != "" && rest[0] != ' ' && rest[0] != '{') {
				continue
			}
			if i := strings.LastIndexByte(rest, '}'); i >= 0 {
				rest = rest[i+1:]
			}
			f := strings.Fields(rest)
			if len(f) == 0 {
				continue
			}
			v, err := strconv.ParseFloat(f[0], 64)
			if err == nil {
				out[n] += v
			}
		}
	}
	return out, sc.Err()
}

// sample observes every process once. timeouts is the readers' total of
// view-store writes cancelled at their write timeout since they started.
func (s *stack) sample(ctx context.Context) (rss, gor map[string]float64, lag, timeouts float64) {
	rss, gor = map[string]float64{}, map[string]float64{}
	for _, sv := range s.all() {
		if p := sv.pid(); p != 0 && sv.running() {
			if v, err := rssMiB(p); err == nil {
				rss[sv.name] = v
			}
		}
	}
	lag = -1
	for _, sv := range append(append([]*service{}, s.writers...), s.readers...) {
		m, err := scrape(ctx, sv.metricsAddr, "go_goroutines", "companias_consumer_lag", "companias_projection_store_timeouts_total")
		if err != nil {
			continue
		}
		timeouts += m["companias_projection_store_timeouts_total"]
		if v, ok := m["go_goroutines"]; ok {
			gor[sv.name] = v
		}
		// Each reader reports the lag of the event partitions it owns, so the
		// projection group's lag is the sum over the readers. (The writers'
		// companias_consumer_lag is their command intake's group.)
		if v, ok := m["companias_consumer_lag"]; ok && slices.Contains(s.readers, sv) {
			lag = max(lag, 0) + v
		}
	}
	return rss, gor, lag, timeouts
}

// soakCapacity is what the closed-loop burst of the soak measured.
type soakCapacity struct {
	commands int64         // answered 2xx during the burst
	errs     int64         // other answers and transport errors
	writers  float64       // commands/s answered by the writers during the burst
	pipeline float64       // commands/s from the burst's start until the readers' lag was ~0
	drained  time.Duration // from the burst's start until the readers' lag was ~0
	timeouts float64       // view-store writes the readers cancelled at their write timeout, by then
}

// soak runs the soak mode on the started stack: it measures the capacity
// (unless -rate is given), holds half of it for the duration, samples every
// period and finally writes the report and decides on growth.
func (s *stack) soak(ctx context.Context) (bool, error) {
	so := s.o.soak
	l := &soakLoad{s: s, pending: make(chan soakCompania, 4096)}
	rate := so.rate
	var burst soakCapacity
	if rate <= 0 {
		fmt.Printf("measuring capacity: closed loop, %d workers, %s\n", s.o.workers, so.measure)
		t0 := time.Now()
		c := l.capacity(ctx, s.o.workers, so.measure)
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		fmt.Printf("writers' capacity %.1f commands/s (%d answered 2xx, %d errors); waiting for the readers to catch up\n", c, l.ok.Load(), l.errs.Load())
		// The pipeline's capacity: the commands of the burst over the time
		// until the readers projected them all (the projection, not the
		// writers, is usually the bottleneck).
		e2e, err := s.drain(ctx, l.ok.Load(), t0, 2*time.Minute)
		if err != nil {
			return false, err
		}
		rate = max(1, min(c, e2e)/2)
		burst = soakCapacity{commands: l.ok.Load(), errs: l.errs.Load(), writers: c, pipeline: e2e, drained: time.Since(t0)}
		_, _, _, burst.timeouts = s.sample(ctx)
		fmt.Printf("pipeline capacity %.1f commands/s (burst start → readers' lag 0); soak rate %.1f commands/s\n", e2e, rate)
		l.sent.Store(0)
		l.ok.Store(0)
		l.errs.Store(0)
	}
	fmt.Printf("soak: %.1f commands/s for %s, a sample every %s\n", rate, so.duration, so.every)

	// The supervisor: a process that dies during a soak is a failure.
	died := &findings{}
	lctx, stopLoad := context.WithTimeout(ctx, so.duration)
	defer stopLoad()
	var fmu sync.Mutex
	var fresh []time.Duration
	var freshLost int64
	var bg sync.WaitGroup
	bg.Go(func() { l.paced(lctx, ctx, rate, 256) })
	bg.Go(func() {
		s.freshness(lctx, 500*time.Millisecond, func(d time.Duration, seen bool) {
			fmu.Lock()
			defer fmu.Unlock()
			if seen {
				fresh = append(fresh, d)
			} else {
				freshLost++
			}
		})
	})
	bg.Go(func() {
		for {
			select {
			case <-lctx.Done():
				return
			case <-time.After(time.Second):
			}
			for _, sv := range s.all() {
				if !sv.running() {
					died.add("%s exited during the soak: %v\n%s", sv.name, sv.exitErr(), sv.lastLines(20))
					if err := sv.startRetry(ctx, s.note); err != nil {
						died.add("restart %s: %v", sv.name, err)
					}
				}
			}
		}
	})

	start := time.Now()
	var samples []soakSample
	var prevSent, prevOK, prevErrs, prevSkipped int64
	prevTimeouts := burst.timeouts
	take := func() {
		rss, gor, lag, timeouts := s.sample(ctx)
		fmu.Lock()
		fw, lost := fresh, freshLost
		fresh, freshLost = nil, 0
		fmu.Unlock()
		sent, okN, errs, skipped := l.sent.Load(), l.ok.Load(), l.errs.Load(), l.skipped.Load()
		smp := soakSample{at: time.Since(start), rss: rss, goroutines: gor, lag: lag,
			sent: sent - prevSent, ok: okN - prevOK, errs: errs - prevErrs, skipped: skipped - prevSkipped,
			fresh: fw, freshLost: lost, timeouts: max(0, timeouts-prevTimeouts)} // a restarted reader starts from 0
		prevSent, prevOK, prevErrs, prevSkipped, prevTimeouts = sent, okN, errs, skipped, timeouts
		samples = append(samples, smp)
		fmt.Println(s.soakLine(smp))
		if smp.errs > 0 {
			if e, _ := l.lastErr.Load().(string); e != "" {
				fmt.Printf("  last error: %s\n", e)
			}
		}
	}
	take()
	tick := time.NewTicker(so.every)
	for lctx.Err() == nil {
		select {
		case <-lctx.Done():
		case <-tick.C:
			take()
		}
	}
	tick.Stop()
	bg.Wait()
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	take() // the final position, after the last commands were answered

	ok, verdict := s.soakVerdict(samples)
	if died.len() > 0 {
		ok = false
		verdict += "\n**Processes died during the soak:**\n\n```\n" + died.String() + "```\n"
	}
	report := s.soakReport(rate, burst, samples, verdict)
	fmt.Print("\n" + verdict)
	if so.series != "" {
		host, _ := os.Hostname()
		ser := s.newSoakSeries(rate, samples, fmt.Sprintf("%s, %d CPUs", host, runtime.NumCPU()))
		ser.ReportPath = so.out
		if err := writeSoakSeries(so.series, ser); err != nil {
			return false, err
		}
		fmt.Printf("soak series written to %s\n", so.series)
	}
	if so.out != "" {
		if err := os.MkdirAll(filepath.Dir(so.out), 0o755); err != nil {
			return false, err
		}
		if err := os.WriteFile(so.out, []byte(report), 0o644); err != nil {
			return false, fmt.Errorf("write the soak report: %w", err)
		}
		fmt.Printf("soak report written to %s\n", so.out)
	}
	if !so.check && !ok {
		fmt.Println("(growth not enforced: -soak-check=false)")
		return died.len() == 0, nil
	}
	return ok, nil
}

func (s *stack) services() []*service {
	return append(append([]*service{}, s.writers...), s.readers...)
}

func (s *stack) soakLine(m soakSample) string {
	var b strings.Builder
	fmt.Fprintf(&b, "t=%-5s sent %4d ok %4d err %d skip %d lag %s fresh %s |", m.at.Round(time.Second), m.sent, m.ok, m.errs, m.skipped,
		fmtLag(m.lag), fmtFresh(m.fresh, m.freshLost))
	if m.timeouts > 0 {
		fmt.Fprintf(&b, " STORE TIMEOUTS %.0f |", m.timeouts)
	}
	for _, sv := range s.all() {
		fmt.Fprintf(&b, " %s %s", sv.name, fmtMiB(m.rss, sv.name))
		if g, ok := m.goroutines[sv.name]; ok {
			fmt.Fprintf(&b, "/%.0fg", g)
		}
	}
	return b.String()
}

func fmtMiB(m map[string]float64, k string) string {
	if v, ok := m[k]; ok {
		return fmt.Sprintf("%.1f", v)
	}
	return "–"
}

func fmtLag(v float64) string {
	if v < 0 {
		return "?"
	}
	return fmt.Sprintf("%.0f", v)
}

func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	d = slices.Clone(d)
	slices.Sort(d)
	return d[min(len(d)-1, int(p*float64(len(d))))]
}

func fmtFresh(d []time.Duration, lost int64) string {
	if len(d) == 0 {
		return fmt.Sprintf("– (%d lost)", lost)
	}
	out := fmt.Sprintf("p50 %s max %s (n %d)", pct(d, 0.5).Round(time.Millisecond), slices.Max(d).Round(time.Millisecond), len(d))
	if lost > 0 {
		out += fmt.Sprintf(" %d LOST", lost)
	}
	return out
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// thirds returns the values of key in the second and the last third of the
// samples.
func thirds(samples []soakSample, get func(soakSample) (float64, bool)) (mid, last []float64) {
	n := len(samples)
	for i, smp := range samples {
		v, ok := get(smp)
		if !ok {
			continue
		}
		switch {
		case i >= 2*n/3:
			last = append(last, v)
		case i >= n/3:
			mid = append(mid, v)
		}
	}
	return mid, last
}

// soakVerdict compares, per process, the median of the last third of the
// samples with the median of the second third (the first third is the
// warm-up): growth beyond both tolerances fails for a service (writers and
// readers); the broker and the Mongo-wire server hold the data in memory
// and are reported only.
func (s *stack) soakVerdict(samples []soakSample) (bool, string) {
	so := s.o.soak
	var b strings.Builder
	ok := true
	b.WriteString("| process | metric | median, 2nd third | median, last third | growth | verdict |\n|---|---|---:|---:|---:|---|\n")
	if len(samples) < 6 {
		b.WriteString("\nToo few samples (fewer than 6) to decide on growth: run longer or sample more often.\n")
		return false, b.String()
	}
	isService := map[string]bool{}
	for _, sv := range s.services() {
		isService[sv.name] = true
	}
	row := func(name, metric, unit string, tolRel, tolAbs float64, get func(soakSample) (float64, bool)) {
		mid, last := thirds(samples, get)
		if len(mid) == 0 || len(last) == 0 {
			fmt.Fprintf(&b, "| %s | %s | – | – | – | no data |\n", name, metric)
			if isService[name] {
				ok = false
			}
			return
		}
		a, z := median(mid), median(last)
		grew := z > a*(1+tolRel) && z-a > tolAbs
		v := "stable"
		switch {
		case grew && isService[name]:
			v = "**GREW**"
			ok = false
		case grew:
			v = "grew (infrastructure, not enforced)"
		case !isService[name]:
			v = "stable (infrastructure)"
		}
		growth := 0.0
		if a > 0 {
			growth = 100 * (z - a) / a
		}
		fmt.Fprintf(&b, "| %s | %s | %.1f%s | %.1f%s | %+.1f%% | %s |\n", name, metric, a, unit, z, unit, growth, v)
	}
	for _, sv := range s.all() {
		row(sv.name, "RSS", " MiB", so.memTol, so.memAbs, func(m soakSample) (float64, bool) { v, ok := m.rss[sv.name]; return v, ok })
	}
	for _, sv := range s.services() {
		row(sv.name, "goroutines", "", so.goTol, so.goAbs, func(m soakSample) (float64, bool) {
			v, ok := m.goroutines[sv.name]
			return v, ok
		})
	}
	// The pipeline must keep up: the readers' lag must not grow and every
	// freshness probe must become visible.
	lagMid, lagLast := thirds(samples, func(m soakSample) (float64, bool) { return m.lag, m.lag >= 0 })
	if len(lagMid) > 0 && len(lagLast) > 0 {
		a, z := median(lagMid), median(lagLast)
		v := "stable"
		if z > max(100, 2*a) {
			v = "**GREW** (the readers fall behind)"
			ok = false
		}
		fmt.Fprintf(&b, "| readers (group) | lag | %.0f | %.0f | %+.0f | %s |\n", a, z, z-a, v)
	}
	var lost int64
	for _, m := range samples {
		lost += m.freshLost
	}
	if lost > 0 {
		fmt.Fprintf(&b, "| readers | freshness | | | | **%d probes not visible within 30 s** |\n", lost)
		ok = false
	}
	// Reported, not enforced: a store that keeps timing out also shows in
	// the lag, which is.
	var timeouts float64
	for _, m := range samples {
		timeouts += m.timeouts
	}
	if timeouts > 0 {
		fmt.Fprintf(&b, "| readers | view-store write timeouts | | | %.0f | retried (see the lag) |\n", timeouts)
	}
	fmt.Fprintf(&b, "\nTolerance: RSS +%.0f%% and +%.0f MiB, goroutines +%.0f%% and +%.0f (growth must exceed both); group lag: last third ≤ max(100, 2 × second third); no freshness probe lost.\n", 100*so.memTol, so.memAbs, 100*so.goTol, so.goAbs)
	if ok {
		b.WriteString("\nVERDICT: no growth of memory or goroutines in any service.\n")
	} else {
		b.WriteString("\nVERDICT: GROWTH (or missing data, or the readers fell behind).\n")
	}
	return ok, b.String()
}

// soakReport renders the Markdown report.
func (s *stack) soakReport(rate float64, burst soakCapacity, samples []soakSample, verdict string) string {
	var b strings.Builder
	host, _ := os.Hostname()
	fmt.Fprintf(&b, "# Soak report\n\n%s on %s (%d CPUs), seed %d: %.1f commands/s (open loop; ", time.Now().UTC().Format(time.RFC3339), host, runtime.NumCPU(), s.o.seed, rate)
	if s.o.soak.rate > 0 {
		b.WriteString("rate given by -rate")
	} else {
		fmt.Fprintf(&b, "half the capacity measured by a %s closed-loop burst of %d clients", s.o.soak.measure, s.o.workers)
	}
	fmt.Fprintf(&b, ") for %s, sampled every %s; plus one create every 500 ms timed until a reader serves it (freshness).\n", s.o.soak.duration, s.o.soak.every)
	b.WriteString("Processes: the kfake broker and the FerretDB Mongo-wire server (children of chaosrun), two writers (commandd), three readers (queryd).\n\n")
	if s.o.soak.rate <= 0 {
		fmt.Fprintf(&b, "Capacity burst: %d commands answered 2xx (%d errors) in %s, %.1f commands/s at the writers; "+
			"the readers' lag was back to ~0 %s after the burst started: pipeline capacity %.1f commands/s; "+
			"%.0f view-store writes timed out meanwhile.\n\n",
			burst.commands, burst.errs, s.o.soak.measure, burst.writers, burst.drained.Round(100*time.Millisecond), burst.pipeline, burst.timeouts)
	}

	b.WriteString("## Load, lag and freshness\n\n| t | sent | 2xx | errors | skipped | group lag | store timeouts | freshness p50 | p95 | max | probes | lost |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, m := range samples {
		p50, p95, mx := "–", "–", "–"
		if len(m.fresh) > 0 {
			p50, p95 = pct(m.fresh, 0.5).Round(time.Millisecond).String(), pct(m.fresh, 0.95).Round(time.Millisecond).String()
			mx = slices.Max(m.fresh).Round(time.Millisecond).String()
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %s | %.0f | %s | %s | %s | %d | %d |\n", m.at.Round(time.Second), m.sent, m.ok, m.errs, m.skipped,
			fmtLag(m.lag), m.timeouts, p50, p95, mx, len(m.fresh), m.freshLost)
	}

	b.WriteString("\n## RSS (MiB, VmRSS)\n\n| t |")
	for _, sv := range s.all() {
		fmt.Fprintf(&b, " %s |", sv.name)
	}
	b.WriteString("\n|---:|" + strings.Repeat("---:|", len(s.all())) + "\n")
	for _, m := range samples {
		fmt.Fprintf(&b, "| %s |", m.at.Round(time.Second))
		for _, sv := range s.all() {
			fmt.Fprintf(&b, " %s |", fmtMiB(m.rss, sv.name))
		}
		b.WriteString("\n")
	}

	b.WriteString("\n## Goroutines (go_goroutines)\n\n| t |")
	for _, sv := range s.services() {
		fmt.Fprintf(&b, " %s |", sv.name)
	}
	b.WriteString("\n|---:|" + strings.Repeat("---:|", len(s.services())) + "\n")
	for _, m := range samples {
		fmt.Fprintf(&b, "| %s |", m.at.Round(time.Second))
		for _, sv := range s.services() {
			if g, ok := m.goroutines[sv.name]; ok {
				fmt.Fprintf(&b, " %.0f |", g)
			} else {
				b.WriteString(" – |")
			}
		}
		b.WriteString("\n")
	}
	b.WriteString("\n## Growth\n\n" + verdict)
	if so := s.o.soak; so.series != "" {
		b.WriteString("\n## Plots\n\n")
		// Links relative to the report (both paths made absolute first:
		// -soak-out may be absolute, -soak-series relative).
		dir := filepath.Dir(so.series)
		absDir, errDir := filepath.Abs(dir)
		absOut, errOut := filepath.Abs(filepath.Dir(so.out))
		if errDir == nil && errOut == nil {
			if rel, err := filepath.Rel(absOut, absDir); err == nil {
				dir = rel
			}
		}
		for _, pl := range soakPlotNames {
			fmt.Fprintf(&b, "![%s](%s)\n\n", pl.what, filepath.ToSlash(filepath.Join(dir, pl.file)))
		}
	}
	return b.String()
}
