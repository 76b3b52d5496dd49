package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// The peer baseline (issue 13): the create path written with gin +
// Watermill's SQL outbox + its Forwarder to Kafka (bench/peer/watermill, a
// module of its own outside go.work), measured next to the writer in the
// same run: create rate over HTTP and end to end (until every event is on
// Kafka), and commit → Kafka latency at the fixed rate.

// Topics of the peer figure: the writer's and the peer's, each watched.
const (
	topicPeerWriter = "bench-peer-writer-events"
	topicPeer       = "bench-peer-watermill-events"
)

// peerModule is the peer's module directory, relative to the bench module.
const peerModule = "peer/watermill"

// buildPeer compiles the Watermill peer with GOWORK=off (it is not in the
// workspace, so that its dependencies stay out of the services' build list).
func (s *stack) buildPeer(ctx context.Context) error {
	out, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", "github.com/propalpes/companias/bench").Output()
	if err != nil {
		return fmt.Errorf("locate the bench module: %w", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), filepath.FromSlash(peerModule))
	s.peerBin = filepath.Join(s.workDir, "watermill-peer")
	c := exec.CommandContext(ctx, "go", "build", "-o", s.peerBin, ".")
	c.Dir = dir
	c.Env = append(os.Environ(), "GOWORK=off")
	c.Stdout, c.Stderr = os.Stderr, os.Stderr
	if err := c.Run(); err != nil {
		return fmt.Errorf("go build %s (GOWORK=off): %w", dir, err)
	}
	return nil
}

// e2eRun is one closed-loop create run measured until every event is on
// Kafka.
type e2eRun struct {
	http    run           // the closed loop of POSTs; cpu covers the whole run including the tail to Kafka
	e2e     time.Duration // first POST sent → last event seen on Kafka
	lag     run           // 201 → event seen on Kafka, per create, under this load
	missing int           // events not seen within -proj-timeout
}

func (e e2eRun) e2eRate() float64 {
	if e.e2e <= 0 {
		return 0
	}
	return float64(e.http.ops-e.missing) / e.e2e.Seconds()
}

// peerFigure is the peer figure at one concurrency.
type peerFigure struct {
	conc         int
	writer, peer []e2eRun
}

// peerResults is everything the peer figure measured.
type peerResults struct {
	figs             []peerFigure
	latWriter, latWM []latencyRun // commit → Kafka at -rate, writer and peer
	pollInterval     string
}

// waitAll waits until every key was seen by w or within passes, scanning
// only the keys still missing every 10 ms (the times are stamped by the
// watcher's readers, so the scan interval does not blur them).
func (w *watcher) waitAll(ctx context.Context, keys []string, within time.Duration) map[string]time.Time {
	out := make(map[string]time.Time, len(keys))
	pending := slices.Clone(keys)
	deadline := time.Now().Add(within)
	for {
		w.mu.Lock()
		pending = slices.DeleteFunc(pending, func(k string) bool {
			t, ok := w.seen[k]
			if ok {
				out[k] = t
			}
			return ok
		})
		w.mu.Unlock()
		if len(pending) == 0 || time.Now().After(deadline) {
			return out
		}
		if err := sleepCtx(ctx, 10*time.Millisecond); err != nil {
			return out
		}
	}
}

// createE2E runs the closed loop of creates at concurrency c against base
// for b.dur, then waits until every event is on Kafka (w), with the CPU of
// pid over the whole of it.
func createE2E(ctx context.Context, b *bench, c int, base string, pid int, w *watcher) (e2eRun, error) {
	hc := httpClient()
	var (
		mu      sync.Mutex
		ids     []string
		created = map[string]time.Time{}
	)
	op := func(ctx context.Context) error {
		id, err := postCompania(ctx, hc, base, b.names)
		if err != nil {
			return err
		}
		t := time.Now()
		mu.Lock()
		ids, created[id] = append(ids, id), t
		mu.Unlock()
		return nil
	}
	before := takeCPU(pid)
	start := time.Now()
	r, err := closedLoop(ctx, c, b.dur, op)
	if err != nil {
		return e2eRun{}, err
	}
	seen := w.waitAll(ctx, ids, b.projTimeout)
	out := e2eRun{http: r, missing: len(ids) - len(seen)}
	var last time.Time
	lag := make([]time.Duration, 0, len(seen))
	for id, t := range seen {
		if t.After(last) {
			last = t
		}
		lag = append(lag, max(t.Sub(created[id]), 0))
	}
	out.http.cpu = before.perOp(takeCPU(pid), r.ops)
	if !last.IsZero() {
		out.e2e = last.Sub(start)
	}
	out.lag = newRun(lag, r.elapsed)
	return out, nil
}

