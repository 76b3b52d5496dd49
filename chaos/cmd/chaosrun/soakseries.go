package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// soakSeries is the soak's series over time as `make soak` hands them to
// the plotting command (bench/cmd/benchrun -soak-plots), which keeps the
// plotting dependency out of this module. The JSON field names are that
// command's input format: change both together.
type soakSeries struct {
	Date       string            `json:"date"`             // RFC 3339, UTC
	Machine    string            `json:"machine"`          // host and CPUs
	Rate       float64           `json:"rate"`             // commands per second of the constant load
	EverySec   float64           `json:"every_s"`          // sampling period
	Processes  []string          `json:"processes"`        // every process with an RSS series, in report order
	Services   []string          `json:"services"`         // every service with a goroutine series
	Samples    []soakSeriesPoint `json:"samples"`          // in time order
	ReportPath string            `json:"report,omitempty"` // the Markdown report of the same run
}

// soakSeriesPoint is one sample; absent values (unreadable, no probe in the
// window) are omitted or null.
type soakSeriesPoint struct {
	AtSec      float64            `json:"t_s"`          // since the constant load started
	Lag        *float64           `json:"lag"`          // the readers' group lag
	FreshP50Ms *float64           `json:"fresh_p50_ms"` // freshness probes of the window
	FreshP95Ms *float64           `json:"fresh_p95_ms"`
	FreshMaxMs *float64           `json:"fresh_max_ms"`
	FreshLost  int64              `json:"fresh_lost"`           // probes never seen within 30 s
	RSSMiB     map[string]float64 `json:"rss_mib,omitempty"`    // process → VmRSS
	Goroutines map[string]float64 `json:"goroutines,omitempty"` // service → go_goroutines
}

// newSoakSeries turns the samples into the series file's form.
func (s *stack) newSoakSeries(rate float64, samples []soakSample, machine string) soakSeries {
	ser := soakSeries{Date: time.Now().UTC().Format(time.RFC3339), Machine: machine, Rate: rate, EverySec: s.o.soak.every.Seconds()}
	for _, sv := range s.all() {
		ser.Processes = append(ser.Processes, sv.name)
	}
	for _, sv := range s.services() {
		ser.Services = append(ser.Services, sv.name)
	}
	for _, m := range samples {
		ser.Samples = append(ser.Samples, seriesPoint(m))
	}
	return ser
}

// seriesPoint converts one sample.
func seriesPoint(m soakSample) soakSeriesPoint {
	p := soakSeriesPoint{AtSec: m.at.Seconds(), FreshLost: m.freshLost, RSSMiB: m.rss, Goroutines: m.goroutines}
	if m.lag >= 0 {
		p.Lag = &m.lag
	}
	if len(m.fresh) > 0 {
		ms := func(d time.Duration) *float64 { v := float64(d) / float64(time.Millisecond); return &v }
		p.FreshP50Ms, p.FreshP95Ms, p.FreshMaxMs = ms(pct(m.fresh, 0.5)), ms(pct(m.fresh, 0.95)), ms(slices.Max(m.fresh))
	}
	return p
}

// writeSoakSeries writes ser as indented JSON to path, creating its
// directory.
func writeSoakSeries(path string, ser soakSeries) error {
	b, err := json.MarshalIndent(ser, "", "  ")
	if err != nil {
		return fmt.Errorf("write the soak series: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write the soak series: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write the soak series: %w", err)
	}
	return nil
}

// soakPlotNames are the PNGs the plotting command draws next to the series
// file, with what each shows, for the report's links.
var soakPlotNames = []struct{ file, what string }{
	{"lag.png", "readers' group lag"},
	{"freshness.png", "freshness (POST → visible on a reader), p50, p95 and max per sample"},
	{"rss.png", "RSS of every process"},
	{"goroutines.png", "goroutines of every service"},
}
