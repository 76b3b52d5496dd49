package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg/draw"
)

// Names of the plot images, in the plots directory.
const (
	plotThroughput      = "throughput.png"
	plotLatencyCommands = "latency-commands.png"
	plotLatencyQueries  = "latency-queries.png"
	plotFreshness       = "freshness.png"
	plotPeer            = "peer.png"
)

// plotMeta describes the run for the plot captions.
func (r *results) plotMeta(b *bench) plotMeta {
	return plotMeta{
		machine: fmt.Sprintf("%s, nproc %d", r.machine.cpu, r.machine.nproc),
		runs:    b.runs,
		date:    strings.SplitN(r.machine.date, "T", 2)[0],
	}
}

// medianRun returns the run with the median throughput: the one a
// distribution plot shows.
func medianRun(rs []run) run {
	i := medianIndex(mapRuns(rs, func(r run) float64 { return r.rate() }))
	if i < 0 {
		return run{}
	}
	return rs[i]
}

// throughputGroups returns the panels of the throughput figure: each
// stage and its raw ceiling.
func (r *results) throughputGroups() []barGroup {
	var gs []barGroup
	var sec secResults
	if r.sec != nil {
		sec = *r.sec
	}
	for i, f := range r.create {
		gs = append(gs, barGroup{title: fmt.Sprintf("Create, c=%d", f.conc), unit: "requests/s",
			sysName: "POST (HTTP)", rawName: "pgx tx", system: rates(f.writer), raw: rates(f.raw)})
		if i < len(sec.create) {
			g := sec.create[i]
			gs = append(gs, barGroup{title: fmt.Sprintf("Create, c=%d, %s", g.conc, secLine), unit: "requests/s",
				sysName: "POST (HTTP)", rawName: "pgx tx", system: rates(g.writer), raw: rates(g.raw)})
		}
	}
	if len(r.drain) > 0 {
		gs = append(gs, barGroup{title: "Outbox relay drain", unit: "rows/s", sysName: "relay", rawName: "kafka-go",
			system: aggregate(mapDrain(r.drain, func(d drainRun) float64 { return d.relayRate })),
			raw:    aggregate(mapDrain(r.drain, func(d drainRun) float64 { return d.rawRate }))})
	}
	if len(r.proj) > 0 {
		gs = append(gs, barGroup{title: "Projection catch-up", unit: "events/s", sysName: "reader", rawName: "bulk upserts",
			system: aggregate(mapProj(r.proj, func(x projRun) float64 { return x.readerRate })),
			raw:    aggregate(mapProj(r.proj, func(x projRun) float64 { return x.rawRate }))})
	}
	if len(sec.proj) > 0 {
		gs = append(gs, barGroup{title: "Projection catch-up, " + secLine, unit: "events/s", sysName: "reader", rawName: "bulk upserts",
			system: aggregate(mapProj(sec.proj, func(x projRun) float64 { return x.readerRate })),
			raw:    aggregate(mapProj(sec.proj, func(x projRun) float64 { return x.rawRate }))})
	}
	for _, f := range r.reads {
		gs = append(gs, barGroup{title: fmt.Sprintf("GET by id, c=%d", f.conc), unit: "requests/s",
			sysName: "GET (HTTP)", rawName: "FindOne", system: rates(f.reader), raw: rates(f.raw)})
	}
	return gs
}

// commandSeries returns the latency distributions of the create figure:
// the writer (solid) and raw pgx (dashed) at each concurrency.
func (r *results) commandSeries() []latSeries {
	var ss []latSeries
	for i, f := range r.create {
		ss = append(ss,
			latSeries{name: fmt.Sprintf("POST c=%d", f.conc), lat: medianRun(f.writer).lat, p50: p50s(f.writer), p99: p99s(f.writer), color: i},
			latSeries{name: fmt.Sprintf("raw pgx c=%d", f.conc), lat: medianRun(f.raw).lat, p50: p50s(f.raw), p99: p99s(f.raw), color: i, dashed: true})
	}
	return ss
}

// querySeries returns the latency distributions of the read figure.
func (r *results) querySeries() []latSeries {
	var ss []latSeries
	for i, f := range r.reads {
		ss = append(ss,
			latSeries{name: fmt.Sprintf("GET by id c=%d", f.conc), lat: medianRun(f.reader).lat, p50: p50s(f.reader), p99: p99s(f.reader), color: i},
			latSeries{name: fmt.Sprintf("raw FindOne c=%d", f.conc), lat: medianRun(f.raw).lat, p50: p50s(f.raw), p99: p99s(f.raw), color: i, dashed: true})
	}
	return ss
}