// commitToKafka measures the latency from the 201 to the event on Kafka at
// b.rate commands per second for b.rateDur (open loop, as figure 2).
func commitToKafka(ctx context.Context, b *bench, base string, w *watcher) (latencyRun, error) {
	hc := httpClient()
	type rec struct {
		id            string
		sent, created time.Time
		err           error
	}
	var (
		mu   sync.Mutex
		recs []rec
	)
	elapsed := openLoop(ctx, b.rate, b.rateDur, func(ctx context.Context) {
		r := rec{sent: time.Now()}
		r.id, r.err = postCompania(ctx, hc, base, b.names)
		r.created = time.Now()
		mu.Lock()
		recs = append(recs, r)
		mu.Unlock()
	})
	keys := make([]string, 0, len(recs))
	for _, r := range recs {
		if r.err != nil {
			return latencyRun{}, r.err
		}
		keys = append(keys, r.id)
	}
	seen := w.waitAll(ctx, keys, 10*time.Second)
	out := latencyRun{attempted: len(recs), achievedRPS: float64(len(recs)) / elapsed.Seconds()}
	var kl, pl []time.Duration
	for _, r := range recs {
		pl = append(pl, r.created.Sub(r.sent))
		t, ok := seen[r.id]
		if !ok {
			out.missing++
			continue
		}
		d := t.Sub(r.created)
		if d < 0 {
			out.early++
			d = 0
		}
		kl = append(kl, d)
	}
	out.kafka, out.post = newRun(kl, elapsed), newRun(pl, elapsed)
	return out, nil
}

