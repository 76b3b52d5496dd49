package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/propalpes/companias/services/query/internal/ports/consumer"
	"github.com/propalpes/companias/services/query/internal/rebuild"
	"github.com/propalpes/companias/services/query/internal/view"
)

// CountersSource reports a consumer's running totals; *consumer.Consumer
// implements it.
type CountersSource interface {
	Counters() consumer.Counters
}

// Counters is a collector of the live consumer's running totals, read at
// each scrape:
//
//	companias_events_applied_total             events written to the views
//	companias_events_skipped_unknown_total     events of an unknown type, skipped
//	companias_projection_retries_total         failed store or dead-letter writes retried
//	companias_projection_store_timeouts_total  store writes cancelled at PROJECTION_WRITE_TIMEOUT
type Counters struct {
	src                                 CountersSource
	applied, skipped, retries, timeouts *prometheus.Desc
}

// NewCounters returns a Counters collector of src.
func NewCounters(src CountersSource) *Counters {
	return &Counters{
		src: src,
		applied: prometheus.NewDesc("companias_events_applied_total",
			"Events the live consumer wrote to the views (redeliveries included).", nil, nil),
		skipped: prometheus.NewDesc("companias_events_skipped_unknown_total",
			"Events of an unknown type of a known major version (a newer contract), counted and skipped.", nil, nil),
		retries: prometheus.NewDesc("companias_projection_retries_total",
			"Failed view-store or dead-letter writes of the live consumer that were retried.", nil, nil),
		timeouts: prometheus.NewDesc("companias_projection_store_timeouts_total",
			"View-store writes of the live consumer cancelled at PROJECTION_WRITE_TIMEOUT and retried (also counted in companias_projection_retries_total).", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Counters) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.applied
	ch <- c.skipped
	ch <- c.retries
	ch <- c.timeouts
}

// Collect implements prometheus.Collector.
func (c *Counters) Collect(ch chan<- prometheus.Metric) {
	n := c.src.Counters()
	ch <- prometheus.MustNewConstMetric(c.applied, prometheus.CounterValue, float64(n.Applied))
	ch <- prometheus.MustNewConstMetric(c.skipped, prometheus.CounterValue, float64(n.SkippedUnknown))
	ch <- prometheus.MustNewConstMetric(c.retries, prometheus.CounterValue, float64(n.Retries))
	ch <- prometheus.MustNewConstMetric(c.timeouts, prometheus.CounterValue, float64(n.WriteTimeouts))
}

// ProgressSource reports the current or last rebuild; *rebuild.Rebuilder
// implements it. Progress must not block.
type ProgressSource interface {
	Progress() view.RebuildProgress
}

// Rebuild is a collector of the rebuild progress, read at each scrape:
//
//	companias_rebuild_progress_ratio   processed / total (1 once done, 0 before any)
//	companias_rebuild_processed_events events replayed so far
//	companias_rebuild_total_events     events to replay
//	companias_rebuild_state{state}     1 for the current state, 0 for the others
type Rebuild struct {
	src                            ProgressSource
	ratio, processed, total, state *prometheus.Desc
}

// NewRebuild returns a Rebuild collector of src.
func NewRebuild(src ProgressSource) *Rebuild {
	return &Rebuild{
		src: src,
		ratio: prometheus.NewDesc("companias_rebuild_progress_ratio",
			"Progress of the current or last view rebuild, from 0 to 1.", nil, nil),
		processed: prometheus.NewDesc("companias_rebuild_processed_events",
			"Events replayed by the current or last view rebuild.", nil, nil),
		total: prometheus.NewDesc("companias_rebuild_total_events",
			"Events the current or last view rebuild replays (the high watermarks at its start).", nil, nil),
		state: prometheus.NewDesc("companias_rebuild_state",
			"State of the current or last view rebuild: 1 for the current state, 0 for the others.", []string{"state"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (r *Rebuild) Describe(ch chan<- *prometheus.Desc) {
	ch <- r.ratio
	ch <- r.processed
	ch <- r.total
	ch <- r.state
}

// Collect implements prometheus.Collector.
func (r *Rebuild) Collect(ch chan<- prometheus.Metric) {
	p := r.src.Progress()
	ratio := 0.0
	switch {
	case p.State == rebuild.StateDone:
		ratio = 1
	case p.Total > 0:
		ratio = min(float64(p.Processed)/float64(p.Total), 1)
	}
	ch <- prometheus.MustNewConstMetric(r.ratio, prometheus.GaugeValue, ratio)
	ch <- prometheus.MustNewConstMetric(r.processed, prometheus.GaugeValue, float64(p.Processed))
	ch <- prometheus.MustNewConstMetric(r.total, prometheus.GaugeValue, float64(p.Total))
	known := false
	for _, s := range []string{rebuild.StateIdle, rebuild.StateRunning, rebuild.StateSwitching, rebuild.StateDone, rebuild.StateFailed} {
		v := 0.0
		if s == p.State {
			v, known = 1, true
		}
		ch <- prometheus.MustNewConstMetric(r.state, prometheus.GaugeValue, v, s)
	}
	if !known && p.State != "" {
		ch <- prometheus.MustNewConstMetric(r.state, prometheus.GaugeValue, 1, p.State)
	}
}