// freshShown returns the index of the fixed-rate run the freshness plot
// shows: the one with the median POST → visible p99.
func (r *results) freshShown() int {
	return medianIndex(mapRuns(mapLatency(r.fresh, func(l latencyRun) run { return l.fresh }), func(x run) float64 { return ms(x.p99) }))
}

// freshnessSeries returns the per-command latencies of the shown run.
func (r *results) freshnessSeries() []freshSeries {
	i := r.freshShown()
	if i < 0 {
		return nil
	}
	l := r.fresh[i]
	var vis, kaf plotter.XYs
	for _, p := range l.points {
		x := p.at.Seconds()
		if p.visible >= 0 {
			vis = append(vis, plotter.XY{X: x, Y: ms(p.visible)})
		}
		if p.kafka >= 0 {
			kaf = append(kaf, plotter.XY{X: x, Y: ms(p.kafka)})
		}
	}
	p99 := func(f func(latencyRun) run) string { return fmtAgg(p99s(mapLatency(r.fresh, f)), "%.1f") }
	return []freshSeries{
		{name: "POST → visible on the reader", pts: vis, p50: ms(l.fresh.p50), p99: ms(l.fresh.p99),
			spread: p99(func(l latencyRun) run { return l.fresh }), color: 0, shape: draw.CircleGlyph{}},
		{name: "commit (201) → on Kafka", pts: kaf, p50: ms(l.kafka.p50), p99: ms(l.kafka.p99),
			spread: p99(func(l latencyRun) run { return l.kafka }), color: 1, shape: draw.TriangleGlyph{}},
	}
}

// writePlots draws the plots of the measured figures into dir and returns
// the path of each image relative to the report's directory, by name.
func (r *results) writePlots(b *bench, dir, reportDir string) (map[string]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("plots directory: %w", err)
	}
	m := r.plotMeta(b)
	type job struct {
		name string
		make func() (figure, error)
	}
	var jobs []job
	if gs := r.throughputGroups(); len(gs) > 0 {
		jobs = append(jobs, job{plotThroughput, func() (figure, error) {
			return throughputPlot("Throughput of each stage against its raw ceiling", m, gs)
		}})
	}
	if gs := r.peerGroups(); len(gs) > 0 {
		jobs = append(jobs, job{plotPeer, func() (figure, error) {
			return throughputPlot("The writer against the Watermill peer (gin + watermill-sql outbox + Forwarder), same run", m, gs)
		}})
	}
	if len(r.create) > 0 {
		jobs = append(jobs, job{plotLatencyCommands, func() (figure, error) {
			return latencyPlot(fmt.Sprintf("Commands: POST /v1/companias (HTTP) vs raw pgx transaction, closed loop, %s runs", b.dur), m,
				"curves: the run with the median throughput; markers: p50 and p99, median and min–max over runs", r.commandSeries())
		}})
	}
	if len(r.reads) > 0 {
		jobs = append(jobs, job{plotLatencyQueries, func() (figure, error) {
			return latencyPlot(fmt.Sprintf("Queries: GET /v1/companias/{id} (HTTP) vs raw FindOne, closed loop, %s runs", b.dur), m,
				"curves: the run with the median throughput; markers: p50 and p99, median and min–max over runs", r.querySeries())
		}})
	}
	if len(r.fresh) > 0 {
		jobs = append(jobs, job{plotFreshness, func() (figure, error) {
			return freshnessPlot(fmt.Sprintf("Freshness over time at %d commands/s (open loop)", b.rate), m,
				fmt.Sprintf("time since the run started (s) — run %d of %d, the one with the median POST → visible p99", r.freshShown()+1, len(r.fresh)),
				r.freshnessSeries())
		}})
	}
	out := map[string]string{}
	for _, j := range jobs {
		p, err := j.make()
		if err != nil {
			return nil, err
		}
		path := filepath.Join(dir, j.name)
		if err := savePNG(p, path, b.plotDPI); err != nil {
			return nil, err
		}
		rel, err := filepath.Rel(reportDir, path)
		if err != nil {
			rel = path
		}
		out[j.name] = filepath.ToSlash(rel)
	}
	return out, nil
}

func mapDrain(ds []drainRun, f func(drainRun) float64) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = f(d)
	}
	return out
}