// measurePeer runs the peer figure: a writer on cmdURL and the Watermill
// peer on a database of its own, both publishing to topics of their own on
// the plaintext broker, measured in alternation.
func measurePeer(ctx context.Context, b *bench, s *stack, cmdURL string) (*peerResults, error) {
	res := &peerResults{pollInterval: "1s (Watermill's default)"}
	if err := s.broker.CreateTopics(ctx, partitions, topicPeerWriter, topicPeer); err != nil {
		return nil, fmt.Errorf("create topics: %w", err)
	}
	peerURL, err := s.newDatabase(ctx, "peer")
	if err != nil {
		return nil, err
	}
	wr, err := s.startService(ctx, "command-peer", s.cmdBin, writerEnv(cmdURL, topicPeerWriter)...)
	if err != nil {
		return nil, err
	}
	defer wr.stop()
	wm, err := s.startService(ctx, "watermill-peer", s.peerBin, "DATABASE_URL="+peerURL, "KAFKA_EVENTS_TOPIC="+topicPeer)
	if err != nil {
		return nil, err
	}
	defer wm.stop()
	watchW, err := newWatcher(ctx, s.plain(), topicPeerWriter, partitions)
	if err != nil {
		return nil, err
	}
	defer watchW.close()
	watchP, err := newWatcher(ctx, s.plain(), topicPeer, partitions)
	if err != nil {
		return nil, err
	}
	defer watchP.close()

	// Warm-up of both: connections, plans, the producers' metadata.
	warm := *b
	warm.dur = time.Second
	for _, x := range []struct {
		url string
		w   *watcher
	}{{wr.url(""), watchW}, {wm.url(""), watchP}} {
		e, err := createE2E(ctx, &warm, 8, x.url, 0, x.w)
		if err != nil {
			return nil, fmt.Errorf("peer warm-up: %w", err)
		}
		if e.missing > 0 {
			return nil, fmt.Errorf("peer warm-up: %d of %d events never reached Kafka from %s", e.missing, e.http.ops, x.url)
		}
	}
	for _, c := range b.peerConcs {
		f := peerFigure{conc: c}
		for i := range b.runs {
			w, err := createE2E(ctx, b, c, wr.url(""), wr.cmd.Process.Pid, watchW)
			if err != nil {
				return nil, fmt.Errorf("peer figure, writer c=%d: %w", c, err)
			}
			p, err := createE2E(ctx, b, c, wm.url(""), wm.cmd.Process.Pid, watchP)
			if err != nil {
				return nil, fmt.Errorf("peer figure, Watermill c=%d: %w", c, err)
			}
			f.writer, f.peer = append(f.writer, w), append(f.peer, p)
			b.logf("peer c=%d run %d: writer HTTP %.0f/s e2e %.0f/s (tail %s, lag p99 %.1fms, missing %d) | Watermill HTTP %.0f/s e2e %.0f/s (tail %s, lag p99 %.1fms, missing %d)",
				c, i+1, w.http.rate(), w.e2eRate(), (w.e2e - w.http.elapsed).Round(time.Millisecond), ms(w.lag.p99), w.missing,
				p.http.rate(), p.e2eRate(), (p.e2e - p.http.elapsed).Round(time.Millisecond), ms(p.lag.p99), p.missing)
		}
		res.figs = append(res.figs, f)
	}
	for i := range b.runs {
		w, err := commitToKafka(ctx, b, wr.url(""), watchW)
		if err != nil {
			return nil, fmt.Errorf("peer latency, writer: %w", err)
		}
		p, err := commitToKafka(ctx, b, wm.url(""), watchP)
		if err != nil {
			return nil, fmt.Errorf("peer latency, Watermill: %w", err)
		}
		res.latWriter, res.latWM = append(res.latWriter, w), append(res.latWM, p)
		b.logf("peer latency run %d at %d/s: commit→kafka writer p50 %.1fms p99 %.1fms (missing %d) | Watermill p50 %.1fms p99 %.1fms (missing %d)",
			i+1, b.rate, ms(w.kafka.p50), ms(w.kafka.p99), w.missing, ms(p.kafka.p50), ms(p.kafka.p99), p.missing)
	}
	wm.stop()
	if wm.err != nil {
		b.logf("watermill-peer exited with %v (see its log in the work directory)", wm.err)
	}
	return res, nil
}

// e2eRatios are the per-run ratios writer/peer of interleaved runs.
func e2eRatios(a, b []e2eRun, f func(e2eRun) float64) agg {
	var xs []float64
	for i := range min(len(a), len(b)) {
		if d := f(b[i]); d > 0 {
			xs = append(xs, f(a[i])/d)
		}
	}
	return aggregate(xs)
}

func mapE2E(es []e2eRun, f func(e2eRun) float64) []float64 {
	out := make([]float64, len(es))
	for i, e := range es {
		out[i] = f(e)
	}
	return out
}

func httpRate(e e2eRun) float64 { return e.http.rate() }
func e2eRate(e e2eRun) float64  { return e.e2eRate() }

func times(a agg) string { return fmt.Sprintf("%.2f× (%.2f–%.2f×)", a.med, a.lo, a.hi) }

// peerGoal is issue 13's goal for a ratio writer / peer at concurrency
// c ("" for none).
func peerGoal(c int, e2e bool) (string, float64) {
	if c != 32 {
		return "—", 0
	}
	if e2e {
		return "≥ 2.5×", 2.5
	}
	return "≥ 1.5×", 1.5
}

// peerSummaryRows writes the peer figure's rows of the summary table.
func (r *results) peerSummaryRows(b *bench, p func(string, ...any)) {
	if r.peer == nil {
		return
	}
	for _, f := range r.peer.figs {
		for _, e2e := range []bool{false, true} {
			name, get := "HTTP", httpRate
			if e2e {
				name, get = "end to end (every event on Kafka)", e2eRate
			}
			rt := e2eRatios(f.writer, f.peer, get)
			goal, want := peerGoal(f.conc, e2e)
			v := "—"
			if want > 0 {
				v = verdict(rt.med >= want)
			}
			p("| P | create, concurrency %d, %s, writer vs Watermill peer (req/s) | %s | %s (Watermill) | %s | %s | %s |", f.conc, name,
				fmtAgg(aggregate(mapE2E(f.writer, get)), "%.0f"), fmtAgg(aggregate(mapE2E(f.peer, get)), "%.0f"), times(rt), goal, v)
		}
	}
	if len(r.peer.latWriter) > 0 {
		k := func(ls []latencyRun) []run { return mapLatency(ls, func(l latencyRun) run { return l.kafka }) }
		w, m := k(r.peer.latWriter), k(r.peer.latWM)
		p("| P | commit → Kafka p50 / p99 at %d/s, writer vs Watermill peer (ms) | %s / %s | %s / %s (Watermill) | p99 %.0f× lower | — | — |", b.rate,
			fmtAgg(p50s(w), "%.1f"), fmtAgg(p99s(w), "%.1f"), fmtAgg(p50s(m), "%.1f"), fmtAgg(p99s(m), "%.1f"), p99s(m).med/max(p99s(w).med, 0.001))
	}
}

// peerMarkdown writes the peer figure's section.
func (r *results) peerMarkdown(b *bench, p func(string, ...any), img func(name, alt, what string)) {
	if r.peer == nil {
		return
	}
	p("## P. Peer baseline: gin + Watermill SQL outbox + Forwarder to Kafka")
	p("")
	p("The create path as a Go user would write it with off-the-shelf parts (`bench/peer/watermill`, a module of its")
	p("own outside go.work, built with `GOWORK=off`): gin, one pgx transaction inserting the `companias` and")
	p("`compania_eventos` rows (the writer's DDL) and the event through a watermill-sql Publisher wrapped by")
	p("`forwarder.NewPublisher`, and `forwarder.NewForwarder` moving Watermill's outbox table to Kafka with")
	p("watermill-kafka (Sarama SyncProducer, acks = all, key = company id) — Watermill's defaults otherwise:")
	p("`DefaultPostgreSQLSchema`, `DefaultPostgreSQLOffsetsAdapter`, 100 rows per query, poll interval %s;", r.peer.pollInterval)
	p("the Forwarder publishes one message at a time. Its own database, its own topic on the same broker.")
	p("Next to it, a writer process on the writer's database with a topic of its own.")
	p("")
	p("Closed loop of %s per run at each concurrency, the writer then the peer, alternating. *HTTP* is the", b.dur)
	p("rate of 201s during the loop; *end to end* is the creates of the run divided by the time from the first")
	p("POST to the last of their events seen on Kafka (a kafka-go consumer per partition); *tail* is how long")
	p("after the loop the last event arrived; *lag* is 201 → on Kafka per create under that load. CPU per")
	p("create (ms) covers the loop and the tail: the service process and PostgreSQL.")
	p("")
	p("| concurrency | writer HTTP req/s | writer end to end /s | writer tail s | writer lag p99 ms | Watermill HTTP req/s | Watermill end to end /s | Watermill tail s | Watermill lag p99 ms | HTTP writer / Watermill | end to end writer / Watermill | CPU ms/create writer (service + postgres) | CPU ms/create Watermill (service + postgres) |")
	p("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	tail := func(es []e2eRun) agg {
		return aggregate(mapE2E(es, func(e e2eRun) float64 { return (e.e2e - e.http.elapsed).Seconds() }))
	}
	lag99 := func(es []e2eRun) agg { return aggregate(mapE2E(es, func(e e2eRun) float64 { return ms(e.lag.p99) })) }
	cpu := func(es []e2eRun) string {
		c := cpuMed(mapE2ERuns(es))
		return fmt.Sprintf("%.3f (%.3f + %.3f)", c.service+c.postgres, c.service, c.postgres)
	}
	missing := 0
	for _, f := range r.peer.figs {
		p("| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |", f.conc,
			fmtAgg(aggregate(mapE2E(f.writer, httpRate)), "%.0f"), fmtAgg(aggregate(mapE2E(f.writer, e2eRate)), "%.0f"),
			fmtAgg(tail(f.writer), "%.2f"), fmtAgg(lag99(f.writer), "%.0f"),
			fmtAgg(aggregate(mapE2E(f.peer, httpRate)), "%.0f"), fmtAgg(aggregate(mapE2E(f.peer, e2eRate)), "%.0f"),
			fmtAgg(tail(f.peer), "%.2f"), fmtAgg(lag99(f.peer), "%.0f"),
			times(e2eRatios(f.writer, f.peer, httpRate)), times(e2eRatios(f.writer, f.peer, e2eRate)), cpu(f.writer), cpu(f.peer))
		for _, e := range append(slices.Clone(f.writer), f.peer...) {
			missing += e.missing
		}
	}
	p("")
	if missing > 0 {
		p("**%d events never reached Kafka within %s** (counted out of the end-to-end rates).", missing, b.projTimeout)
		p("")
	}
	if len(r.peer.latWriter) > 0 {
		p("Commit → Kafka at a fixed %d commands/s for %s per run (open loop, as figure 2), the writer then the peer:", b.rate, b.rateDur)
		p("")
		p("| run | writer p50 / p99 ms | writer missing | Watermill p50 / p99 ms | Watermill missing |")
		p("|---|---|---|---|---|")
		for i := range r.peer.latWriter {
			w, m := r.peer.latWriter[i], r.peer.latWM[i]
			p("| %d | %.1f / %.1f | %d | %.1f / %.1f | %d |", i+1, ms(w.kafka.p50), ms(w.kafka.p99), w.missing, ms(m.kafka.p50), ms(m.kafka.p99), m.missing)
		}
		p("")
		p("With nothing to forward, Watermill's SQL subscriber sleeps its poll interval between queries, so at a low")
		p("rate an event waits on average half of it before the Forwarder sees it; the writer's relay is woken by")
		p("`pg_notify` at commit.")
		p("")
	}
	img(plotPeer, "Create rate of the writer and of the Watermill peer, HTTP and end to end, and commit to Kafka latency",
		"Writer (colour) against the Watermill peer (grey), measured alternately in the same run: create rate over HTTP and end to end "+
			"(until every event is on Kafka) per concurrency, and commit → Kafka p50 / p99 at the fixed rate (lower is better).")
}

func mapE2ERuns(es []e2eRun) []run {
	out := make([]run, len(es))
	for i, e := range es {
		out[i] = e.http
	}
	return out
}

// peerGroups returns the panels of the peer plot.
func (r *results) peerGroups() []barGroup {
	if r.peer == nil {
		return nil
	}
	var gs []barGroup
	for _, f := range r.peer.figs {
		gs = append(gs,
			barGroup{title: fmt.Sprintf("Create HTTP, c=%d", f.conc), unit: "requests/s", sysName: "writer", rawName: "Watermill", vs: "Watermill",
				system: aggregate(mapE2E(f.writer, httpRate)), raw: aggregate(mapE2E(f.peer, httpRate))},
			barGroup{title: fmt.Sprintf("Create end to end, c=%d", f.conc), unit: "creates/s on Kafka", sysName: "writer", rawName: "Watermill", vs: "Watermill",
				system: aggregate(mapE2E(f.writer, e2eRate)), raw: aggregate(mapE2E(f.peer, e2eRate))})
	}
	if len(r.peer.latWriter) > 0 {
		k := func(ls []latencyRun) []run { return mapLatency(ls, func(l latencyRun) run { return l.kafka }) }
		w, m := k(r.peer.latWriter), k(r.peer.latWM)
		gs = append(gs,
			barGroup{title: "Commit → Kafka p50", unit: "ms (lower is better)", sysName: "writer", rawName: "Watermill", vs: "Watermill", system: p50s(w), raw: p50s(m)},
			barGroup{title: "Commit → Kafka p99", unit: "ms (lower is better)", sysName: "writer", rawName: "Watermill", vs: "Watermill", system: p99s(w), raw: p99s(m)})
	}
	return gs
}
